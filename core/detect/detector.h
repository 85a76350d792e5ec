#pragma once
// The face-detector interface: an RGB image in, faces with 5 landmarks out.

#include <array>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/face.h"

namespace veriface {

struct DetectorOptions {
  int min_face_size = 20;       // pixels; smaller faces are not searched for
  double scale_factor = 0.709;  // ratio between pyramid levels
  int max_scales = 10;          // pyramid levels kept (the largest ones); caps the largest face found
  std::array<float, 3> score_thresholds{0.6F, 0.7F, 0.7F};  // per cascade stage

  // Checks ranges; the message names the bad field.
  absl::Status Validate() const;
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  // `rgb` is CV_8UC3 in RGB order. Faces come by descending score.
  virtual absl::StatusOr<std::vector<FaceDetection>> Detect(const cv::Mat& rgb,
                                                            const DetectorOptions& options) const = 0;
};

}  // namespace veriface
