#include "core/model/test_time.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/align/aligner.h"

namespace veriface {
namespace {

absl::StatusOr<double> TermValue(const std::string& term, const std::string& prefix, double lo, double hi) {
  double v = 0;
  const std::string text = term.substr(prefix.size());
  if (!absl::SimpleAtod(text, &v) || !(v >= lo && v <= hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("test-time augmentation term '", term, "': expected a number in [", lo, ", ", hi, "]"));
  }
  return v;
}

// Chip pixels per image pixel of the template warp: the spread of the template points over the spread
// of the landmarks (both about their centroids).
double ChipScale(const Landmarks5& landmarks, int size, ChipTemplate kind) {
  const std::vector<cv::Point2d> t = FaceTemplate(size, kind);
  cv::Point2d ct(0, 0), cl(0, 0);
  for (size_t i = 0; i < 5; ++i) {
    ct += t[i] / 5.0;
    cl += landmarks[i] / 5.0;
  }
  double st = 0, sl = 0;
  for (size_t i = 0; i < 5; ++i) {
    st += std::hypot(t[i].x - ct.x, t[i].y - ct.y);
    sl += std::hypot(landmarks[i].x - cl.x, landmarks[i].y - cl.y);
  }
  return sl > 0 ? st / sl : 1.0;
}

}  // namespace

std::string ChipView::Key() const {
  std::string key = crop == CropKind::kFaceApi
                        ? std::string("faceapi")
                        : absl::StrFormat("template dx=%g dy=%g zoom=%g", shift_x, shift_y, zoom);
  if (flip) absl::StrAppend(&key, " flip");
  return key;
}

absl::StatusOr<TtaConfig> ParseTta(const std::string& spec) {
  bool flip = false, base = true, faceapi = false;
  double shift = 0, zoom = 0;
  std::vector<std::string> terms;
  for (const absl::string_view t : absl::StrSplit(spec, '+', absl::SkipWhitespace())) {
    const std::string term(absl::StripAsciiWhitespace(t));
    if (term == "none") {
      // The plain template view: nothing to add.
    } else if (term == "flip") {
      flip = true;
    } else if (term == "nobase") {
      base = false;
    } else if (term == "faceapi") {
      faceapi = true;
    } else if (absl::StartsWith(term, "shift=")) {
      auto v = TermValue(term, "shift=", 0.01, 30);
      if (!v.ok()) return v.status();
      shift = *v;
    } else if (absl::StartsWith(term, "zoom=")) {
      auto v = TermValue(term, "zoom=", 0.001, 0.5);
      if (!v.ok()) return v.status();
      zoom = *v;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown test-time augmentation term '", term, "' in '", spec,
                                                     "'; use none, flip, shift=S, zoom=Z, faceapi, "
                                                     "nobase joined by '+'"));
    }
    terms.push_back(term);
  }
  TtaConfig config;
  config.spec = terms.empty() ? "none" : absl::StrJoin(terms, "+");
  std::vector<ChipView> views;
  if (base) views.push_back({});
  if (shift > 0) {
    for (const auto& [dx, dy] : {std::pair{-shift, 0.0}, {shift, 0.0}, {0.0, -shift}, {0.0, shift}}) {
      ChipView v;
      v.shift_x = dx;
      v.shift_y = dy;
      views.push_back(v);
    }
  }
  if (zoom > 0) {
    for (const double z : {1 - zoom, 1 + zoom}) {
      ChipView v;
      v.zoom = z;
      views.push_back(v);
    }
  }
  if (faceapi) {
    ChipView v;
    v.crop = CropKind::kFaceApi;
    views.push_back(v);
  }
  if (views.empty()) return absl::InvalidArgumentError(absl::StrCat("'", spec, "' leaves no view to embed"));
  config.flip = flip;
  config.crops = views;
  for (const ChipView& v : views) {
    config.views.push_back(v);
    if (flip) {
      ChipView m = v;
      m.flip = true;
      config.views.push_back(m);
    }
  }
  return config;
}

std::string TtaSpec(bool flip, const std::string& crops) {
  if (!flip) return crops.empty() ? std::string("none") : crops;
  return crops.empty() || crops == "none" ? std::string("flip") : absl::StrCat("flip+", crops);
}

FaceViews CutCrops(const cv::Mat& rgb, const Landmarks5& landmarks, int size, const std::vector<ChipView>& crops,
                   ChipTemplate kind) {
  FaceViews views;
  views.crops.reserve(crops.size());
  for (const ChipView& crop : crops) views.crops.push_back(MakeChip(rgb, landmarks, size, crop, kind));
  return views;
}

cv::Mat FaceApiCrop(const cv::Mat& rgb, const Landmarks5& landmarks, int size) {
  const cv::Point2d le = landmarks[0], re = landmarks[1], mouth = (landmarks[3] + landmarks[4]) / 2;
  const double side_d = std::floor((cv::norm(mouth - le) + cv::norm(mouth - re)) / 2 / 0.45);
  const cv::Point2d ref = (le + re + mouth) / 3;
  const int side = std::max(1, static_cast<int>(side_d));
  const int x = static_cast<int>(std::floor(std::max(0.0, ref.x - 0.5 * side)));
  const int y = static_cast<int>(std::floor(std::max(0.0, ref.y - 0.43 * side)));
  const cv::Rect box = cv::Rect(x, y, side, side) & cv::Rect(0, 0, rgb.cols, rgb.rows);
  if (box.area() == 0) return cv::Mat(size, size, CV_8UC3, cv::Scalar::all(0));
  cv::Mat crop = rgb(box);
  const int diff = std::abs(crop.rows - crop.cols);
  const int after = static_cast<int>(std::floor(diff / 2.0 + 0.5));  // JavaScript's Math.round
  const int before = diff - after;
  cv::Mat square;
  // BORDER_ISOLATED: zeros, not the image around the crop, which OpenCV would otherwise use for a ROI.
  constexpr int kBorder = cv::BORDER_CONSTANT | cv::BORDER_ISOLATED;
  if (crop.rows > crop.cols) {
    cv::copyMakeBorder(crop, square, 0, 0, before, after, kBorder, cv::Scalar::all(0));
  } else {
    cv::copyMakeBorder(crop, square, before, after, 0, 0, kBorder, cv::Scalar::all(0));
  }
  cv::Mat out;
  cv::resize(square, out, cv::Size(size, size), 0, 0, square.rows > size ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

cv::Mat MakeChip(const cv::Mat& rgb, const Landmarks5& landmarks, int size, const ChipView& view, ChipTemplate kind) {
  cv::Mat chip;
  if (view.crop == CropKind::kFaceApi) {
    chip = FaceApiCrop(rgb, landmarks, size);
  } else if (view.shift_x == 0 && view.shift_y == 0 && view.zoom == 1) {
    chip = AlignFace(rgb, landmarks, size, kind).chip;
  } else {
    // Moving every landmark by -d/scale image pixels moves the face by +d chip pixels.
    const double scale = ChipScale(landmarks, size, kind) * view.zoom;
    const cv::Point2d offset(-view.shift_x / scale, -view.shift_y / scale);
    chip = AlignFaceJittered(rgb, landmarks, size, offset, view.zoom, kind).chip;
  }
  if (view.flip) {
    cv::Mat mirrored;
    cv::flip(chip, mirrored, 1);
    return mirrored;
  }
  return chip;
}

}  // namespace veriface
