#pragma once
// Faces found once, kept on disk. For each image: the project's own pipeline (MTCNN, the central face
// by SelectFace(kCentral), landmark alignment), cached under a key made of the image's content
// (sha256 of its bytes) and the pipeline version (detector weights, detector options, model id), so a
// renamed file is still a hit and a new detector is never served stale faces. On top of the faces:
// aligned chips at any size (PNG), and backbone features of several views of each face for training a
// head over a frozen backbone.
//
// Layout under the cache folder:
//   faces-<pipeline key>/<ab>/<sha>.json          found?, five landmarks
//   faces-<pipeline key>/<ab>/<sha>-<size>.png    aligned chip
//   features-<feature key>/<ab>/<sha>.f32         [views, dim] float32
// Entries are written to a temporary name and renamed, and unreadable entries are recomputed.

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/detector.h"
#include "core/detect/face.h"
#include "core/model/face_model.h"

namespace veriface {

struct FaceRecord {
  std::string content_sha;  // of the image file's bytes
  bool found = false;       // false: no face; chips then come from a centred crop
  Landmarks5 landmarks{};
};

struct FaceCacheOptions {
  std::string dir;  // empty: nothing on disk, everything computed in memory
  DetectorOptions detector;
  int threads = 2;                   // images processed at once
  std::ostream* progress = nullptr;  // progress bars, or none
};

// Views of a face whose backbone features Features() computes: 0 the aligned chip, 1 its mirror image,
// then jittered alignments (landmarks shifted by up to 3 px, zoom 0.93..1.07; odd ones mirrored), the
// same for every image.
constexpr int kPlainView = 0;
constexpr int kMirrorView = 1;

class FaceCache {
 public:
  FaceCache(std::shared_ptr<const FaceModel> model, FaceCacheOptions options);

  // The central face of each image. NOT_FOUND / INVALID_ARGUMENT when an image cannot be read or decoded.
  absl::StatusOr<std::vector<FaceRecord>> Faces(const std::vector<std::string>& paths);

  // Aligned chips (CV_8UC3 RGB, size x size) of the faces from Faces(); a centred square crop of the
  // image where no face was found.
  absl::StatusOr<std::vector<cv::Mat>> Chips(const std::vector<std::string>& paths,
                                             const std::vector<FaceRecord>& faces, int size);

  // The model's backbone features of `views` views of each face: [N, views, feature_dim] float, CPU. For a
  // fusion bundle, every network's features of a view side by side (the order of Embedder::member_dims),
  // each network's view cut with its own chip side and template.
  absl::StatusOr<torch::Tensor> Features(const std::vector<std::string>& paths, const std::vector<FaceRecord>& faces,
                                         int views);

  const std::string& pipeline_key() const { return pipeline_key_; }
  const std::string& feature_key() const { return feature_key_; }
  // Entries computed (not read from the cache) since construction, per kind.
  int64_t faces_computed() const { return faces_computed_; }
  int64_t chips_computed() const { return chips_computed_; }
  int64_t features_computed() const { return features_computed_; }

 private:
  std::string EntryPath(const std::string& kind_key, const std::string& sha, const std::string& suffix) const;

  std::shared_ptr<const FaceModel> model_;
  FaceCacheOptions options_;
  std::string pipeline_key_;
  std::string feature_key_;
  std::atomic<int64_t> faces_computed_{0};
  std::atomic<int64_t> chips_computed_{0};
  std::atomic<int64_t> features_computed_{0};
};

// The middle square of the image (half its shorter side), resized to size x size: the fallback chip
// when no face is found (LFW-style photos are centred on the face).
cv::Mat CentredCrop(const cv::Mat& rgb, int size);

}  // namespace veriface
