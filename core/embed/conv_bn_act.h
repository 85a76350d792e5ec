#pragma once
// Convolution (no bias) + batch normalisation + activation: the unit every from-scratch backbone
// (MobileNetV2, VGG19, Inception-ResNet-V2) is built of. torch::nn::Conv2d rather than FastConv2d
// because these networks need rectangular kernels with per-axis padding (Inception's 1x7 / 7x1).

#include <torch/torch.h>

#include <cstdint>

namespace veriface {

enum class Activation { kNone, kRelu, kRelu6 };

struct ConvBnActSpec {
  int64_t in = 0;
  int64_t out = 0;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride = 1;
  int64_t pad_h = 0;
  int64_t pad_w = 0;
  int64_t groups = 1;
  Activation act = Activation::kRelu;
  double bn_eps = 1e-5;
};

// A square kernel with "same" padding at stride 1 (k / 2) unless `valid` asks for none.
inline ConvBnActSpec SquareConv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, bool valid = false,
                                Activation act = Activation::kRelu) {
  ConvBnActSpec s;
  s.in = in;
  s.out = out;
  s.kernel_h = s.kernel_w = kernel;
  s.stride = stride;
  s.pad_h = s.pad_w = valid ? 0 : kernel / 2;
  s.act = act;
  return s;
}

class ConvBnActImpl : public torch::nn::Module {
 public:
  explicit ConvBnActImpl(const ConvBnActSpec& s)
      : conv_(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(s.in, s.out, {s.kernel_h, s.kernel_w})
                                                            .stride(s.stride)
                                                            .padding({s.pad_h, s.pad_w})
                                                            .groups(s.groups)
                                                            .bias(false)))),
        bn_(register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(s.out).eps(s.bn_eps)))),
        act_(s.act) {
    // He initialisation for ReLU networks trained from scratch (the LibTorch default is scaled for
    // leaky ReLU with slope sqrt(5), which starts deep plain nets such as VGG19 with vanishing signal).
    torch::nn::init::kaiming_normal_(conv_->weight, 0.0, torch::kFanOut, torch::kReLU);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn_(conv_(x));
    switch (act_) {
      case Activation::kRelu:
        return torch::relu(y);
      case Activation::kRelu6:
        return torch::clamp(y, 0.0, 6.0);
      case Activation::kNone:
        break;
    }
    return y;
  }

 private:
  torch::nn::Conv2d conv_;
  torch::nn::BatchNorm2d bn_;
  Activation act_;
};
TORCH_MODULE(ConvBnAct);

}  // namespace veriface
