// FastConv2d: the oneDNN inference path and its prepacked weights agree with LibTorch's reference
// convolution, and prepacked weights never outlive a change of the real ones.

#include "core/nn/conv2d.h"

#include <gtest/gtest.h>

namespace veriface {
namespace {

FastConv2d MakeConv(int64_t stride, int64_t padding) {
  Conv2dSpec spec;
  spec.in_channels = 8;
  spec.out_channels = 16;
  spec.kernel_h = spec.kernel_w = 3;
  spec.stride = stride;
  spec.padding = padding;
  return FastConv2d(spec);
}

torch::Tensor Reference(const FastConv2d& conv, const torch::Tensor& x) {
  const Conv2dSpec& s = conv->spec();
  return at::conv2d(x, conv->weight, conv->bias, {s.stride, s.stride}, {s.padding, s.padding});
}

TEST(FastConv2d, InferenceMatchesTheReferenceForBothLayoutsAndBatchSizes) {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  for (const int64_t stride : {1, 2}) {
    FastConv2d conv = MakeConv(stride, stride == 1 ? 1 : 0);
    for (const int64_t batch : {1, 5}) {
      const auto x = torch::randn({batch, 8, 13, 11});
      const auto expected = Reference(conv, x);
      EXPECT_TRUE(torch::allclose(conv(x), expected, 1e-4, 1e-4));
      EXPECT_TRUE(torch::allclose(conv(x.contiguous(torch::MemoryFormat::ChannelsLast)), expected, 1e-4, 1e-4));
    }
  }
}

TEST(FastConv2d, PrepackedWeightsGiveTheSameOutput) {
  torch::manual_seed(2);
  torch::NoGradGuard no_grad;
  FastConv2d conv = MakeConv(1, 1);
  const auto x = torch::randn({1, 8, 17, 17});
  const auto before = conv(x);
  PrepackConvolutions(*conv);
  EXPECT_TRUE(torch::allclose(conv(x), before, 1e-5, 1e-5));
  // Another batch size and spatial size with the same packed weights.
  const auto y = torch::randn({3, 8, 9, 9});
  EXPECT_TRUE(torch::allclose(conv(y), Reference(conv, y), 1e-4, 1e-4));
}

TEST(FastConv2d, ChangedWeightsAreUsedEvenAfterPrepacking) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  FastConv2d conv = MakeConv(1, 1);
  PrepackConvolutions(*conv);
  conv->weight.mul_(-2);  // as loading weights or an optimiser step would change them
  const auto x = torch::randn({2, 8, 10, 10});
  EXPECT_TRUE(torch::allclose(conv(x), Reference(conv, x), 1e-4, 1e-4));
}

}  // namespace
}  // namespace veriface
