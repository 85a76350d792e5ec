#include "trainer/plot/chart.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <memory>
#include <opencv2/freetype.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/guarded.h"
#include "core/common/status_macros.h"

namespace veriface::plot {
namespace {

// Everything is drawn this many times larger and then reduced with area averaging: smoother lines and
// edges than OpenCV's own anti-aliasing gives at 1x.
constexpr int kSuper = 2;

cv::Scalar Bgr(Rgb c) { return cv::Scalar(c.b, c.g, c.r); }

const Rgb kInk{40, 40, 40};
const Rgb kSoftInk{100, 100, 100};
const Rgb kGrid{228, 228, 228};
const Rgb kMinorGrid{242, 242, 242};
const Rgb kFrame{170, 170, 170};

enum class HAlign { kLeft, kCenter, kRight };
enum class VAlign { kTop, kMiddle, kBaseline };

// Text in one of two fonts: a TrueType face through OpenCV's freetype module when a font file is
// found, else the Hershey font built into OpenCV.
class TextPainter {
 public:
  explicit TextPainter(const std::string& font_file, bool bold) {
    std::vector<std::string> candidates;
    if (!font_file.empty()) candidates.push_back(font_file);
    for (const char* dir : {"/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/dejavu/", "/usr/share/fonts/TTF/"}) {
      candidates.push_back(absl::StrCat(dir, bold ? "DejaVuSans-Bold.ttf" : "DejaVuSans.ttf"));
    }
    for (const std::string& path : candidates) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) continue;
      try {
        auto ft = cv::freetype::createFreeType2();
        ft->loadFontData(path, 0);
        ft_ = ft;
        return;
      } catch (const cv::Exception&) {
        // Not a usable font file: try the next one, and fall back to Hershey at the end.
      }
    }
    thickness_ = bold ? 2 : 1;
  }

  // Width of `s` at a font size of `px` (the em height in pixels).
  int Width(const std::string& s, int px) const {
    int baseline = 0;
    if (ft_) return ft_->getTextSize(s, px, -1, &baseline).width;
    return cv::getTextSize(s, cv::FONT_HERSHEY_SIMPLEX, HersheyScale(px), thickness_ * kSuper, &baseline).width;
  }

  static int CapHeight(int px) { return static_cast<int>(std::lround(0.72 * px)); }

  void Put(cv::Mat& img, const std::string& s, cv::Point at, int px, Rgb color, HAlign h, VAlign v) const {
    if (s.empty()) return;
    const int w = Width(s, px);
    int x = at.x;
    if (h == HAlign::kCenter) x -= w / 2;
    if (h == HAlign::kRight) x -= w;
    int baseline = at.y;
    if (v == VAlign::kTop) baseline += CapHeight(px);
    if (v == VAlign::kMiddle) baseline += CapHeight(px) / 2;
    if (ft_) {
      // With a top-left image origin, freetype's text origin lies one em above the baseline.
      ft_->putText(img, s, {x, baseline - px}, px, Bgr(color), -1, cv::LINE_AA, false);
    } else {
      cv::putText(img, s, {x, baseline}, cv::FONT_HERSHEY_SIMPLEX, HersheyScale(px), Bgr(color), thickness_ * kSuper,
                  cv::LINE_AA);
    }
  }

 private:
  // Hershey simplex capitals are 22 units high at scale 1.
  static double HersheyScale(int px) { return CapHeight(px) / 22.0; }

  cv::Ptr<cv::freetype::FreeType2> ft_;
  int thickness_ = 1;
};

// Maps data values to pixels along one axis.
struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  int p0 = 0, p1 = 1;  // pixel of lo and of hi (p1 < p0 for a y axis)

  double T(double v) const {
    if (!log) return v;
    // Off-axis to the low side, so that clipping hides it.
    return v > 0 ? std::log10(v) : std::log10(lo) - 10;
  }
  double Pixel(double v) const {
    const double a = T(lo), b = T(hi);
    const double t = (T(v) - a) / (b - a);
    return p0 + std::clamp(t, -4.0, 5.0) * (p1 - p0);
  }
};

