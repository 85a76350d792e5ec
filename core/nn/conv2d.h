#pragma once
// A 2-D convolution module whose inference path always takes oneDNN.
//
// LibTorch 1.13 chooses the CPU convolution kernel by a heuristic that sends batch-1 3x3 convolutions
// on small inputs (N*C*H*W <= 20480) to `_slow_conv2d` (im2col + BLAS); with Debian's generic BLAS that
// path is ~15x slower than oneDNN. Calling the oneDNN kernel directly removes the cliff. Training
// (autograd on) keeps the generic dispatcher, which has every backward.

#include <torch/torch.h>

#include <cstdint>

namespace veriface {

struct Conv2dSpec {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride = 1;
  int64_t padding = 0;  // symmetric, in both axes
  int64_t groups = 1;
  bool bias = true;
};

class FastConv2dImpl : public torch::nn::Module {
 public:
  explicit FastConv2dImpl(const Conv2dSpec& spec);
  torch::Tensor forward(const torch::Tensor& x);

  const Conv2dSpec& spec() const { return spec_; }
  torch::Tensor weight;  // OIHW
  torch::Tensor bias;    // [O], undefined when spec.bias is false

  // Keeps a copy of the weights in oneDNN's blocked layout, so that inference stops reordering them on
  // every call (at batch 1 that reorder is a large part of the small late layers' time). The copy is
  // used only while `weight` is unchanged since (its version counter says so); training never sees it.
  // Not thread-safe against concurrent forward(): call it once, before serving.
  void PrepackForInference();

 private:
  Conv2dSpec spec_;
  torch::Tensor packed_weight_;
  int64_t packed_version_ = -1;
};
TORCH_MODULE(FastConv2d);

// PrepackForInference on every FastConv2d inside `module` (CPU float32 weights only).
void PrepackConvolutions(torch::nn::Module& module);

}  // namespace veriface
