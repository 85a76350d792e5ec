#pragma once
// Face alignment: a similarity warp of the five detected landmarks onto a face template: dlib's, which is
// how the dlib descriptor's training chips were cut (dlib get_face_chip_details, padding 0.25), or
// ArcFace's, which MobileFaceNet and most networks trained on MS-Celeb or CASIA-WebFace chips use.

#include <opencv2/core.hpp>
#include <vector>

#include "core/align/chip_template.h"
#include "core/detect/face.h"

namespace veriface {

struct AlignedChip {
  cv::Mat chip;        // CV_8UC3 RGB, size x size
  cv::Matx23d affine;  // the matrix applied to the (possibly pre-shrunk) image
  int shrink = 1;      // 1: applied to the image itself; k >= 2: to the image shrunk k times (INTER_AREA)
};

// MTCNN's five points (eye centres, nose tip, mouth corners) in a `size` x `size` chip.
// kDlib: dlib's 68-point mean face at those points, with 25% padding; for 150: (47.55, 46.60) ...
// (97.61, 103.02). kArcFace: InsightFace's points for 112, (38.29, 51.70) ... (70.73, 92.20), scaled.
std::vector<cv::Point2d> FaceTemplate(int size, ChipTemplate kind = ChipTemplate::kDlib);

// Warps `rgb` so that `landmarks` land on FaceTemplate(size); bilinear, black outside the image. When
// the warp would shrink by 2x or more the image is first reduced by that integer factor with area
// averaging, so that the chip is not aliased (dlib uses a pyramid for the same reason).
AlignedChip AlignFace(const cv::Mat& rgb, const Landmarks5& landmarks, int size = 150,
                      ChipTemplate kind = ChipTemplate::kDlib);

// The same warp with every landmark moved by `offset` pixels and the template scaled by `zoom` about
// the chip centre: the jitter used for test-time augmentation.
AlignedChip AlignFaceJittered(const cv::Mat& rgb, const Landmarks5& landmarks, int size, cv::Point2d offset,
                              double zoom, ChipTemplate kind = ChipTemplate::kDlib);

}  // namespace veriface
