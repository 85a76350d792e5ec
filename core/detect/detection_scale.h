#pragma once
// Bounded detection work per image. MTCNN's cost grows with the pixels it searches (the P-Net pyramid
// starts at min_face_size), so a blank 5000x5000 photo cost 9.2 s of CPU to answer "no face". An image
// over `max_pixels` is therefore searched on a copy scaled down to that size, and the faces found are
// mapped back onto the full image, from which they are then cut and embedded at full resolution. The
// price: the smallest face found grows by the same factor. The copy is searched down to the asked-for
// minimum face scaled with it, but never below `min_face_floor` pixels of the copy (the model's default),
// since a smaller minimum face enlarges the pyramid and gives back the work the copy saved.

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "core/detect/detector.h"
#include "core/detect/face.h"

namespace veriface {

struct ScaledDetection {
  cv::Mat rgb;              // what the detector searches: the image itself, or a smaller copy
  DetectorOptions options;  // how: min_face_size in the copy's pixels
  double scale_x = 1;       // copy width / image width
  double scale_y = 1;       // copy height / image height
  int min_face_full = 0;    // the smallest face searched for, in the full image's pixels
};

// `options.min_face_size` is in the image's pixels. `max_pixels` 0: never scaled.
ScaledDetection ScaleForDetection(const cv::Mat& rgb, const DetectorOptions& options, int64_t max_pixels,
                                  int min_face_floor);

// Faces found on `scaled.rgb`, in the full image's coordinates (boxes by their edges, landmarks by pixel
// centres, the goldens' conventions).
void MapToFullImage(const ScaledDetection& scaled, std::vector<FaceDetection>& faces);

}  // namespace veriface
