#include "trainer/training/face_cache.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/align/aligner.h"
#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/image/decode.h"
#include "core/progress/progress.h"
#include "trainer/bundle/bundle_writer.h"
#include "trainer/training/parallel.h"
#include "trainer/training/pk_sampler.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Bump when what an entry means changes (alignment, chip encoding, the views).
constexpr int kCacheFormat = 1;

// Write to a unique temporary name, then rename: a reader sees the whole entry or none. No fsync: a
// torn entry after a crash fails to parse and is computed again.
absl::Status WriteEntry(const std::string& path, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create the cache folder for '", path, "': ", ec.message()));
  const std::string tmp =
      absl::StrCat(path, ".tmp.", ::getpid(), ".", std::hash<std::thread::id>()(std::this_thread::get_id()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return absl::InternalError(absl::StrCat("cannot write cache entry '", tmp, "'"));
  }
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename '", tmp, "' to '", path, "': ", ec.message()));
  return absl::OkStatus();
}

std::string ReadEntry(const std::string& path) {
  if (path.empty()) return "";
  auto bytes = ReadFileToString(path);
  return bytes.ok() ? *std::move(bytes) : std::string();
}

json RecordToJson(const FaceRecord& r) {
  json lm = json::array();
  for (const auto& p : r.landmarks) lm.push_back({p.x, p.y});
  return {{"found", r.found}, {"landmarks", lm}};
}

bool RecordFromJson(const std::string& text, FaceRecord* r) {
  try {
    const json j = json::parse(text);
    r->found = j.at("found").get<bool>();
    const auto& lm = j.at("landmarks");
    if (lm.size() != 5) return false;
    for (size_t i = 0; i < 5; ++i) r->landmarks[i] = {lm[i].at(0).get<double>(), lm[i].at(1).get<double>()};
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

// The jittered alignment of view v >= 2: the same for every image, fixed by v alone.
struct Jitter {
  cv::Point2d offset;
  double zoom;
  bool mirror;
};
Jitter ViewJitter(int view) {
  std::mt19937_64 rng(MixSeed(0x76696577, static_cast<uint64_t>(view)));
  const auto uniform = [&rng](double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng() >> 11) * 0x1.0p-53;
  };
  Jitter j;
  j.offset = {uniform(-3, 3), uniform(-3, 3)};
  j.zoom = uniform(0.93, 1.07);
  j.mirror = view % 2 == 1;
  return j;
}

cv::Mat Mirror(const cv::Mat& m) {
  cv::Mat out;
  cv::flip(m, out, 1);
  return out;
}

}  // namespace

cv::Mat CentredCrop(const cv::Mat& rgb, int size) {
  const int side = std::max(1, std::min(rgb.cols, rgb.rows) / 2);
  const cv::Rect roi((rgb.cols - side) / 2, (rgb.rows - side) / 2, side, side);
  cv::Mat out;
  cv::resize(rgb(roi), out, cv::Size(size, size), 0, 0, side > size ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

FaceCache::FaceCache(std::shared_ptr<const FaceModel> model, FaceCacheOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  const MtcnnNets& nets = model_->detector().nets();
  const DetectorOptions& d = options_.detector;
  const std::string pipeline =
      absl::StrCat("format", kCacheFormat, ";", ModuleContentHash("pnet", *nets.pnet),
                   ModuleContentHash("rnet", *nets.rnet), ModuleContentHash("onet", *nets.onet), ";",
                   model_->model_id(), ";min", d.min_face_size, ";scale", d.scale_factor, ";levels", d.max_scales, ";t",
                   d.score_thresholds[0], ",", d.score_thresholds[1], ",", d.score_thresholds[2], ";central");
  pipeline_key_ = Sha256Hex(pipeline).substr(0, 16);
  // Every network of the bundle (one, or a fusion's members), with its chip side and template.
  std::string networks;
  for (size_t m = 0; m < model_->members(); ++m) {
    const auto& backbone = model_->embedder().backbones()[m];
    absl::StrAppend(&networks, ";", ModuleContentHash(backbone->arch(), *backbone), ";chip", model_->chip_size(m),
                    m == 0 ? "" : absl::StrCat(";template", static_cast<int>(model_->chip_template(m))));
  }
  feature_key_ = Sha256Hex(absl::StrCat(pipeline_key_, networks)).substr(0, 16);
}

std::string FaceCache::EntryPath(const std::string& kind_key, const std::string& sha, const std::string& suffix) const {
  if (options_.dir.empty()) return "";
  return (fs::path(options_.dir) / kind_key / sha.substr(0, 2) / (sha + suffix)).string();
}

absl::StatusOr<std::vector<FaceRecord>> FaceCache::Faces(const std::vector<std::string>& paths) {
  std::vector<FaceRecord> out(paths.size());
  ProgressBar bar("faces", static_cast<int64_t>(paths.size()), "img", options_.progress);
  std::atomic<int64_t> done{0};
  VF_RETURN_IF_ERROR(ParallelFor(static_cast<int64_t>(paths.size()), options_.threads, [&](int64_t i) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(paths[i]));
    FaceRecord& r = out[i];
    r.content_sha = Sha256Hex(bytes);
    const std::string entry = EntryPath("faces-" + pipeline_key_, r.content_sha, ".json");
    if (!RecordFromJson(ReadEntry(entry), &r)) {
      auto rgb = DecodeImage(bytes);
      if (!rgb.ok()) return absl::Status(rgb.status().code(), absl::StrCat(paths[i], ": ", rgb.status().message()));
      VF_ASSIGN_OR_RETURN(const auto faces, model_->Detect(*rgb, options_.detector));
      const int k = SelectFace(faces, FaceSelection::kCentral, rgb->cols, rgb->rows);
      r.found = k >= 0;
      if (r.found) r.landmarks = faces[static_cast<size_t>(k)].landmarks;
      ++faces_computed_;
      if (!entry.empty()) VF_RETURN_IF_ERROR(WriteEntry(entry, RecordToJson(r).dump()));
    }
    bar.Update(++done);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<cv::Mat>> FaceCache::Chips(const std::vector<std::string>& paths,
                                                      const std::vector<FaceRecord>& faces, int size) {
  if (paths.size() != faces.size()) return absl::InvalidArgumentError("chips: paths and faces differ in number");
  if (size < 16 || size > 1024)
    return absl::InvalidArgumentError(absl::StrCat("chip size ", size, " is not in 16..1024"));
  std::vector<cv::Mat> out(paths.size());
  ProgressBar bar(absl::StrCat("chips ", size), static_cast<int64_t>(paths.size()), "img", options_.progress);
  std::atomic<int64_t> done{0};
  VF_RETURN_IF_ERROR(ParallelFor(static_cast<int64_t>(paths.size()), options_.threads, [&](int64_t i) -> absl::Status {
    const std::string entry =
        EntryPath("faces-" + pipeline_key_, faces[i].content_sha, absl::StrCat("-", size, ".png"));
    const std::string cached = ReadEntry(entry);
    cv::Mat chip;
    if (!cached.empty()) {
      cv::Mat bgr = cv::imdecode(cv::Mat(1, static_cast<int>(cached.size()), CV_8UC1, const_cast<char*>(cached.data())),
                                 cv::IMREAD_COLOR);
      if (bgr.rows == size && bgr.cols == size) cv::cvtColor(bgr, chip, cv::COLOR_BGR2RGB);
    }
    if (chip.empty()) {
      VF_ASSIGN_OR_RETURN(const cv::Mat rgb, LoadImageFile(paths[i]));
      chip = faces[i].found ? AlignFace(rgb, faces[i].landmarks, size).chip : CentredCrop(rgb, size);
      ++chips_computed_;
      if (!entry.empty()) {
        cv::Mat bgr;
        cv::cvtColor(chip, bgr, cv::COLOR_RGB2BGR);
        std::vector<uchar> png;
        cv::imencode(".png", bgr, png);
        VF_RETURN_IF_ERROR(WriteEntry(entry, std::string(png.begin(), png.end())));
      }
    }
    out[i] = chip;
    bar.Update(++done);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<torch::Tensor> FaceCache::Features(const std::vector<std::string>& paths,
                                                  const std::vector<FaceRecord>& faces, int views) {
  if (paths.size() != faces.size()) return absl::InvalidArgumentError("features: paths and faces differ in number");
  if (views < 1 || views > 64) return absl::InvalidArgumentError(absl::StrCat("views ", views, " is not in 1..64"));
  int64_t dim = 0;
  for (const int64_t d : model_->embedder().member_dims()) dim += d;
  auto out = torch::empty({static_cast<int64_t>(paths.size()), views, dim}, torch::kFloat32);
  ProgressBar bar("features", static_cast<int64_t>(paths.size()), "img", options_.progress);
  std::atomic<int64_t> done{0};
  VF_RETURN_IF_ERROR(ParallelFor(static_cast<int64_t>(paths.size()), options_.threads, [&](int64_t i) -> absl::Status {
    const FaceRecord& face = faces[i];
    const std::string entry = EntryPath("features-" + feature_key_, face.content_sha, ".f32");
    const std::string cached = ReadEntry(entry);
    // An entry holds as many views as were asked for when it was made; more views mean a recompute.
    const size_t row_bytes = static_cast<size_t>(dim) * sizeof(float);
    if (!cached.empty() && cached.size() % row_bytes == 0 && cached.size() / row_bytes >= static_cast<size_t>(views)) {
      std::memcpy(out[i].data_ptr<float>(), cached.data(), static_cast<size_t>(views) * row_bytes);
    } else {
      VF_ASSIGN_OR_RETURN(const cv::Mat rgb, LoadImageFile(paths[i]));
      // Each network's features of the views, side by side: [views, dim].
      std::vector<torch::Tensor> parts;
      for (size_t m = 0; m < model_->members(); ++m) {
        const int size = model_->chip_size(m);
        const ChipTemplate kind = model_->chip_template(m);
        std::vector<cv::Mat> chips;
        const cv::Mat plain = face.found ? AlignFace(rgb, face.landmarks, size, kind).chip : CentredCrop(rgb, size);
        for (int v = 0; v < views; ++v) {
          if (v == kPlainView) {
            chips.push_back(plain);
          } else if (v == kMirrorView || !face.found) {
            chips.push_back(v % 2 == 1 ? Mirror(plain) : plain);
          } else {
            const Jitter j = ViewJitter(v);
            const cv::Mat chip = AlignFaceJittered(rgb, face.landmarks, size, j.offset, j.zoom, kind).chip;
            chips.push_back(j.mirror ? Mirror(chip) : chip);
          }
        }
        auto computed = model_->embedder().Features(chips, m);
        if (!computed.ok()) {
          return absl::Status(computed.status().code(), absl::StrCat(paths[i], ": ", computed.status().message()));
        }
        parts.push_back(*std::move(computed));
      }
      const torch::Tensor f = (parts.size() == 1 ? parts[0] : torch::cat(parts, 1)).contiguous();
      out[i].copy_(f);
      ++features_computed_;
      if (!entry.empty()) {
        VF_RETURN_IF_ERROR(WriteEntry(entry, std::string(reinterpret_cast<const char*>(f.data_ptr<float>()),
                                                         static_cast<size_t>(f.numel()) * sizeof(float))));
      }
    }
    bar.Update(++done);
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace veriface
