#include "core/detect/detection_scale.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace veriface {

ScaledDetection ScaleForDetection(const cv::Mat& rgb, const DetectorOptions& options, int64_t max_pixels,
                                  int min_face_floor) {
  ScaledDetection out;
  out.options = options;
  out.min_face_full = options.min_face_size;
  const int64_t pixels = static_cast<int64_t>(rgb.cols) * rgb.rows;
  if (max_pixels <= 0 || pixels <= max_pixels) {
    out.rgb = rgb;
    return out;
  }
  const double factor = std::sqrt(static_cast<double>(max_pixels) / static_cast<double>(pixels));
  const int width = std::max(1, static_cast<int>(std::floor(rgb.cols * factor)));
  const int height = std::max(1, static_cast<int>(std::floor(rgb.rows * factor)));
  // INTER_AREA averages the pixels each output pixel covers: the right filter for shrinking.
  cv::resize(rgb, out.rgb, cv::Size(width, height), 0, 0, cv::INTER_AREA);
  out.scale_x = static_cast<double>(width) / rgb.cols;
  out.scale_y = static_cast<double>(height) / rgb.rows;
  const double scale = std::min(out.scale_x, out.scale_y);
  out.options.min_face_size = std::max(min_face_floor, static_cast<int>(std::ceil(options.min_face_size * scale)));
  out.min_face_full = static_cast<int>(std::ceil(out.options.min_face_size / scale));
  return out;
}

void MapToFullImage(const ScaledDetection& scaled, std::vector<FaceDetection>& faces) {
  if (scaled.scale_x == 1 && scaled.scale_y == 1) return;
  for (FaceDetection& face : faces) {
    face.box.x1 /= scaled.scale_x;
    face.box.x2 /= scaled.scale_x;
    face.box.y1 /= scaled.scale_y;
    face.box.y2 /= scaled.scale_y;
    for (auto& p : face.landmarks) {
      p.x = (p.x + 0.5) / scaled.scale_x - 0.5;
      p.y = (p.y + 0.5) / scaled.scale_y - 0.5;
    }
  }
}

}  // namespace veriface
