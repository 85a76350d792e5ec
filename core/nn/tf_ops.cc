#include "core/nn/tf_ops.h"

#include <algorithm>
#include <limits>

namespace veriface {

std::pair<int64_t, int64_t> TfSamePadding(int64_t n, int64_t kernel, int64_t stride) {
  const int64_t out = (n + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - n, 0);
  return {total / 2, total - total / 2};
}

torch::Tensor PadTfSame(const torch::Tensor& x, int64_t kernel, int64_t stride) {
  const auto [top, bottom] = TfSamePadding(x.size(2), kernel, stride);
  const auto [left, right] = TfSamePadding(x.size(3), kernel, stride);
  return torch::constant_pad_nd(x, {left, right, top, bottom});
}

torch::Tensor MaxPoolTfSame(const torch::Tensor& x, int64_t kernel, int64_t stride) {
  const auto [top, bottom] = TfSamePadding(x.size(2), kernel, stride);
  const auto [left, right] = TfSamePadding(x.size(3), kernel, stride);
  if (top == 0 && left == 0) {
    // Padding only after: ceil-mode pooling starts its windows at the same places and lets the last one
    // run past the edge, over real values only, which is what -inf padding gives. Valid whenever both
    // produce ceil(n / stride) outputs; avoiding the padded copy matters because pooling is a large
    // share of MTCNN's time.
    const auto ceil_out = [&](int64_t n) { return (n - kernel + stride - 1) / stride + 1; };
    const auto same_out = [&](int64_t n) { return (n + stride - 1) / stride; };
    if (ceil_out(x.size(2)) == same_out(x.size(2)) && ceil_out(x.size(3)) == same_out(x.size(3))) {
      return torch::max_pool2d(x, {kernel, kernel}, {stride, stride}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
    }
  }
  const auto padded = torch::constant_pad_nd(x, {left, right, top, bottom}, -std::numeric_limits<double>::infinity());
  return torch::max_pool2d(padded, {kernel, kernel}, {stride, stride});
}

torch::Tensor FlattenNhwc(const torch::Tensor& x) { return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1}); }

torch::Tensor PRelu(const torch::Tensor& x, const torch::Tensor& alpha) { return torch::prelu(x, alpha); }

}  // namespace veriface
