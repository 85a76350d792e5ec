#include "trainer/eval/feature_cache.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/sqlite/sqlite_util.h"

namespace veriface {
namespace {

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
  VF_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Db> db,
                      sqlite::Db::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "evaluator cache"));
  // Another evaluator run may be writing: wait for it rather than fail.
  for (const char* sql : {"PRAGMA busy_timeout = 30000", "PRAGMA journal_mode=WAL",
                          "CREATE TABLE IF NOT EXISTS detections (image TEXT NOT NULL, detector TEXT NOT NULL, "
                          "width INTEGER, height INTEGER, faces TEXT NOT NULL, PRIMARY KEY (image, detector))",
                          "CREATE TABLE IF NOT EXISTS features (image TEXT NOT NULL, backbone TEXT NOT NULL, "
                          "view TEXT NOT NULL, face TEXT NOT NULL, feature BLOB NOT NULL, "
                          "PRIMARY KEY (image, backbone, view, face))"}) {
    VF_RETURN_IF_ERROR(db->Exec(sql));
  }
  return std::unique_ptr<FeatureCache>(new FeatureCache(std::move(db), path));
}

FeatureCache::FeatureCache(std::unique_ptr<sqlite::Db> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}

FeatureCache::~FeatureCache() {
  // What was computed but not yet stored is worth keeping; a failure here only costs a recomputation.
  Flush().IgnoreError();
}

absl::StatusOr<std::optional<CachedDetection>> FeatureCache::GetDetection(const std::string& image,
                                                                          const std::string& detector) {
  VF_ASSIGN_OR_RETURN(sqlite::Statement st,
                      db_->Prepare("SELECT width, height, faces FROM detections WHERE image = ?1 AND detector = ?2"));
  st.BindText(1, image).BindText(2, detector);
  VF_ASSIGN_OR_RETURN(const bool row, st.Step());
  if (!row) return std::optional<CachedDetection>();
  CachedDetection d;
  d.width = static_cast<int>(st.ColumnInt64(0));
  d.height = static_cast<int>(st.ColumnInt64(1));
  const std::string text = st.ColumnText(2);
  try {
    d.faces = FacesFromJson(nlohmann::json::parse(text.empty() ? "[]" : text));
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
  VF_ASSIGN_OR_RETURN(
      sqlite::Statement st,
      db_->Prepare("SELECT feature FROM features WHERE image = ?1 AND backbone = ?2 AND view = ?3 AND face = ?4"));
  st.BindText(1, image).BindText(2, backbone).BindText(3, view).BindText(4, face);
  VF_ASSIGN_OR_RETURN(const bool row, st.Step());
  if (!row) return std::optional<std::vector<float>>();
  const int bytes = st.ColumnBytes(0);
  std::vector<float> feature(static_cast<size_t>(bytes) / sizeof(float));
  if (bytes > 0) std::memcpy(feature.data(), st.ColumnBlob(0), feature.size() * sizeof(float));
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
  sqlite::Transaction tx(db_.get());  // rolls back on any early return
  VF_RETURN_IF_ERROR(tx.Begin());
  {
    VF_ASSIGN_OR_RETURN(sqlite::Statement st,
                        db_->Prepare("INSERT OR REPLACE INTO detections VALUES (?1, ?2, ?3, ?4, ?5)"));
    for (const PendingDetection& p : pending_detections_) {
      st.BindText(1, p.image)
          .BindText(2, p.detector)
          .BindInt64(3, p.detection.width)
          .BindInt64(4, p.detection.height)
          .BindText(5, FacesToJson(p.detection.faces).dump());
      VF_RETURN_IF_ERROR(st.Run());
    }
  }
  {
    VF_ASSIGN_OR_RETURN(sqlite::Statement st,
                        db_->Prepare("INSERT OR REPLACE INTO features VALUES (?1, ?2, ?3, ?4, ?5)"));
    for (const PendingFeature& p : pending_features_) {
      st.BindText(1, p.image)
          .BindText(2, p.backbone)
          .BindText(3, p.view)
          .BindText(4, p.face)
          .BindBlob(5, p.feature.data(), p.feature.size() * sizeof(float));
      VF_RETURN_IF_ERROR(st.Run());
    }
  }
  VF_RETURN_IF_ERROR(tx.Commit());
  pending_detections_.clear();
  pending_features_.clear();
  return absl::OkStatus();
}

}  // namespace veriface
