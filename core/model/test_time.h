#pragma once
// Test-time augmentation: the chips cut from one detected face whose backbone features are averaged
// into its embedding. A view is a crop (dlib's template, optionally moved or scaled, or face-api.js's
// axis-aligned box), optionally mirrored.
//
// It lives in core, not in the evaluator, because a bundle names its test-time setting in model.json and
// every user of the bundle (server, veriface-eval, trainer) must cut the same crops for the thresholds
// calibrated with them to mean anything.

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/align/chip_template.h"
#include "core/detect/face.h"
#include "core/embed/face_views.h"

namespace veriface {

enum class CropKind {
  kTemplate,  // similarity warp of the 5 landmarks onto the backbone's face template (the core's AlignFace)
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
  std::string spec;             // as given, normalised
  bool flip = false;            // every crop is also embedded mirrored
  std::vector<ChipView> crops;  // the crops, unmirrored
  std::vector<ChipView> views;  // every chip embedded: each crop, followed by its mirror when `flip`
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

// The spec of a bundle's test-time setting: "flip+" (when `flip`) followed by `crops`, e.g. ("shift=3", true)
// gives "flip+shift=3"; ("none", false) gives "none".
std::string TtaSpec(bool flip, const std::string& crops);

// Cuts the view's chip (CV_8UC3 RGB, size x size) from `rgb`; template views are aligned to `kind`.
cv::Mat MakeChip(const cv::Mat& rgb, const Landmarks5& landmarks, int size, const ChipView& view,
                 ChipTemplate kind = ChipTemplate::kDlib);

// Every crop of one face, each size x size: the views Embedder::Embed takes a face in.
FaceViews CutCrops(const cv::Mat& rgb, const Landmarks5& landmarks, int size, const std::vector<ChipView>& crops,
                   ChipTemplate kind = ChipTemplate::kDlib);

// face-api.js's crop (ComputeFaceDescriptorsTasks + extractFaces + toBatchTensor): a square of side
// mean(|mouth-eye|)/0.45 placed from the centroid of eyes and mouth centre, clipped at the image, zero-padded
// back to a square, resized to size x size.
cv::Mat FaceApiCrop(const cv::Mat& rgb, const Landmarks5& landmarks, int size);

}  // namespace veriface
