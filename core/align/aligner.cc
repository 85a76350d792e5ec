#include "core/align/aligner.h"

#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/align/similarity.h"

namespace veriface {
namespace {

cv::Point2d Mean(std::initializer_list<cv::Point2d> pts) {
  cv::Point2d sum(0, 0);
  for (const auto& p : pts) sum += p;
  return sum / static_cast<double>(pts.size());
}

// dlib's mean face (68 points, unit square; from dlib's interpolation.h) at MTCNN's five points.
std::array<cv::Point2d, 5> UnitTemplate() {
  const cv::Point2d left_eye = Mean({{0.121737, 0.216423},
                                     {0.187122, 0.178758},
                                     {0.265825, 0.179852},
                                     {0.334606, 0.231733},
                                     {0.260918, 0.245099},
                                     {0.182743, 0.244077}});
  const cv::Point2d right_eye = Mean({{0.645647, 0.231733},
                                      {0.714428, 0.179852},
                                      {0.793132, 0.178758},
                                      {0.858516, 0.216423},
                                      {0.79751, 0.244077},
                                      {0.719335, 0.245099}});
  return {left_eye, right_eye, cv::Point2d(0.490127, 0.515625), cv::Point2d(0.254149, 0.780233),
          cv::Point2d(0.726104, 0.780233)};
}

AlignedChip Warp(const cv::Mat& rgb, const std::vector<cv::Point2d>& src, const std::vector<cv::Point2d>& dst,
                 int size) {
  AlignedChip out;
  out.affine = FitSimilarity(src, dst);
  const double scale = std::hypot(out.affine(0, 0), out.affine(0, 1));
  const int k = scale > 0 ? static_cast<int>(std::floor(1.0 / scale)) : 1;
  const cv::Mat* image = &rgb;
  cv::Mat shrunk;
  if (k >= 2) {
    cv::resize(rgb, shrunk, cv::Size(), 1.0 / k, 1.0 / k, cv::INTER_AREA);
    std::vector<cv::Point2d> moved;
    // Pixel k*i .. k*i+k-1 of the image becomes pixel i of the shrunk one.
    for (const auto& p : src) moved.push_back((p + cv::Point2d(0.5, 0.5)) / k - cv::Point2d(0.5, 0.5));
    out.affine = FitSimilarity(moved, dst);
    out.shrink = k;
    image = &shrunk;
  }
  cv::warpAffine(*image, out.chip, cv::Mat(out.affine), cv::Size(size, size), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar::all(0));
  return out;
}

}  // namespace

std::vector<cv::Point2d> FaceTemplate(int size, ChipTemplate kind) {
  if (kind == ChipTemplate::kArcFace) {
    // InsightFace's reference points for its 112x112 chips (arcface_src in its face_align.py).
    const cv::Point2d arcface[] = {
        {38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041}};
    std::vector<cv::Point2d> pts;
    for (const auto& p : arcface) pts.push_back(p * (size / 112.0));
    return pts;
  }
  constexpr double kPadding = 0.25;
  std::vector<cv::Point2d> pts;
  for (const auto& p : UnitTemplate()) {
    pts.push_back((p + cv::Point2d(kPadding, kPadding)) / (2 * kPadding + 1) * size);
  }
  return pts;
}

AlignedChip AlignFace(const cv::Mat& rgb, const Landmarks5& landmarks, int size, ChipTemplate kind) {
  return Warp(rgb, {landmarks.begin(), landmarks.end()}, FaceTemplate(size, kind), size);
}

AlignedChip AlignFaceJittered(const cv::Mat& rgb, const Landmarks5& landmarks, int size, cv::Point2d offset,
                              double zoom, ChipTemplate kind) {
  std::vector<cv::Point2d> src;
  for (const auto& p : landmarks) src.push_back(p + offset);
  std::vector<cv::Point2d> dst = FaceTemplate(size, kind);
  const cv::Point2d centre(size / 2.0, size / 2.0);
  for (auto& p : dst) p = centre + (p - centre) * zoom;
  return Warp(rgb, src, dst, size);
}

}  // namespace veriface
