#pragma once
// Test-time augmentation: the chips cut from one detected face whose backbone features are averaged
// into its embedding. A view is a crop (dlib's template, optionally moved or scaled, or face-api.js's
// axis-aligned box), optionally mirrored.

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/face.h"

namespace veriface {

enum class CropKind {
  kTemplate,  // similarity warp of the 5 landmarks onto dlib's template (the core's AlignFace)
  kFaceApi,   // face-api.js's axis-aligned square from eyes and mouth, zero-padded and resized
};

struct ChipView {
  CropKind crop = CropKind::kTemplate;
  double shift_x = 0;  // template crop: the face moves this many chip pixels right
  double shift_y = 0;  // ... and down
  double zoom = 1;     // template crop: > 1 shows the face larger
  bool flip = false;   // mirrored left-right

  // A stable text naming the view, e.g. "template dx=2 dy=0 zoom=1 flip": cache key and report entry.
  std::string Key() const;
};

struct TtaConfig {
  std::string spec;  // as given, normalised
  std::vector<ChipView> views;
};

// Parses a test-time augmentation spec: terms joined by '+'.
//   none       the template chip alone
//   flip       every view also mirrored (the views double)
//   shift=S    four more template views moved S chip pixels left, right, up and down
//   zoom=Z     two more template views scaled by 1-Z and 1+Z
//   faceapi    face-api.js's crop as one more view
//   nobase     leave out the plain template view (e.g. "faceapi+nobase": face-api's crop alone)
// Example: "flip+shift=2" is 5 views, 10 chips. INVALID_ARGUMENT names an unknown or bad term.
absl::StatusOr<TtaConfig> ParseTta(const std::string& spec);

// Cuts the view's chip (CV_8UC3 RGB, size x size) from `rgb`.
cv::Mat MakeChip(const cv::Mat& rgb, const Landmarks5& landmarks, int size, const ChipView& view);

// face-api.js's crop (ComputeFaceDescriptorsTasks + extractFaces + toBatchTensor): a square of side
// mean(|mouth-eye|)/0.45 placed from the centroid of eyes and mouth centre, clipped at the image, zero-padded
// back to a square, resized to size x size.
cv::Mat FaceApiCrop(const cv::Mat& rgb, const Landmarks5& landmarks, int size);

}  // namespace veriface
