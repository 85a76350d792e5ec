#pragma once
// The face a template keeps so that another model can embed it again (gallery.keep_face_crops): a square
// of the image around the detected face, with a wide margin because another network may align onto
// another template and look further out, scaled down when large and stored as JPEG with the face's box
// and landmarks in its pixels. Re-embedding opens it and aligns from those landmarks: no detection runs.

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "core/detect/face.h"
#include "core/gallery/gallery_types.h"

namespace veriface {

struct FaceCropOptions {
  // The square's side, in face-box sides (the larger of its width and height). ArcFace's 112 chip spans
  // about 1.2 box sides and dlib's 150 chip about 1.4; test-time zoom-outs and larger templates reach
  // further, so 2.4 leaves room.
  double margin = 2.4;
  int max_side = 320;     // pixels; larger squares are reduced (area averaging) to this
  int jpeg_quality = 95;  // re-embedding from it moves the cosine similarity by about 1e-3
};

// Black where the square leaves the image, as alignment fills outside the image.
FaceCrop CutFaceCrop(const cv::Mat& rgb, const FaceDetection& face, const FaceCropOptions& options = {});

struct OpenedFaceCrop {
  cv::Mat rgb;  // CV_8UC3, RGB
  FaceDetection face;
};

// DATA_LOSS when the JPEG does not decode or the points are not finite.
absl::StatusOr<OpenedFaceCrop> OpenFaceCrop(const FaceCrop& crop);

}  // namespace veriface
