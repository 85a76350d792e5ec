#include "core/align/face_crop.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "absl/strings/str_cat.h"

namespace veriface {
namespace {

// Where a point of the source lands in the crop: pixel centres map onto pixel centres under the
// reduction, as cv::resize maps them.
cv::Point2d ToCrop(cv::Point2d p, cv::Point2i origin, double scale) {
  return {(p.x - origin.x + 0.5) * scale - 0.5, (p.y - origin.y + 0.5) * scale - 0.5};
}

}  // namespace

FaceCrop CutFaceCrop(const cv::Mat& rgb, const FaceDetection& face, const FaceCropOptions& options) {
  const double box_side = std::max({face.box.width(), face.box.height(), 1.0});
  const int side = std::max(1, static_cast<int>(std::lround(options.margin * box_side)));
  const cv::Point2d centre = face.box.center();
  const cv::Point2i origin(static_cast<int>(std::lround(centre.x - side / 2.0)),
                           static_cast<int>(std::lround(centre.y - side / 2.0)));
  cv::Mat square(side, side, CV_8UC3, cv::Scalar::all(0));
  const cv::Rect wanted(origin.x, origin.y, side, side);
  const cv::Rect inside = wanted & cv::Rect(0, 0, rgb.cols, rgb.rows);
  if (inside.area() > 0) rgb(inside).copyTo(square(inside - origin));
  double scale = 1.0;
  if (side > options.max_side) {
    scale = static_cast<double>(options.max_side) / side;
    cv::resize(square, square, cv::Size(options.max_side, options.max_side), 0, 0, cv::INTER_AREA);
  }
  FaceCrop crop;
  cv::Mat bgr;
  cv::cvtColor(square, bgr, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> bytes;
  cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, options.jpeg_quality});
  crop.jpeg.assign(bytes.begin(), bytes.end());
  const cv::Point2d top_left = ToCrop({face.box.x1, face.box.y1}, origin, scale);
  const cv::Point2d bottom_right = ToCrop({face.box.x2, face.box.y2}, origin, scale);
  crop.points[0] = static_cast<float>(top_left.x);
  crop.points[1] = static_cast<float>(top_left.y);
  crop.points[2] = static_cast<float>(bottom_right.x);
  crop.points[3] = static_cast<float>(bottom_right.y);
  for (size_t i = 0; i < face.landmarks.size(); ++i) {
    const cv::Point2d p = ToCrop(face.landmarks[i], origin, scale);
    crop.points[4 + 2 * i] = static_cast<float>(p.x);
    crop.points[5 + 2 * i] = static_cast<float>(p.y);
  }
  crop.score = face.score;
  return crop;
}

absl::StatusOr<OpenedFaceCrop> OpenFaceCrop(const FaceCrop& crop) {
  if (crop.jpeg.empty()) return absl::FailedPreconditionError("the template keeps no face crop");
  for (float v : crop.points) {
    if (!std::isfinite(v)) return absl::DataLossError("the face crop's box or landmarks are not finite");
  }
  const cv::Mat encoded(1, static_cast<int>(crop.jpeg.size()), CV_8UC1, const_cast<char*>(crop.jpeg.data()));
  const cv::Mat bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
  if (bgr.empty()) {
    return absl::DataLossError(absl::StrCat("the face crop (", crop.jpeg.size(), " bytes) does not decode as JPEG"));
  }
  OpenedFaceCrop out;
  cv::cvtColor(bgr, out.rgb, cv::COLOR_BGR2RGB);
  out.face.box = FaceBox{crop.points[0], crop.points[1], crop.points[2], crop.points[3]};
  out.face.score = crop.score;
  for (size_t i = 0; i < out.face.landmarks.size(); ++i) {
    out.face.landmarks[i] = cv::Point2d(crop.points[4 + 2 * i], crop.points[5 + 2 * i]);
  }
  return out;
}

}  // namespace veriface
