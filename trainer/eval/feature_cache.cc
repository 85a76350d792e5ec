#include "trainer/eval/feature_cache.h"

#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace veriface {
namespace {

// A prepared statement that finalises itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("evaluator cache: ", sqlite3_errmsg(db_)));
  }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int v) { sqlite3_bind_int(stmt_, i, v); }
  void BindBlob(int i, const void* data, size_t bytes) {
    sqlite3_bind_blob(stmt_, i, data, static_cast<int>(bytes), SQLITE_TRANSIENT);
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  sqlite3_stmt* get() { return stmt_; }
  absl::Status Error(int rc) const {
    return absl::InternalError(absl::StrCat("evaluator cache: ", sqlite3_errstr(rc), ": ", sqlite3_errmsg(db_)));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

nlohmann::json FacesToJson(const std::vector<FaceDetection>& faces) {
  nlohmann::json out = nlohmann::json::array();
  for (const FaceDetection& f : faces) {
    nlohmann::json lm = nlohmann::json::array();
    for (const cv::Point2d& p : f.landmarks) lm.push_back({p.x, p.y});
    out.push_back({{"box", {f.box.x1, f.box.y1, f.box.x2, f.box.y2}}, {"score", f.score}, {"landmarks", lm}});
  }
  return out;
}

std::vector<FaceDetection> FacesFromJson(const nlohmann::json& j) {
  std::vector<FaceDetection> faces;
  for (const nlohmann::json& f : j) {
    FaceDetection d;
    d.box = {f.at("box").at(0).get<double>(), f.at("box").at(1).get<double>(), f.at("box").at(2).get<double>(),
             f.at("box").at(3).get<double>()};
    d.score = f.at("score").get<float>();
    for (size_t i = 0; i < 5; ++i) {
      d.landmarks[i] = {f.at("landmarks").at(i).at(0).get<double>(), f.at("landmarks").at(i).at(1).get<double>()};
    }
    faces.push_back(d);
  }
  return faces;
}

}  // namespace

std::string LandmarksKey(const Landmarks5& landmarks) {
  std::string key;
  for (const cv::Point2d& p : landmarks) absl::StrAppendFormat(&key, "%.3f,%.3f;", p.x, p.y);
  return key;
}

absl::StatusOr<std::unique_ptr<FeatureCache>> FeatureCache::Open(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("cannot create cache folder '", parent.string(), "': ", ec.message()));
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::InternalError(absl::StrCat("cannot open cache '", path, "': ", why));
  }
  std::unique_ptr<FeatureCache> cache(new FeatureCache(db, path));
  sqlite3_busy_timeout(db, 30000);  // another evaluator run may be writing
  for (const char* sql : {"PRAGMA journal_mode=WAL",
                          "CREATE TABLE IF NOT EXISTS detections (image TEXT NOT NULL, detector TEXT NOT NULL, "
                          "width INTEGER, height INTEGER, faces TEXT NOT NULL, PRIMARY KEY (image, detector))",
                          "CREATE TABLE IF NOT EXISTS features (image TEXT NOT NULL, backbone TEXT NOT NULL, "
                          "view TEXT NOT NULL, face TEXT NOT NULL, feature BLOB NOT NULL, "
                          "PRIMARY KEY (image, backbone, view, face))"}) {
    const absl::Status s = cache->Exec(sql);
    if (!s.ok()) return absl::InternalError(absl::StrCat("cache '", path, "': ", s.message()));
  }
  return cache;
}

FeatureCache::~FeatureCache() {
  // What was computed but not yet stored is worth keeping; a failure here only costs a recomputation.
  Flush().IgnoreError();
  sqlite3_close(db_);
}

absl::Status FeatureCache::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string why = error ? error : "unknown error";
    sqlite3_free(error);
    return absl::InternalError(absl::StrCat("evaluator cache: ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<CachedDetection>> FeatureCache::GetDetection(const std::string& image,
                                                                          const std::string& detector) {
  Statement st(db_, "SELECT width, height, faces FROM detections WHERE image = ?1 AND detector = ?2");
  if (!st.status().ok()) return st.status();
  st.Bind(1, image);
  st.Bind(2, detector);
  const int rc = st.Step();
  if (rc == SQLITE_DONE) return std::optional<CachedDetection>();
  if (rc != SQLITE_ROW) return st.Error(rc);
  CachedDetection d;
  d.width = sqlite3_column_int(st.get(), 0);
  d.height = sqlite3_column_int(st.get(), 1);
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 2));
  try {
    d.faces = FacesFromJson(nlohmann::json::parse(text ? text : "[]"));
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(
        absl::StrCat("cache '", path_, "': bad detection record: ", e.what(), "; delete the file to rebuild it"));
  }
  return std::optional<CachedDetection>(std::move(d));
}

absl::StatusOr<std::optional<std::vector<float>>> FeatureCache::GetFeature(const std::string& image,
                                                                           const std::string& backbone,
                                                                           const std::string& view,
                                                                           const std::string& face) {
  Statement st(db_, "SELECT feature FROM features WHERE image = ?1 AND backbone = ?2 AND view = ?3 AND face = ?4");
  if (!st.status().ok()) return st.status();
  st.Bind(1, image);
  st.Bind(2, backbone);
  st.Bind(3, view);
  st.Bind(4, face);
  const int rc = st.Step();
  if (rc == SQLITE_DONE) return std::optional<std::vector<float>>();
  if (rc != SQLITE_ROW) return st.Error(rc);
  const int bytes = sqlite3_column_bytes(st.get(), 0);
  std::vector<float> feature(static_cast<size_t>(bytes) / sizeof(float));
  if (bytes > 0) std::memcpy(feature.data(), sqlite3_column_blob(st.get(), 0), feature.size() * sizeof(float));
  return std::optional<std::vector<float>>(std::move(feature));
}

void FeatureCache::PutDetection(const std::string& image, const std::string& detector, const CachedDetection& d) {
  pending_detections_.push_back({image, detector, d});
}

void FeatureCache::PutFeature(const std::string& image, const std::string& backbone, const std::string& view,
                              const std::string& face, const std::vector<float>& feature) {
  pending_features_.push_back({image, backbone, view, face, feature});
}

absl::Status FeatureCache::Flush() {
  if (pending() == 0) return absl::OkStatus();
  if (const absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  auto fail = [this](absl::Status s) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  };
  {
    Statement st(db_, "INSERT OR REPLACE INTO detections VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st.status().ok()) return fail(st.status());
    for (const PendingDetection& p : pending_detections_) {
      sqlite3_reset(st.get());
      st.Bind(1, p.image);
      st.Bind(2, p.detector);
      st.Bind(3, p.detection.width);
      st.Bind(4, p.detection.height);
      st.Bind(5, FacesToJson(p.detection.faces).dump());
      if (const int rc = st.Step(); rc != SQLITE_DONE) return fail(st.Error(rc));
    }
  }
  {
    Statement st(db_, "INSERT OR REPLACE INTO features VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st.status().ok()) return fail(st.status());
    for (const PendingFeature& p : pending_features_) {
      sqlite3_reset(st.get());
      st.Bind(1, p.image);
      st.Bind(2, p.backbone);
      st.Bind(3, p.view);
      st.Bind(4, p.face);
      st.BindBlob(5, p.feature.data(), p.feature.size() * sizeof(float));
      if (const int rc = st.Step(); rc != SQLITE_DONE) return fail(st.Error(rc));
    }
  }
  if (const absl::Status s = Exec("COMMIT"); !s.ok()) return fail(s);
  pending_detections_.clear();
  pending_features_.clear();
  return absl::OkStatus();
}

}  // namespace veriface
