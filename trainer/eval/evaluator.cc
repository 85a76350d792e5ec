#include "trainer/eval/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/align/aligner.h"
#include "core/common/file_util.h"
#include "core/common/guarded.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/embed/view_reduction.h"
#include "core/image/decode.h"
#include "core/progress/progress.h"

namespace veriface {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// What the detections depend on: the detector's weights and its options.
absl::StatusOr<std::string> DetectorKey(const FaceModel& model) {
  const ModelSpec& spec = model.spec();
  VF_ASSIGN_OR_RETURN(const std::string sha,
                      Sha256HexOfFile((std::filesystem::path(model.bundle_dir()) / spec.detector.weights).string()));
  const DetectorOptions& d = spec.detector_defaults;
  return absl::StrFormat("%s:%s min=%d scale=%g levels=%d t=%g,%g,%g", spec.detector.arch, sha.substr(0, 16),
                         d.min_face_size, d.scale_factor, d.max_scales, d.score_thresholds[0], d.score_thresholds[1],
                         d.score_thresholds[2]);
}

// What a backbone's features depend on: its architecture, parameters and weights (not the head, so a
// newly trained head reuses them, nor the other members of a fusion, so that each network's features are
// shared by every bundle that has it).
absl::StatusOr<std::string> BackboneKey(const FaceModel& model, size_t member) {
  const ModelSpec& spec = model.spec();
  const ComponentSpec& c = member == 0 ? spec.backbone : spec.fused_backbones.at(member - 1);
  VF_ASSIGN_OR_RETURN(const std::string sha,
                      Sha256HexOfFile((std::filesystem::path(model.bundle_dir()) / c.weights).string()));
  return absl::StrCat(c.arch, c.params.dump(), ":", sha.substr(0, 16));
}

absl::StatusOr<cv::Mat> LoadImage(const std::string& path) {
  VF_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(path));
  auto rgb = DecodeImage(bytes);
  if (!rgb.ok()) return absl::Status(rgb.status().code(), absl::StrCat(path, ": ", rgb.status().message()));
  return rgb;
}

// Stores the cache's pending writes every `every` items, so that an interrupted run keeps most of what it
// computed.
class CacheWriter {
 public:
  CacheWriter(FeatureCache* cache, size_t every) : cache_(cache), every_(every) {}
  absl::Status Tick() { return cache_ && cache_->pending() >= every_ ? cache_->Flush() : absl::OkStatus(); }
  absl::Status Finish() { return cache_ ? cache_->Flush() : absl::OkStatus(); }

 private:
  FeatureCache* cache_;
  size_t every_;
};

}  // namespace

int EmbeddedImages::FindImage(const LfwImageId& id) const {
  const auto it = std::lower_bound(images.begin(), images.end(), id,
                                   [](const ImageRecord& r, const LfwImageId& v) { return r.id < v; });
  return it != images.end() && it->id == id ? static_cast<int>(it - images.begin()) : -1;
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0.0;
}

Landmarks5 FallbackLandmarks(const std::vector<ImageRecord>& images, int width, int height) {
  std::array<cv::Point2d, 5> sum{};
  int n = 0;
  for (const ImageRecord& r : images) {
    if (r.fallback || r.faces_found == 0 || r.width <= 0 || r.height <= 0) continue;
    for (size_t k = 0; k < 5; ++k)
      sum[k] += cv::Point2d(r.face.landmarks[k].x / r.width, r.face.landmarks[k].y / r.height);
    ++n;
  }
  Landmarks5 out;
  if (n > 0) {
    for (size_t k = 0; k < 5; ++k) out[k] = cv::Point2d(sum[k].x / n * width, sum[k].y / n * height);
    return out;
  }
  const int side = std::min(width, height);
  const cv::Point2d corner((width - side) / 2.0, (height - side) / 2.0);
  const std::vector<cv::Point2d> t = FaceTemplate(side);
  for (size_t k = 0; k < 5; ++k) out[k] = corner + t[k];
  return out;
}