bool IsSet(double v) { return !std::isnan(v); }

void DataRange(const std::vector<double>& values, bool log, double* lo, double* hi) {
  for (const double v : values) {
    if (!std::isfinite(v) || (log && v <= 0)) continue;
    *lo = std::min(*lo, v);
    *hi = std::max(*hi, v);
  }
}

absl::StatusOr<std::pair<double, double>> ResolveRange(const Axis& axis, double data_lo, double data_hi,
                                                       const char* name, bool margin) {
  double lo = IsSet(axis.min) ? axis.min : data_lo;
  double hi = IsSet(axis.max) ? axis.max : data_hi;
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    return absl::InvalidArgumentError(absl::StrCat("the ", name, " axis has no range: no data and no min/max"));
  }
  if (axis.log) {
    if (lo <= 0 || hi <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ", name, " axis is logarithmic but its range [", lo, ", ", hi, "] is not positive"));
    }
    if (hi <= lo) hi = lo * 10;
    if (!IsSet(axis.min)) lo = std::pow(10.0, std::floor(std::log10(lo) + 1e-9));
    if (!IsSet(axis.max)) hi = std::pow(10.0, std::ceil(std::log10(hi) - 1e-9));
    return std::make_pair(lo, hi);
  }
  if (hi <= lo) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    if (!IsSet(axis.min)) lo -= pad;
    if (!IsSet(axis.max)) hi += pad;
    if (hi <= lo) {
      return absl::InvalidArgumentError(absl::StrCat("the ", name, " axis range [", lo, ", ", hi, "] is empty"));
    }
  }
  if (margin) {
    const double pad = (hi - lo) * 0.04;
    if (!IsSet(axis.min)) lo -= pad;
    if (!IsSet(axis.max)) hi += pad;
  }
  return std::make_pair(lo, hi);
}

void DrawPolyline(cv::Mat& img, const std::vector<cv::Point2d>& pts, Rgb color, double width, bool dashed) {
  const int thickness = std::max(1, static_cast<int>(std::lround(width * kSuper)));
  const cv::Scalar c = Bgr(color);
  // cv::line takes fixed-point coordinates: 4 fractional bits keep sub-pixel placement.
  constexpr int kShift = 4;
  auto fixed = [](const cv::Point2d& p) {
    return cv::Point(static_cast<int>(std::lround(p.x * 16)), static_cast<int>(std::lround(p.y * 16)));
  };
  if (!dashed) {
    for (size_t i = 1; i < pts.size(); ++i)
      cv::line(img, fixed(pts[i - 1]), fixed(pts[i]), c, thickness, cv::LINE_AA, kShift);
    return;
  }
  const double on = 7.0 * kSuper * std::max(1.0, width / 1.5), off = 5.0 * kSuper * std::max(1.0, width / 1.5);
  double phase = 0;  // distance along the current on+off period
  for (size_t i = 1; i < pts.size(); ++i) {
    const cv::Point2d a = pts[i - 1], d = pts[i] - pts[i - 1];
    const double len = std::hypot(d.x, d.y);
    double s = 0;
    while (s < len) {
      const double period_left = (phase < on ? on : on + off) - phase;
      const double step = std::min(period_left, len - s);
      if (phase < on)
        cv::line(img, fixed(a + d * (s / len)), fixed(a + d * ((s + step) / len)), c, thickness, cv::LINE_AA, kShift);
      s += step;
      phase += step;
      if (phase >= on + off) phase = 0;
    }
  }
}

struct LegendEntry {
  std::string label;
  Rgb color;
  bool filled = false;  // a swatch (histogram) rather than a line
  bool dashed = false;
};

}  // namespace

Rgb PaletteColor(size_t index) {
  static constexpr std::array<Rgb, 8> kPalette = {{{0, 114, 178},
                                                   {213, 94, 0},
                                                   {0, 158, 115},
                                                   {230, 159, 0},
                                                   {204, 121, 167},
                                                   {86, 180, 233},
                                                   {240, 228, 66},
                                                   {0, 0, 0}}};
  return kPalette[index % kPalette.size()];
}

