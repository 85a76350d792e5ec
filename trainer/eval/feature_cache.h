#pragma once
// A persistent cache for the evaluator (SQLite, one file): per image content, the faces the detector
// found, and per image, crop view and landmarks, the backbone features of that chip. A second run over
// the same images is then only reads; a new test-time augmentation computes just its new views, and a
// new head reuses the backbone's features.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/face.h"

namespace veriface {
namespace sqlite {
class Db;
}  // namespace sqlite

struct CachedDetection {
  int width = 0;
  int height = 0;
  std::vector<FaceDetection> faces;
};

class FeatureCache {
 public:
  // Opens (creating if needed) the cache file; its folder is created too.
  static absl::StatusOr<std::unique_ptr<FeatureCache>> Open(const std::string& path);
  ~FeatureCache();
  FeatureCache(const FeatureCache&) = delete;
  FeatureCache& operator=(const FeatureCache&) = delete;

  // `image`: the image's content hash; `detector`: what the detections depend on (weights and options).
  absl::StatusOr<std::optional<CachedDetection>> GetDetection(const std::string& image, const std::string& detector);
  // `backbone`: what the features depend on; `view`: ChipView::Key(); `face`: the landmarks used.
  absl::StatusOr<std::optional<std::vector<float>>> GetFeature(const std::string& image, const std::string& backbone,
                                                               const std::string& view, const std::string& face);

  // Writes are held in memory until Flush(), which stores them in one short transaction: one commit per
  // write would be slow, and a transaction held open while computing would lock out other runs.
  void PutDetection(const std::string& image, const std::string& detector, const CachedDetection& d);
  void PutFeature(const std::string& image, const std::string& backbone, const std::string& view,
                  const std::string& face, const std::vector<float>& feature);
  size_t pending() const { return pending_detections_.size() + pending_features_.size(); }
  absl::Status Flush();

  const std::string& path() const { return path_; }

 private:
  FeatureCache(std::unique_ptr<sqlite::Db> db, std::string path);

  struct PendingDetection {
    std::string image, detector;
    CachedDetection detection;
  };
  struct PendingFeature {
    std::string image, backbone, view, face;
    std::vector<float> feature;
  };

  std::unique_ptr<sqlite::Db> db_;
  std::string path_;
  std::vector<PendingDetection> pending_detections_;
  std::vector<PendingFeature> pending_features_;
};

// Landmarks as text with 1/1000 pixel precision: the cache key of the face a chip was cut from.
std::string LandmarksKey(const Landmarks5& landmarks);

}  // namespace veriface
