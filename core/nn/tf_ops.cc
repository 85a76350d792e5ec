#include "core/nn/tf_ops.h"

#include <algorithm>
#include <limits>

namespace veriface {
namespace {

std::pair<int64_t, int64_t> SamePadding(int64_t n, int64_t kernel, int64_t stride) {
  const int64_t out = (n + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - n, 0);
  return {total / 2, total - total / 2};
}

}  // namespace

torch::Tensor MaxPoolTfSame(const torch::Tensor& x, int64_t kernel, int64_t stride) {
  const auto [top, bottom] = SamePadding(x.size(2), kernel, stride);
  const auto [left, right] = SamePadding(x.size(3), kernel, stride);
  torch::Tensor padded = x;
  if (top + bottom + left + right > 0) {
    padded = torch::constant_pad_nd(x, {left, right, top, bottom}, -std::numeric_limits<double>::infinity());
  }
  return torch::max_pool2d(padded, {kernel, kernel}, {stride, stride});
}

torch::Tensor FlattenNhwc(const torch::Tensor& x) { return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1}); }

torch::Tensor PRelu(const torch::Tensor& x, const torch::Tensor& alpha) { return torch::prelu(x, alpha); }

}  // namespace veriface