std::vector<double> LinearTicks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || target < 1) return ticks;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw * 0.999) {
      step = m * mag;
      break;
    }
  }
  const double eps = step * 1e-9;
  for (double k = std::ceil((lo - eps) / step); k * step <= hi + eps; k += 1) {
    const double v = k * step;
    ticks.push_back(std::abs(v) < eps ? 0.0 : v);  // no "-0"
  }
  return ticks;
}

std::vector<double> LogTicks(double lo, double hi) {
  std::vector<double> ticks;
  if (!(lo > 0) || !(hi >= lo)) return ticks;
  for (int e = static_cast<int>(std::floor(std::log10(lo) + 1e-9)); e <= std::ceil(std::log10(hi) - 1e-9); ++e) {
    const double v = std::pow(10.0, e);
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
  }
  return ticks;
}

std::string FormatTick(double value, double step, bool log, bool percent) {
  const double v = percent ? value * 100 : value;
  const char* suffix = percent ? "%" : "";
  if (log) return absl::StrFormat("%g%s", v, suffix);
  const double s = std::abs(percent ? step * 100 : step);
  const int decimals = s > 0 ? std::max(0, static_cast<int>(std::ceil(-std::log10(s) - 1e-9))) : 0;
  return absl::StrFormat("%.*f%s", decimals, v, suffix);
}

absl::StatusOr<Bins> Histogram(const std::vector<double>& values, double lo, double hi, int bins) {
  if (bins < 1) return absl::InvalidArgumentError(absl::StrCat("a histogram needs at least one bin, got ", bins));
  if (!(hi > lo)) return absl::InvalidArgumentError(absl::StrCat("histogram range [", lo, ", ", hi, "] is empty"));
  Bins out;
  out.lo = lo;
  out.width = (hi - lo) / bins;
  out.counts.assign(static_cast<size_t>(bins), 0);
  for (const double v : values) {
    if (std::isnan(v)) continue;
    if (v < lo) {
      ++out.below;
    } else if (v > hi) {
      ++out.above;
    } else {
      const int i = std::min(bins - 1, static_cast<int>((v - lo) / out.width));
      ++out.counts[static_cast<size_t>(i)];
    }
  }
  return out;
}

