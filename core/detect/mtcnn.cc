#include "core/detect/mtcnn.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "core/common/guarded.h"

namespace veriface {

absl::Status DetectorOptions::Validate() const {
  if (min_face_size < 12 || min_face_size > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_face_size must be between 12 and 100000 pixels, got ", min_face_size));
  }
  if (!(scale_factor > 0.1 && scale_factor < 0.95)) {
    return absl::InvalidArgumentError(absl::StrCat("scale_factor must be in (0.1, 0.95), got ", scale_factor));
  }
  if (max_scales < 1 || max_scales > 50) {
    return absl::InvalidArgumentError(absl::StrCat("max_scales must be between 1 and 50, got ", max_scales));
  }
  for (const float t : score_thresholds) {
    if (!(t >= 0.0F && t < 1.0F)) {
      return absl::InvalidArgumentError(absl::StrCat("score thresholds must be in [0, 1), got ", t));
    }
  }
  return absl::OkStatus();
}

namespace mtcnn {
namespace {

constexpr int kCellSize = 12;
constexpr int kCellStride = 2;

}  // namespace

std::vector<double> PyramidScales(int height, int width, const DetectorOptions& options) {
  const double m = static_cast<double>(kCellSize) / options.min_face_size;
  std::vector<double> scales;
  double side = std::min(height, width) * m;
  for (int k = 0; side >= kCellSize; ++k) {
    const double s = m * std::pow(options.scale_factor, k);
    if (std::min(std::floor(height * s), std::floor(width * s)) > kCellSize) scales.push_back(s);
    side *= options.scale_factor;
  }
  if (static_cast<int>(scales.size()) > options.max_scales) scales.resize(static_cast<size_t>(options.max_scales));
  return scales;
}

torch::Tensor ToNetInput(const torch::Tensor& nhwc) {
  return ((nhwc.to(torch::kFloat32) - 127.5) * 0.0078125).permute({0, 3, 2, 1}).contiguous();
}

torch::Tensor PyramidLevelTensor(const cv::Mat& rgb_float, double scale) {
  const cv::Size size(static_cast<int>(std::floor(rgb_float.cols * scale)),
                      static_cast<int>(std::floor(rgb_float.rows * scale)));
  cv::Mat level;
  cv::resize(rgb_float, level, size, 0, 0, cv::INTER_AREA);
  const auto hwc = torch::from_blob(level.data, {1, level.rows, level.cols, 3}, torch::kFloat32);
  return ToNetInput(hwc);  // copies out of `level`
}

torch::Tensor ExtractPatches(const cv::Mat& rgb, const std::vector<Box>& boxes, int size) {
  auto out = torch::zeros({static_cast<int64_t>(boxes.size()), size, size, 3}, torch::kUInt8);
  for (size_t k = 0; k < boxes.size(); ++k) {
    const auto l = static_cast<int64_t>(boxes[k][0]), t = static_cast<int64_t>(boxes[k][1]);
    const auto r = static_cast<int64_t>(boxes[k][2]), b = static_cast<int64_t>(boxes[k][3]);
    const int64_t bw = r - l + 1, bh = b - t + 1;
    if (bw <= 0 || bh <= 0) continue;
    cv::Mat canvas = cv::Mat::zeros(static_cast<int>(bh), static_cast<int>(bw), CV_8UC3);
    const int64_t x0 = std::max<int64_t>(l - 1, 0), y0 = std::max<int64_t>(t - 1, 0);
    const int64_t x1 = std::min<int64_t>(r, rgb.cols), y1 = std::min<int64_t>(b, rgb.rows);
    if (x1 > x0 && y1 > y0) {
      const cv::Rect src(static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(x1 - x0),
                         static_cast<int>(y1 - y0));
      rgb(src).copyTo(
          canvas(cv::Rect(static_cast<int>(x0 - (l - 1)), static_cast<int>(y0 - (t - 1)), src.width, src.height)));
    }
    cv::Mat patch(size, size, CV_8UC3, out[static_cast<int64_t>(k)].data_ptr<uint8_t>());
    cv::resize(canvas, patch, patch.size(), 0, 0, cv::INTER_AREA);
  }
  return out;
}

}  // namespace mtcnn

using mtcnn::Box;
using mtcnn::Candidates;

MtcnnDetector::MtcnnDetector(MtcnnNets nets, torch::Device device) : nets_(std::move(nets)), device_(device) {
  nets_.pnet->eval();
  nets_.rnet->eval();
  nets_.onet->eval();
  nets_.pnet->to(device_);
  nets_.rnet->to(device_);
  nets_.onet->to(device_);
}

Candidates MtcnnDetector::Stage1(const cv::Mat& rgb, const DetectorOptions& options) const {
  torch::NoGradGuard no_grad;
  cv::Mat rgb_float;
  rgb.convertTo(rgb_float, CV_32FC3);
  Candidates all;
  std::vector<mtcnn::Regression> all_reg;
  for (const double s : mtcnn::PyramidScales(rgb.rows, rgb.cols, options)) {
    auto [prob_t, reg_t] = nets_.pnet->forward(mtcnn::PyramidLevelTensor(rgb_float, s).to(device_));
    const auto prob = prob_t[0].to(torch::kCPU).contiguous();
    const auto reg = reg_t[0].to(torch::kCPU).contiguous();
    const auto p = prob.accessor<float, 2>();  // [x-cell][y-cell]
    const auto r = reg.accessor<float, 3>();   // [channel][x-cell][y-cell]
    std::vector<Box> boxes;
    std::vector<float> scores;
    std::vector<mtcnn::Regression> regs;
    for (int64_t i = 0; i < p.size(0); ++i) {
      for (int64_t j = 0; j < p.size(1); ++j) {
        if (!(p[i][j] >= options.score_thresholds[0])) continue;
        boxes.push_back({mtcnn::JsRound((i * mtcnn::kCellStride + 1) / s),
                         mtcnn::JsRound((j * mtcnn::kCellStride + 1) / s),
                         mtcnn::JsRound((i * mtcnn::kCellStride + mtcnn::kCellSize) / s),
                         mtcnn::JsRound((j * mtcnn::kCellStride + mtcnn::kCellSize) / s)});
        scores.push_back(p[i][j]);
        regs.push_back({r[0][i][j], r[1][i][j], r[2][i][j], r[3][i][j]});
      }
    }
    for (const int k : mtcnn::NonMaxSuppression(boxes, scores, 0.5, mtcnn::Overlap::kUnion)) {
      all.boxes.push_back(boxes[k]);
      all.scores.push_back(scores[k]);
      all_reg.push_back(regs[k]);
    }
  }
  Candidates out;
  for (const int k : mtcnn::NonMaxSuppression(all.boxes, all.scores, 0.7, mtcnn::Overlap::kUnion)) {
    out.boxes.push_back(mtcnn::Calibrate(all.boxes[k], all_reg[k]));
    out.scores.push_back(all.scores[k]);
  }
  return out;
}

Candidates MtcnnDetector::Stage2(const cv::Mat& rgb, const Candidates& in, const DetectorOptions& options) const {
  if (in.boxes.empty()) return {};
  torch::NoGradGuard no_grad;
  const auto input = mtcnn::ToNetInput(mtcnn::ExtractPatches(rgb, in.boxes, 24)).to(device_);
  auto [prob_t, reg_t] = nets_.rnet->forward(input);
  const auto prob = prob_t.to(torch::kCPU).contiguous();
  const auto reg = reg_t.to(torch::kCPU).contiguous();
  const auto p = prob.accessor<float, 1>();
  const auto r = reg.accessor<float, 2>();
  std::vector<Box> boxes;
  std::vector<float> scores;
  std::vector<mtcnn::Regression> regs;
  for (int64_t i = 0; i < p.size(0); ++i) {
    if (!(p[i] > options.score_thresholds[1])) continue;
    boxes.push_back(in.boxes[static_cast<size_t>(i)]);
    scores.push_back(p[i]);
    regs.push_back({r[i][0], r[i][1], r[i][2], r[i][3]});
  }
  Candidates out;
  for (const int k : mtcnn::NonMaxSuppression(boxes, scores, 0.7, mtcnn::Overlap::kUnion)) {
    out.boxes.push_back(mtcnn::Calibrate(boxes[k], regs[k]));
    out.scores.push_back(scores[k]);
  }
  return out;
}

std::vector<FaceDetection> MtcnnDetector::Stage3(const cv::Mat& rgb, const Candidates& in,
                                                 const DetectorOptions& options) const {
  if (in.boxes.empty()) return {};
  torch::NoGradGuard no_grad;
  const auto input = mtcnn::ToNetInput(mtcnn::ExtractPatches(rgb, in.boxes, 48)).to(device_);
  auto [prob_t, reg_t, landmarks_t] = nets_.onet->forward(input);
  const auto prob = prob_t.to(torch::kCPU).contiguous();
  const auto reg = reg_t.to(torch::kCPU).contiguous();
  const auto landmarks = landmarks_t.to(torch::kCPU).contiguous();
  const auto p = prob.accessor<float, 1>();
  const auto r = reg.accessor<float, 2>();
  const auto lm = landmarks.accessor<float, 2>();
  std::vector<int> passed;  // indices into `in`
  std::vector<Box> calibrated;
  std::vector<float> scores;
  for (int64_t i = 0; i < p.size(0); ++i) {
    if (!(p[i] > options.score_thresholds[2])) continue;
    passed.push_back(static_cast<int>(i));
    calibrated.push_back(mtcnn::Calibrate(in.boxes[static_cast<size_t>(i)], {r[i][0], r[i][1], r[i][2], r[i][3]}));
    scores.push_back(p[i]);
  }
  std::vector<FaceDetection> faces;
  for (const int k : mtcnn::NonMaxSuppression(calibrated, scores, 0.7, mtcnn::Overlap::kMinimum)) {
    const Box& cal = calibrated[static_cast<size_t>(k)];
    // Landmarks are fractions of the O-Net *input* box (original MTCNN), indexed through `passed` so
    // that they belong to the same candidate as the score (face-api mixes them up).
    const int src = passed[static_cast<size_t>(k)];
    const Box& inb = in.boxes[static_cast<size_t>(src)];
    const double w = inb[2] - inb[0] + 1;
    const double h = inb[3] - inb[1] + 1;
    FaceDetection face;
    face.box = {cal[0] - 1, cal[1] - 1, cal[2], cal[3]};
    face.score = scores[static_cast<size_t>(k)];
    for (int n = 0; n < 5; ++n) {
      face.landmarks[static_cast<size_t>(n)] = {static_cast<double>(lm[src][n]) * w + inb[0] - 1,
                                                static_cast<double>(lm[src][n + 5]) * h + inb[1] - 1};
    }
    faces.push_back(face);
  }
  return faces;
}

absl::StatusOr<std::vector<FaceDetection>> MtcnnDetector::Detect(const cv::Mat& rgb,
                                                                 const DetectorOptions& options) const {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    return absl::InvalidArgumentError("the detector needs a non-empty 8-bit, 3-channel RGB image");
  }
  if (auto status = options.Validate(); !status.ok()) return status;
  return Guarded("face detection", [&]() -> absl::StatusOr<std::vector<FaceDetection>> {
    const Candidates s1 = Stage1(rgb, options);
    const Candidates s2 = Stage2(rgb, s1, options);
    return Stage3(rgb, s2, options);
  });
}

}  // namespace veriface