absl::StatusOr<EmbeddedImages> EmbedImages(const FaceModel& model, const std::vector<LfwImageId>& ids,
                                           LfwImageResolver& resolver, const EmbedOptions& options) {
  if (options.batch < 1) return absl::InvalidArgumentError(absl::StrCat("batch must be >= 1, got ", options.batch));
  EmbeddedImages out;
  VF_ASSIGN_OR_RETURN(out.tta, ParseTta(options.tta.empty() ? model.spec().TestTimeSpec() : options.tta));
  VF_ASSIGN_OR_RETURN(const std::string detector_key, DetectorKey(model));
  const size_t members = model.members();
  std::vector<std::string> backbone_keys;
  for (size_t m = 0; m < members; ++m) {
    VF_ASSIGN_OR_RETURN(std::string key, BackboneKey(model, m));
    backbone_keys.push_back(std::move(key));
  }
  FeatureCache* cache = options.cache;
  std::ostream* progress_out = options.progress ? &std::cerr : nullptr;

  // ---- detection, one image at a time ----
  std::vector<LfwImageId> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<std::string> hashes(sorted.size());
  out.images.resize(sorted.size());
  {
    ProgressBar progress("detect", static_cast<int64_t>(sorted.size()), "images", progress_out);
    CacheWriter writer(cache, 64);
    for (size_t i = 0; i < sorted.size(); ++i) {
      ImageRecord& r = out.images[i];
      r.id = sorted[i];
      VF_ASSIGN_OR_RETURN(r.path, resolver.Resolve(r.id));
      VF_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(r.path));
      hashes[i] = Sha256Hex(bytes);
      std::optional<CachedDetection> found;
      if (cache) {
        VF_ASSIGN_OR_RETURN(found, cache->GetDetection(hashes[i], detector_key));
      }
      if (found) {
        ++out.detections_cached;
      } else {
        auto rgb = DecodeImage(bytes);
        if (!rgb.ok()) return absl::Status(rgb.status().code(), absl::StrCat(r.path, ": ", rgb.status().message()));
        const auto start = Clock::now();
        auto faces = model.Detect(*rgb, model.spec().detector_defaults);
        if (!faces.ok()) {
          return absl::Status(faces.status().code(), absl::StrCat(r.path, ": ", faces.status().message()));
        }
        out.detect_seconds += Seconds(start);
        ++out.detections_computed;
        found = CachedDetection{rgb->cols, rgb->rows, std::move(*faces)};
        if (cache) cache->PutDetection(hashes[i], detector_key, *found);
        VF_RETURN_IF_ERROR(writer.Tick());
      }
      r.width = found->width;
      r.height = found->height;
      r.faces_found = static_cast<int>(found->faces.size());
      const int pick = SelectFace(found->faces, options.selection, r.width, r.height);
      if (pick >= 0) r.face = found->faces[static_cast<size_t>(pick)];
      progress.Update(static_cast<int64_t>(i + 1));
    }
    VF_RETURN_IF_ERROR(writer.Finish());
  }
  out.fallback_method =
      "no face found: the chip is cut at the mean landmarks of the faces found in the other images, relative to "
      "image size (with none found anywhere: dlib's template over the centred square)";
  for (ImageRecord& r : out.images) {
    if (r.faces_found > 0) continue;
    r.fallback = true;
    r.face = FaceDetection{};
    r.face.landmarks = FallbackLandmarks(out.images, r.width, r.height);
  }

  // ---- features of every view (of every member of a fusion), in batches of images ----
  const size_t views = out.tta.views.size();
  const std::vector<int64_t>& member_dims = model.embedder().member_dims();
  int64_t dim = 0;
  for (const int64_t d : member_dims) dim += d;
  out.embeddings.resize(out.images.size());
  ProgressBar progress("embed", static_cast<int64_t>(out.images.size()), "images", progress_out);
  CacheWriter writer(cache, 512);
  for (size_t s = 0; s < out.images.size(); s += static_cast<size_t>(options.batch)) {
    const size_t e = std::min(out.images.size(), s + static_cast<size_t>(options.batch));
    // features[image in batch][member][view]
    std::vector<std::vector<std::vector<std::vector<float>>>> features(
        e - s, std::vector<std::vector<std::vector<float>>>(members, std::vector<std::vector<float>>(views)));
    std::vector<std::vector<cv::Mat>> chips(members);
    std::vector<std::vector<std::pair<size_t, size_t>>> chip_owner(members);  // (image in batch, view)
    for (size_t i = s; i < e; ++i) {
      const ImageRecord& r = out.images[i];
      const std::string face_key = LandmarksKey(r.face.landmarks);
      cv::Mat rgb;
      for (size_t m = 0; m < members; ++m) {
        for (size_t v = 0; v < views; ++v) {
          if (cache) {
            VF_ASSIGN_OR_RETURN(auto hit,
                                cache->GetFeature(hashes[i], backbone_keys[m], out.tta.views[v].Key(), face_key));
            if (hit) {
              features[i - s][m][v] = std::move(*hit);
              ++out.chips_cached;
              continue;
            }
          }
          if (rgb.empty()) {
            VF_ASSIGN_OR_RETURN(rgb, LoadImage(r.path));
          }
          chips[m].push_back(
              MakeChip(rgb, r.face.landmarks, model.chip_size(m), out.tta.views[v], model.chip_template(m)));
          chip_owner[m].emplace_back(i - s, v);
        }
      }
    }
    for (size_t m = 0; m < members; ++m) {
      if (chips[m].empty()) continue;
      const auto start = Clock::now();
      auto computed = model.embedder().Features(chips[m], m);
      if (!computed.ok()) {
        return absl::Status(computed.status().code(),
                            absl::StrCat("images ", out.images[s].path, " ..: ", computed.status().message()));
      }
      const torch::Tensor f = computed->to(torch::kFloat32).contiguous();
      out.embed_seconds += Seconds(start);
      out.chips_computed += static_cast<int64_t>(chips[m].size());
      const int64_t d = f.size(1);
      for (size_t c = 0; c < chips[m].size(); ++c) {
        const float* row = f.data_ptr<float>() + static_cast<int64_t>(c) * d;
        const auto [b, v] = chip_owner[m][c];
        features[b][m][v].assign(row, row + d);
        if (cache) {
          const ImageRecord& r = out.images[s + b];
          cache->PutFeature(hashes[s + b], backbone_keys[m], out.tta.views[v].Key(), LandmarksKey(r.face.landmarks),
                            features[b][m][v]);
          VF_RETURN_IF_ERROR(writer.Tick());
        }
      }
    }
    // Every view's features, [images, views, dim] (a fusion's members side by side), reduced as the server's
    // embedder reduces them (mean over views, head, unit length), so that thresholds calibrated here hold there.
    auto view_features = torch::empty({static_cast<int64_t>(e - s), static_cast<int64_t>(views), dim});
    for (size_t b = 0; b < e - s; ++b) {
      for (size_t v = 0; v < views; ++v) {
        float* at = view_features.data_ptr<float>() + static_cast<int64_t>(b * views + v) * dim;
        for (size_t m = 0; m < members; ++m) {
          const std::vector<float>& f = features[b][m][v];
          if (static_cast<int64_t>(f.size()) != member_dims[m]) {
            return absl::DataLossError(absl::StrCat("cached features of ", out.images[s + b].path,
                                                    " have the wrong size; delete the cache to rebuild it"));
          }
          at = std::copy(f.begin(), f.end(), at);
        }
      }
    }
    VF_ASSIGN_OR_RETURN(const torch::Tensor emb, Guarded("the head", [&]() -> absl::StatusOr<torch::Tensor> {
                          torch::NoGradGuard no_grad;
                          return ReduceViews(view_features.to(model.device()), *model.embedder().head(), member_dims)
                              .to(torch::kCPU, torch::kFloat32)
                              .contiguous();
                        }));
    for (size_t b = 0; b < e - s; ++b) {
      const float* row = emb.data_ptr<float>() + static_cast<int64_t>(b) * emb.size(1);
      out.embeddings[s + b].assign(row, row + emb.size(1));
    }
    progress.Update(static_cast<int64_t>(e));
  }
  VF_RETURN_IF_ERROR(writer.Finish());
  return out;
}

absl::StatusOr<std::vector<double>> PairSimilarities(const EmbeddedImages& embedded, const PairsFile& pairs) {
  std::vector<double> scores;
  scores.reserve(pairs.pairs.size());
  for (const ImagePair& p : pairs.pairs) {
    const int a = embedded.FindImage(p.a), b = embedded.FindImage(p.b);
    if (a < 0 || b < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("pair on line ", p.line, ": image ", (a < 0 ? p.a : p.b).Key(), " was not embedded"));
    }
    scores.push_back(Cosine(embedded.embeddings[static_cast<size_t>(a)], embedded.embeddings[static_cast<size_t>(b)]));
  }
  return scores;
}

absl::StatusOr<VerificationScores> ScorePairs(const EmbeddedImages& embedded, const PairsFile& pairs) {
  VF_ASSIGN_OR_RETURN(std::vector<double> scores, PairSimilarities(embedded, pairs));
  std::vector<bool> same;
  for (const ImagePair& p : pairs.pairs) same.push_back(p.same);
  return VerificationScores::Create(std::move(scores), std::move(same));
}

}  // namespace veriface
