#pragma once
// What a face detector reports: plain values, no tensors.

#include <array>
#include <opencv2/core.hpp>
#include <vector>

namespace veriface {

// 0-based, half-open pixel box: the face covers columns x1 .. x2-1 and rows y1 .. y2-1.
struct FaceBox {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  double width() const { return x2 - x1; }
  double height() const { return y2 - y1; }
  double area() const { return width() * height(); }
  cv::Point2d center() const { return {(x1 + x2) / 2, (y1 + y2) / 2}; }
};

// Five landmarks in 0-based pixel coordinates (the centre of pixel (i, j) is at (i, j)), in the order
// eye on the image-left, eye on the image-right, nose tip, mouth corner image-left, mouth corner
// image-right.
using Landmarks5 = std::array<cv::Point2d, 5>;

struct FaceDetection {
  FaceBox box;
  float score = 0;  // detector confidence, 0..1
  Landmarks5 landmarks{};
};

// Which face of a multi-face image a request means.
enum class FaceSelection { kLargest, kCentral, kHighestScore };

// Index of the selected face, or -1 when there is none. Ties go to the earlier face (the detector lists
// faces by descending score).
int SelectFace(const std::vector<FaceDetection>& faces, FaceSelection selection, int image_width, int image_height);

}  // namespace veriface