absl::StatusOr<cv::Mat> Render(const Chart& chart) {
  if (chart.width < 200 || chart.height < 150 || chart.width > 8000 || chart.height > 8000) {
    return absl::InvalidArgumentError(
        absl::StrCat("chart size ", chart.width, "x", chart.height, " is outside 200x150 .. 8000x8000"));
  }
  if (chart.lines.empty() && chart.histograms.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("chart '", chart.title, "' has no lines and no histograms"));
  }
  for (const LineSeries& s : chart.lines) {
    if (s.x.size() != s.y.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("series '", s.label, "' has ", s.x.size(), " x values but ", s.y.size(), " y values"));
    }
  }
  if (!chart.histograms.empty() && chart.histogram_bins < 1) {
    return absl::InvalidArgumentError(absl::StrCat("histogram_bins must be >= 1, got ", chart.histogram_bins));
  }

  // ---- ranges ----
  const double inf = std::numeric_limits<double>::infinity();
  double x_lo = inf, x_hi = -inf, y_lo = inf, y_hi = -inf;
  for (const LineSeries& s : chart.lines) {
    DataRange(s.x, chart.x.log, &x_lo, &x_hi);
    DataRange(s.y, chart.y.log, &y_lo, &y_hi);
  }
  for (const HistogramSeries& h : chart.histograms) DataRange(h.values, chart.x.log, &x_lo, &x_hi);
  VF_ASSIGN_OR_RETURN(const auto xr, ResolveRange(chart.x, x_lo, x_hi, "x", chart.histograms.empty()));

  std::vector<Bins> bins;
  for (const HistogramSeries& h : chart.histograms) {
    VF_ASSIGN_OR_RETURN(Bins b, Histogram(h.values, xr.first, xr.second, chart.histogram_bins));
    const double total = static_cast<double>(h.values.size());
    for (const int64_t c : b.counts) {
      const double height = chart.histogram_density && total > 0 ? c / total : static_cast<double>(c);
      y_lo = std::min(y_lo, 0.0);
      y_hi = std::max(y_hi, height);
    }
    bins.push_back(std::move(b));
  }
  Axis y_axis = chart.y;
  if (!chart.histograms.empty() && !IsSet(y_axis.min) && !y_axis.log) y_axis.min = 0;
  VF_ASSIGN_OR_RETURN(auto yr, ResolveRange(y_axis, y_lo, y_hi, "y", true));
  if (!chart.histograms.empty() && !IsSet(chart.y.max) && !y_axis.log) yr.second = y_hi * 1.08;

  return Guarded(absl::StrCat("drawing chart '", chart.title, "'"), [&]() -> absl::StatusOr<cv::Mat> {
    const int S = kSuper;
    const TextPainter text(chart.font_file, false);
    const TextPainter bold(chart.font_file, true);
    const int W = chart.width * S, H = chart.height * S;
    const int tick_px = 13 * S, label_px = 15 * S, title_px = 19 * S, sub_px = 13 * S, legend_px = 13 * S;
    cv::Mat img(H, W, CV_8UC3, cv::Scalar::all(255));

    // ---- ticks (needed for the margins) ----
    const std::vector<double> xticks =
        chart.x.log ? LogTicks(xr.first, xr.second) : LinearTicks(xr.first, xr.second, std::max(3, chart.width / 110));
    const std::vector<double> yticks =
        y_axis.log ? LogTicks(yr.first, yr.second) : LinearTicks(yr.first, yr.second, std::max(3, chart.height / 80));
    const double xstep = xticks.size() > 1 ? xticks[1] - xticks[0] : 0;
    const double ystep = yticks.size() > 1 ? yticks[1] - yticks[0] : 0;
    int ytick_w = 0;
    for (const double v : yticks)
      ytick_w = std::max(ytick_w, text.Width(FormatTick(v, ystep, y_axis.log, y_axis.percent), tick_px));

    // ---- layout ----
    const int pad = 14 * S;
    int top =
        pad + (chart.title.empty() ? 0 : title_px + 6 * S) + (chart.subtitle.empty() ? 0 : sub_px + 6 * S) + 6 * S;
    const int left = pad + (chart.y.label.empty() ? 0 : label_px + 10 * S) + ytick_w + 10 * S;
    const int bottom = H - (pad + (chart.x.label.empty() ? 0 : label_px + 8 * S) + tick_px + 12 * S);
    const int right = W - 24 * S;
    if (right - left < 60 * S || bottom - top < 40 * S) {
      return absl::InvalidArgumentError(
          absl::StrCat("chart ", chart.width, "x", chart.height, " is too small for its labels"));
    }
    const cv::Rect plot(left, top, right - left, bottom - top);
    const Scale sx{xr.first, xr.second, chart.x.log, plot.x, plot.x + plot.width};
    const Scale sy{yr.first, yr.second, y_axis.log, plot.y + plot.height, plot.y};

    // ---- title ----
    int y = pad;
    if (!chart.title.empty()) {
      bold.Put(img, chart.title, {plot.x, y}, title_px, kInk, HAlign::kLeft, VAlign::kTop);
      y += title_px + 6 * S;
    }
    if (!chart.subtitle.empty())
      text.Put(img, chart.subtitle, {plot.x, y}, sub_px, kSoftInk, HAlign::kLeft, VAlign::kTop);

    // ---- grid and ticks ----
    auto minor_log = [](const std::vector<double>& major, double lo, double hi) {
      std::vector<double> out;
      for (double d = std::pow(10.0, std::floor(std::log10(lo))); d <= hi; d *= 10) {
        for (int m = 2; m <= 9; ++m) {
          if (d * m > lo && d * m < hi) out.push_back(d * m);
        }
      }
      return out;
    };
    if (chart.x.log) {
      for (const double v : minor_log(xticks, xr.first, xr.second)) {
        const int px = static_cast<int>(std::lround(sx.Pixel(v)));
        cv::line(img, {px, plot.y}, {px, plot.br().y}, Bgr(kMinorGrid), S);
      }
    }
    if (y_axis.log) {
      for (const double v : minor_log(yticks, yr.first, yr.second)) {
        const int py = static_cast<int>(std::lround(sy.Pixel(v)));
        cv::line(img, {plot.x, py}, {plot.br().x, py}, Bgr(kMinorGrid), S);
      }
    }
    for (const double v : xticks) {
      const int px = static_cast<int>(std::lround(sx.Pixel(v)));
      cv::line(img, {px, plot.y}, {px, plot.br().y}, Bgr(kGrid), S);
      cv::line(img, {px, plot.br().y}, {px, plot.br().y + 5 * S}, Bgr(kFrame), S);
      text.Put(img, FormatTick(v, xstep, chart.x.log, chart.x.percent), {px, plot.br().y + 9 * S}, tick_px, kSoftInk,
               HAlign::kCenter, VAlign::kTop);
    }
    for (const double v : yticks) {
      const int py = static_cast<int>(std::lround(sy.Pixel(v)));
      cv::line(img, {plot.x, py}, {plot.br().x, py}, Bgr(kGrid), S);
      cv::line(img, {plot.x - 5 * S, py}, {plot.x, py}, Bgr(kFrame), S);
      text.Put(img, FormatTick(v, ystep, y_axis.log, y_axis.percent), {plot.x - 9 * S, py}, tick_px, kSoftInk,
               HAlign::kRight, VAlign::kMiddle);
    }

    // ---- axis labels ----
    if (!chart.x.label.empty()) {
      text.Put(img, chart.x.label, {plot.x + plot.width / 2, H - pad}, label_px, kInk, HAlign::kCenter,
               VAlign::kBaseline);
    }
    if (!chart.y.label.empty()) {
      // Drawn horizontally into a strip, then turned a quarter to read bottom to top.
      const int w = text.Width(chart.y.label, label_px) + 4 * S, h = label_px + label_px / 3;
      cv::Mat strip(h, w, CV_8UC3, cv::Scalar::all(255));
      text.Put(strip, chart.y.label, {2 * S, label_px}, label_px, kInk, HAlign::kLeft, VAlign::kBaseline);
      cv::Mat turned;
      cv::rotate(strip, turned, cv::ROTATE_90_COUNTERCLOCKWISE);
      const int cx = pad, cy = std::max(0, plot.y + plot.height / 2 - turned.rows / 2);
      const cv::Rect dst(cx, cy, turned.cols, std::min(turned.rows, H - cy));
      turned(cv::Rect(0, 0, dst.width, dst.height)).copyTo(img(dst));
    }

    // ---- data, clipped to the plot area by drawing into it ----
    cv::Mat area = img(plot);
    const cv::Point2d origin(plot.x, plot.y);
    std::vector<LegendEntry> legend;
    for (size_t k = 0; k < chart.histograms.size(); ++k) {
      const HistogramSeries& h = chart.histograms[k];
      const Bins& b = bins[k];
      const double total = static_cast<double>(h.values.size());
      cv::Mat overlay = area.clone();
      std::vector<cv::Point2d> outline;
      const double base = sy.Pixel(y_axis.log ? yr.first : 0.0) - origin.y;
      for (size_t i = 0; i < b.counts.size(); ++i) {
        const double v = chart.histogram_density && total > 0 ? b.counts[i] / total : static_cast<double>(b.counts[i]);
        const double x0 = sx.Pixel(b.lo + b.width * static_cast<double>(i)) - origin.x;
        const double x1 = sx.Pixel(b.lo + b.width * static_cast<double>(i + 1)) - origin.x;
        const double top_y = (v > 0 ? sy.Pixel(v) : sy.Pixel(yr.first)) - origin.y;
        if (v > 0) {
          cv::rectangle(overlay, cv::Point(static_cast<int>(std::lround(x0)), static_cast<int>(std::lround(top_y))),
                        cv::Point(static_cast<int>(std::lround(x1)) - 1, static_cast<int>(std::lround(base))),
                        Bgr(h.color), cv::FILLED);
        }
        const double step_y = v > 0 ? top_y : base;
        outline.push_back({x0, i == 0 ? base : outline.back().y});
        outline.push_back({x0, step_y});
        outline.push_back({x1, step_y});
      }
      outline.push_back({outline.back().x, base});
      cv::addWeighted(overlay, 0.35, area, 0.65, 0, area);
      DrawPolyline(area, outline, h.color, 1.5, false);
      if (!h.label.empty()) legend.push_back({h.label, h.color, true, false});
    }
    for (const LineSeries& s : chart.lines) {
      std::vector<cv::Point2d> pts;
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        pts.push_back({sx.Pixel(s.x[i]) - origin.x, sy.Pixel(s.y[i]) - origin.y});
      }
      DrawPolyline(area, pts, s.color, s.width, s.dashed);
      if (s.markers) {
        for (const cv::Point2d& p : pts) {
          cv::circle(area, cv::Point(static_cast<int>(std::lround(p.x * 16)), static_cast<int>(std::lround(p.y * 16))),
                     static_cast<int>(std::lround((s.width + 2) * S * 16)), Bgr(s.color), cv::FILLED, cv::LINE_AA, 4);
        }
      }
      if (!s.label.empty()) legend.push_back({s.label, s.color, false, s.dashed});
    }
    for (const ReferenceLine& r : chart.references) {
      const double p = r.vertical ? sx.Pixel(r.value) - origin.x : sy.Pixel(r.value) - origin.y;
      const std::vector<cv::Point2d> pts =
          r.vertical ? std::vector<cv::Point2d>{{p, 0.0}, {p, static_cast<double>(plot.height)}}
                     : std::vector<cv::Point2d>{{0.0, p}, {static_cast<double>(plot.width), p}};
      DrawPolyline(area, pts, r.color, 1.5, r.dashed);
      if (!r.label.empty()) {
        if (r.vertical) {
          const int y = r.label_low ? plot.height - 8 * S : 8 * S;
          const bool fits_right = static_cast<int>(p) + 6 * S + text.Width(r.label, tick_px) < plot.width;
          text.Put(area, r.label, {static_cast<int>(p) + (fits_right ? 6 : -6) * S, y}, tick_px, r.color,
                   fits_right ? HAlign::kLeft : HAlign::kRight, r.label_low ? VAlign::kBaseline : VAlign::kTop);
        } else {
          text.Put(area, r.label, {r.label_low ? 6 * S : plot.width - 6 * S, static_cast<int>(p) - 6 * S}, tick_px,
                   r.color, r.label_low ? HAlign::kLeft : HAlign::kRight, VAlign::kBaseline);
        }
      }
    }

    // ---- frame ----
    cv::rectangle(img, plot, Bgr(kFrame), S);

    // ---- legend and notes, in the emptiest corner ----
    const int row = legend_px + 8 * S, swatch = 26 * S, box_pad = 10 * S;
    int legend_w = 0;
    for (const LegendEntry& e : legend) legend_w = std::max(legend_w, text.Width(e.label, legend_px));
    int notes_w = 0;
    for (const std::string& n : chart.notes) notes_w = std::max(notes_w, text.Width(n, legend_px));
    const cv::Size legend_size = legend.empty() ? cv::Size()
                                                : cv::Size(legend_w + swatch + 3 * box_pad,
                                                           static_cast<int>(legend.size()) * row + 2 * box_pad - 8 * S);
    const cv::Size notes_size =
        chart.notes.empty()
            ? cv::Size()
            : cv::Size(notes_w + 2 * box_pad, static_cast<int>(chart.notes.size()) * row + 2 * box_pad - 8 * S);
    const int gap = 8 * S;
    const cv::Size block(std::max(legend_size.width, notes_size.width),
                         legend_size.height + notes_size.height + (legend.empty() || chart.notes.empty() ? 0 : gap));
    if (block.area() > 0) {
      Corner corner = chart.legend;
      if (corner == Corner::kAuto) {
        // Fewest drawn (non-white) pixels under the block wins.
        int64_t best = -1;
        for (const Corner c : {Corner::kTopRight, Corner::kTopLeft, Corner::kBottomRight, Corner::kBottomLeft}) {
          const bool r = c == Corner::kTopRight || c == Corner::kBottomRight;
          const bool t = c == Corner::kTopRight || c == Corner::kTopLeft;
          const cv::Rect rr(r ? plot.width - block.width - gap : gap, t ? gap : plot.height - block.height - gap,
                            block.width, block.height);
          const cv::Rect clipped = rr & cv::Rect(0, 0, plot.width, plot.height);
          cv::Mat gray;
          cv::cvtColor(area(clipped), gray, cv::COLOR_BGR2GRAY);
          const int64_t inked = cv::countNonZero(gray < 200);
          if (best < 0 || inked < best) {
            best = inked;
            corner = c;
          }
        }
      }
      const bool r = corner == Corner::kTopRight || corner == Corner::kBottomRight;
      const bool t = corner == Corner::kTopRight || corner == Corner::kTopLeft;
      int bx = plot.x + (r ? plot.width - block.width - gap : gap);
      int by = plot.y + (t ? gap : plot.height - block.height - gap);
      auto box = [&](cv::Size size) {
        const cv::Rect rect(bx + (r ? block.width - size.width : 0), by, size.width, size.height);
        cv::Mat region = img(rect & cv::Rect(0, 0, W, H));
        cv::Mat white(region.size(), region.type(), cv::Scalar::all(255));
        cv::addWeighted(white, 0.88, region, 0.12, 0, region);
        cv::rectangle(img, rect, Bgr(kGrid), S);
        return rect;
      };
      if (!legend.empty()) {
        const cv::Rect rect = box(legend_size);
        for (size_t i = 0; i < legend.size(); ++i) {
          const LegendEntry& e = legend[i];
          const int cy = rect.y + box_pad + static_cast<int>(i) * row + legend_px / 2;
          const int x0 = rect.x + box_pad;
          if (e.filled) {
            cv::Mat sw = img(cv::Rect(x0, cy - legend_px / 2, swatch, legend_px));
            cv::Mat fill(sw.size(), sw.type(), Bgr(e.color));
            cv::addWeighted(fill, 0.35, sw, 0.65, 0, sw);
            cv::rectangle(img, cv::Rect(x0, cy - legend_px / 2, swatch, legend_px), Bgr(e.color), S * 3 / 2);
          } else {
            DrawPolyline(img,
                         {{static_cast<double>(x0), static_cast<double>(cy)},
                          {static_cast<double>(x0 + swatch), static_cast<double>(cy)}},
                         e.color, 2.5, e.dashed);
          }
          text.Put(img, e.label, {x0 + swatch + box_pad, cy}, legend_px, kInk, HAlign::kLeft, VAlign::kMiddle);
        }
        by += legend_size.height + gap;
      }
      if (!chart.notes.empty()) {
        const cv::Rect rect = box(notes_size);
        for (size_t i = 0; i < chart.notes.size(); ++i) {
          const int cy = rect.y + box_pad + static_cast<int>(i) * row + legend_px / 2;
          text.Put(img, chart.notes[i], {rect.x + box_pad, cy}, legend_px, kInk, HAlign::kLeft, VAlign::kMiddle);
        }
      }
    }

    cv::Mat out;
    cv::resize(img, out, cv::Size(chart.width, chart.height), 0, 0, cv::INTER_AREA);
    return out;
  });
}

absl::Status WritePng(const Chart& chart, const std::string& path) {
  VF_ASSIGN_OR_RETURN(const cv::Mat image, Render(chart));
  return Guarded(absl::StrCat("writing '", path, "'"), [&]() -> absl::Status {
    std::vector<uchar> png;
    if (!cv::imencode(".png", image, png)) return absl::InternalError("PNG encoding failed");
    const std::string bytes(png.begin(), png.end());
    return WriteFileAtomically(path, bytes);
  });
}

}  // namespace veriface::plot
