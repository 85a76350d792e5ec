#include "core/detect/box_ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace veriface {
namespace mtcnn {

double BoxOverlap(const Box& a, const Box& b, Overlap kind) {
  const double w = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const double h = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const double inter = w * h;
  const double area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const double area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return kind == Overlap::kUnion ? inter / (area_a + area_b - inter) : inter / std::min(area_a, area_b);
}

std::vector<int> NonMaxSuppression(const std::vector<Box>& boxes, const std::vector<float>& scores, double threshold,
                                   Overlap kind) {
  // Ascending stable order, consumed from the back: the best score first, and among equal scores the
  // later index first, exactly as the reference's argsort(kind='stable') + pop().
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] < scores[b]; });
  std::vector<int> keep;
  while (!order.empty()) {
    const int current = order.back();
    order.pop_back();
    keep.push_back(current);
    // NaN overlaps (zero-area boxes) are not <= threshold, so they are dropped, as in the reference.
    order.erase(std::remove_if(order.begin(), order.end(),
                               [&](int i) { return !(BoxOverlap(boxes[current], boxes[i], kind) <= threshold); }),
                order.end());
  }
  return keep;
}

double JsRound(double v) { return std::floor(v + 0.5); }

Box ToSquareRounded(const Box& b) {
  double x = b[0], y = b[1];
  double w = b[2] - b[0], h = b[3] - b[1];
  const double d = std::abs(w - h);
  if (w < h) {
    x -= d / 2;
    w += d;
  } else if (h < w) {
    y -= d / 2;
    h += d;
  }
  x = JsRound(x);
  y = JsRound(y);
  w = JsRound(w);
  h = JsRound(h);
  return {x, y, x + w, y + h};
}

Box Calibrate(const Box& b, const Regression& reg) {
  const double w = b[2] - b[0];
  const double h = b[3] - b[1];
  return ToSquareRounded({b[0] + static_cast<double>(reg[0]) * w, b[1] + static_cast<double>(reg[1]) * h,
                          b[2] + static_cast<double>(reg[2]) * w, b[3] + static_cast<double>(reg[3]) * h});
}

}  // namespace mtcnn
}  // namespace veriface
