#pragma once
// Small charts drawn with OpenCV and written as PNG: line charts (linear or log axes), histograms,
// reference lines, a legend and a box of notes. Enough for ROC curves, score histograms and training
// curves, with no plotting library and no Python.
//
// Text uses a TrueType font (DejaVu Sans, from fonts-dejavu-core) when one is found and OpenCV's
// built-in Hershey font otherwise, so a chart can always be drawn.

#include <limits>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface::plot {

// Colours are RGB, as a person writes them; the renderer converts for OpenCV.
struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// A qualitative palette that stays distinguishable for the common colour-vision deficiencies
// (Okabe-Ito): blue, vermilion, bluish green, orange, reddish purple, sky blue, yellow, black.
Rgb PaletteColor(size_t index);

struct Axis {
  std::string label;
  bool log = false;  // base-10; values <= 0 lie off the axis and are clipped
  // Range; NaN means "from the data" (with a small margin for linear axes).
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
  bool percent = false;  // tick labels show value * 100 with a % sign
};

struct LineSeries {
  std::string label;  // empty: not in the legend
  std::vector<double> x;
  std::vector<double> y;
  Rgb color = PaletteColor(0);
  double width = 2;  // pixels
  bool dashed = false;
  bool markers = false;  // a dot at every point
};

// Values binned over the chart's x range; several series share the same bins and are drawn
// translucently over one another.
struct HistogramSeries {
  std::string label;
  std::vector<double> values;
  Rgb color = PaletteColor(0);
};

struct ReferenceLine {
  bool vertical = true;  // x = value; otherwise y = value
  double value = 0;
  std::string label;  // written beside the line
  Rgb color = {60, 60, 60};
  bool dashed = true;
  bool label_low = false;  // the label near the bottom (vertical line) or the left (horizontal), not the top/right
};

enum class Corner { kAuto, kTopLeft, kTopRight, kBottomLeft, kBottomRight };

struct Chart {
  std::string title;
  std::string subtitle;
  Axis x;
  Axis y;
  std::vector<LineSeries> lines;
  std::vector<HistogramSeries> histograms;
  int histogram_bins = 50;
  bool histogram_density = false;  // bar height = fraction of the series per bin, not a count
  std::vector<ReferenceLine> references;
  std::vector<std::string> notes;  // lines of text in a box (e.g. "AUC 0.998")
  Corner legend = Corner::kAuto;   // the notes go in the corner below or above it
  int width = 960;                 // output size in pixels
  int height = 640;
  std::string font_file;  // a .ttf to use instead of the default search
};

// The chart as a CV_8UC3 image in OpenCV's BGR order; INVALID_ARGUMENT for an unusable chart (no data,
// mismatched x/y sizes, an empty or non-positive log range, a silly size).
absl::StatusOr<cv::Mat> Render(const Chart& chart);

// Render(chart) written to `path` as PNG.
absl::Status WritePng(const Chart& chart, const std::string& path);

// ---- helpers, exposed for tests and for callers that lay out their own axes ----

// Round tick values ("nice numbers": steps of 1, 2 or 5 times a power of ten) covering [lo, hi] with
// about `target` ticks, all inside [lo, hi].
std::vector<double> LinearTicks(double lo, double hi, int target);

// Powers of ten inside [lo, hi] (lo > 0).
std::vector<double> LogTicks(double lo, double hi);

// A tick label: as few digits as `step` needs (linear axes), %g for log axes, with % when asked.
std::string FormatTick(double value, double step, bool log, bool percent);

struct Bins {
  double lo = 0;
  double width = 0;
  std::vector<int64_t> counts;
  int64_t below = 0;  // values < lo
  int64_t above = 0;  // values > hi (the last bin includes its upper edge)
};

// Equal-width bins over [lo, hi]; INVALID_ARGUMENT when bins < 1 or hi <= lo.
absl::StatusOr<Bins> Histogram(const std::vector<double>& values, double lo, double hi, int bins);

}  // namespace veriface::plot
