#pragma once
// A dense layer whose inference path runs on oneDNN, as a 1x1 convolution.
//
// LibTorch hands dense layers to the system BLAS, which on a stock Debian is the unoptimised
// reference BLAS (~1-2 GFLOP/s): MTCNN's R-Net and O-Net spent most of their time there. oneDNN,
// which LibTorch already ships for convolutions, runs the same product an order of magnitude faster.
// Training (autograd on) keeps torch::linear. Parameters are named and shaped as torch::nn::Linear's
// (weight [out, in], bias [out]), so saved weights are interchangeable.

#include <cstdint>

#include <torch/torch.h>

namespace veriface {

class FastLinearImpl : public torch::nn::Module {
 public:
  FastLinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out], undefined without bias
};
TORCH_MODULE(FastLinear);

}  // namespace veriface
