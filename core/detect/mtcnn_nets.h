#pragma once
// The three MTCNN networks (P-Net, R-Net, O-Net) in the LibTorch C++ frontend.
//
// Every input is a *transposed* image, tensor [N, 3, W, H] with values (v - 127.5) / 128 in RGB order:
// the weights come from a Caffe/MATLAB lineage that stored images column-major. Outputs are indexed
// accordingly (P-Net's first spatial axis is image x). All convolutions are stride 1, VALID, with bias.

#include <torch/torch.h>

#include <tuple>

#include "absl/status/status.h"
#include "core/nn/conv2d.h"
#include "core/nn/linear.h"
#include "core/tfjs/tfjs_weights.h"

namespace veriface {

// 12x12 window, stride 2, fully convolutional:
// [N, 3, W, H] -> face probability [N, W', H'] and box regression (dl, dt, dr, db) [N, 4, W', H'].
class PNetImpl : public torch::nn::Module {
 public:
  PNetImpl();
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  absl::Status LoadFromTfjs(const TfjsWeights& weights);

 private:
  FastConv2d conv1_, conv2_, conv3_, conv4_1_, conv4_2_;
  torch::Tensor prelu1_, prelu2_, prelu3_;
};
TORCH_MODULE(PNet);

// [N, 3, 24, 24] -> probability [N], regression [N, 4].
class RNetImpl : public torch::nn::Module {
 public:
  RNetImpl();
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  absl::Status LoadFromTfjs(const TfjsWeights& weights);

 private:
  FastConv2d conv1_, conv2_, conv3_;
  FastLinear fc1_, fc2_1_, fc2_2_;
  torch::Tensor prelu1_, prelu2_, prelu3_, prelu4_;
};
TORCH_MODULE(RNet);

// [N, 3, 48, 48] -> probability [N], regression [N, 4], landmarks [N, 10] (x0..x4 then y0..y4, as
// fractions of the input box).
class ONetImpl : public torch::nn::Module {
 public:
  ONetImpl();
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  absl::Status LoadFromTfjs(const TfjsWeights& weights);

 private:
  FastConv2d conv1_, conv2_, conv3_, conv4_;
  FastLinear fc1_, fc2_1_, fc2_2_, fc2_3_;
  torch::Tensor prelu1_, prelu2_, prelu3_, prelu4_, prelu5_;
};
TORCH_MODULE(ONet);

}  // namespace veriface
