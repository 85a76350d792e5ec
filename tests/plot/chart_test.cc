// Charts: tick choice, labels, binning, and that what is drawn lies where the data says.

#include "trainer/plot/chart.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>

#include "tests/testing/test_env.h"

namespace veriface::plot {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pointwise;

TEST(LinearTicks, PicksRoundSteps) {
  EXPECT_THAT(LinearTicks(0, 1, 5), Pointwise(DoubleNear(1e-12), std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  // (0.97 - 0.83) / 5 = 0.028 rounds up to a step of 0.05.
  EXPECT_THAT(LinearTicks(0.83, 0.97, 5), Pointwise(DoubleNear(1e-12), std::vector<double>{0.85, 0.9, 0.95}));
  EXPECT_THAT(LinearTicks(-3, 3, 3), Pointwise(DoubleNear(1e-12), std::vector<double>{-2, 0, 2}));
  EXPECT_THAT(LinearTicks(0, 1000, 4), Pointwise(DoubleNear(1e-9), std::vector<double>{0, 500, 1000}));
  EXPECT_TRUE(LinearTicks(1, 1, 5).empty());
}

TEST(LogTicks, PowersOfTenInside) {
  EXPECT_THAT(LogTicks(1e-4, 1), Pointwise(DoubleNear(1e-15), std::vector<double>{1e-4, 1e-3, 1e-2, 1e-1, 1}));
  EXPECT_THAT(LogTicks(3e-4, 0.5), Pointwise(DoubleNear(1e-15), std::vector<double>{1e-3, 1e-2, 1e-1}));
  EXPECT_TRUE(LogTicks(0, 1).empty());
}

TEST(FormatTick, DigitsFollowTheStep) {
  EXPECT_EQ(FormatTick(0.25, 0.05, false, false), "0.25");
  EXPECT_EQ(FormatTick(0.9, 0.05, false, false), "0.90");
  EXPECT_EQ(FormatTick(500, 500, false, false), "500");
  EXPECT_EQ(FormatTick(1.0, 0.2, false, true), "100%");
  EXPECT_EQ(FormatTick(0.95, 0.01, false, true), "95%");
  EXPECT_EQ(FormatTick(0.001, 0, true, true), "0.1%");
  EXPECT_EQ(FormatTick(1e-4, 0, true, false), "0.0001");
}

TEST(Histogram, CountsWithTheLastBinClosed) {
  const auto b = Histogram({0, 0.1, 0.5, 0.99, 1.0, -1, 2, NAN}, 0, 1, 2);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(b->counts, ElementsAre(2, 3));
  EXPECT_EQ(b->below, 1);
  EXPECT_EQ(b->above, 1);
  EXPECT_DOUBLE_EQ(b->width, 0.5);
  EXPECT_THAT(Histogram({1}, 0, 1, 0).status().message(), HasSubstr("at least one bin"));
  EXPECT_THAT(Histogram({1}, 1, 1, 3).status().message(), HasSubstr("empty"));
}

// Pixels of exactly-ish one colour (drawn lines are anti-aliased; the cores are the colour itself).
std::vector<cv::Point> PixelsOf(const cv::Mat& bgr, Rgb c, int tolerance = 40) {
  std::vector<cv::Point> out;
  for (int y = 0; y < bgr.rows; ++y) {
    for (int x = 0; x < bgr.cols; ++x) {
      const cv::Vec3b p = bgr.at<cv::Vec3b>(y, x);
      if (std::abs(p[2] - c.r) + std::abs(p[1] - c.g) + std::abs(p[0] - c.b) < tolerance) out.push_back({x, y});
    }
  }
  return out;
}

// Correlation of the x and y image coordinates of the points.
double Correlation(const std::vector<cv::Point>& pts) {
  double mx = 0, my = 0;
  for (const auto& p : pts) {
    mx += p.x;
    my += p.y;
  }
  mx /= pts.size();
  my /= pts.size();
  double sxy = 0, sxx = 0, syy = 0;
  for (const auto& p : pts) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) * (p.x - mx);
    syy += (p.y - my) * (p.y - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

Chart Line(std::vector<double> x, std::vector<double> y) {
  Chart c;
  c.title = "test";
  c.x.label = "x";
  c.y.label = "y";
  LineSeries s;
  s.x = std::move(x);
  s.y = std::move(y);
  s.color = {255, 0, 0};
  c.lines.push_back(s);
  return c;
}

TEST(Render, LinesRiseAndFallAsTheirData) {
  const auto up = Render(Line({0, 1}, {0, 1}));
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->cols, 960);
  EXPECT_EQ(up->rows, 640);
  EXPECT_EQ(up->type(), CV_8UC3);
  const auto rising = PixelsOf(*up, {255, 0, 0});
  ASSERT_GT(rising.size(), 300u);
  EXPECT_LT(Correlation(rising), -0.95);  // image y grows downwards

  const auto down = Render(Line({0, 1}, {1, 0}));
  ASSERT_TRUE(down.ok());
  EXPECT_GT(Correlation(PixelsOf(*down, {255, 0, 0})), 0.95);
}

TEST(Render, LogAxisSpacesDecadesEvenly) {
  // Three flat segments at different heights over the decades 1e-3..1e-2, 1e-2..1e-1, 1e-1..1: on a log
  // axis each spans the same width.
  Chart c;
  c.x = {"FAR", true, 1e-3, 1, false};
  c.y = {"", false, 0, 3, false};
  const Rgb colors[] = {{255, 0, 0}, {0, 0, 255}, {0, 160, 0}};
  for (int k = 0; k < 3; ++k) {
    LineSeries s;
    s.x = {std::pow(10.0, k - 3), std::pow(10.0, k - 2)};
    s.y = {k + 0.5, k + 0.5};
    s.color = colors[k];
    c.lines.push_back(s);
  }
  const auto img = Render(c);
  ASSERT_TRUE(img.ok()) << img.status();
  std::vector<int> widths;
  for (const Rgb& col : colors) {
    const auto pts = PixelsOf(*img, col);
    ASSERT_FALSE(pts.empty());
    int lo = img->cols, hi = 0;
    for (const auto& p : pts) {
      lo = std::min(lo, p.x);
      hi = std::max(hi, p.x);
    }
    widths.push_back(hi - lo);
  }
  EXPECT_NEAR(widths[0], widths[1], 4);
  EXPECT_NEAR(widths[1], widths[2], 4);
  EXPECT_GT(widths[0], 150);
}

TEST(Render, HistogramsAndReferenceLines) {
  Chart c;
  c.title = "scores";
  HistogramSeries a, b;
  for (int i = 0; i < 1000; ++i) {
    a.values.push_back(0.2 + 0.1 * std::sin(i));
    b.values.push_back(0.8 + 0.1 * std::cos(i));
  }
  a.label = "a";
  b.label = "b";
  a.color = {0, 114, 178};
  b.color = {213, 94, 0};
  c.histograms = {a, b};
  c.references.push_back({true, 0.5, "threshold", {200, 0, 200}, false});
  c.notes = {"a note"};
  const auto img = Render(c);
  ASSERT_TRUE(img.ok()) << img.status();
  const auto left = PixelsOf(*img, a.color);
  const auto right = PixelsOf(*img, b.color);
  const auto mark = PixelsOf(*img, {200, 0, 200});
  ASSERT_GT(left.size(), 100u);
  ASSERT_GT(right.size(), 100u);
  ASSERT_GT(mark.size(), 100u);
  auto mean_x = [](const std::vector<cv::Point>& pts) {
    double s = 0;
    for (const auto& p : pts) s += p.x;
    return s / pts.size();
  };
  // The threshold line lies between the two humps (the legend's swatches pull the means a little).
  EXPECT_LT(mean_x(left), mean_x(mark));
  EXPECT_GT(mean_x(right), mean_x(mark));
}

TEST(Render, RejectsUnusableCharts) {
  Chart empty;
  EXPECT_THAT(Render(empty).status().message(), HasSubstr("no lines and no histograms"));
  Chart bad = Line({0, 1}, {0});
  EXPECT_THAT(Render(bad).status().message(), HasSubstr("2 x values but 1 y values"));
  Chart log = Line({0, 1}, {0, 1});
  log.x.log = true;
  log.x.min = 0;
  EXPECT_THAT(Render(log).status().message(), HasSubstr("logarithmic"));
  Chart tiny = Line({0, 1}, {0, 1});
  tiny.width = 10;
  EXPECT_THAT(Render(tiny).status().message(), HasSubstr("outside"));
  Chart nan = Line({NAN}, {NAN});
  EXPECT_THAT(Render(nan).status().message(), HasSubstr("no range"));
}

TEST(WritePng, WritesAReadableImage) {
  testing::TempDir dir;
  ASSERT_TRUE(WritePng(Line({1, 2, 3}, {3, 1, 2}), dir.File("c.png")).ok());
  const cv::Mat back = cv::imread(dir.File("c.png"));
  EXPECT_EQ(back.cols, 960);
  EXPECT_EQ(back.rows, 640);
  EXPECT_FALSE(WritePng(Line({1, 2}, {1, 2}), dir.File("no/such/dir/c.png")).ok());
}

}  // namespace
}  // namespace veriface::plot
