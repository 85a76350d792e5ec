#pragma once
// dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1), as shipped in face-api.js:
// 150x150 RGB chip -> 128-D descriptor (not normalised; dlib compares Euclidean distances to 0.6).
//
// Layer conventions that differ from common ResNets (each one checked against dlib and face-api):
// stride-2 convolutions and all pools are VALID; a down-sampling block zero-pads the shortcut's
// channels and the conv branch's bottom/right edge where sizes differ (dlib's add_prev); the global
// mean counts those zeros; the input is (RGB - mean) / 256; the final dense layer has no bias.

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/embed/backbone.h"
#include "core/nn/conv2d.h"
#include "core/tfjs/tfjs_weights.h"

namespace veriface {

namespace face_resnet {

// conv (its frozen batch-norm affine folded into weights and bias) + optional ReLU.
class ConvUnitImpl : public torch::nn::Module {
 public:
  ConvUnitImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool relu);
  torch::Tensor forward(const torch::Tensor& x);
  // Loads `prefix`/conv/{filters,bias} and `prefix`/scale/{weights,biases} and folds the scale.
  absl::Status LoadFromTfjs(const TfjsWeights& w, const std::string& prefix);

 private:
  FastConv2d conv_;
  bool relu_;
};
TORCH_MODULE(ConvUnit);

// relu(conv2(conv1(x)) + shortcut(x)); down-sampling blocks use a stride-2 VALID conv1 and a 2x2
// average-pool shortcut, zero-filling whatever sizes disagree.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in, int64_t out, bool down);
  torch::Tensor forward(const torch::Tensor& x);
  absl::Status LoadFromTfjs(const TfjsWeights& w, const std::string& prefix);

 private:
  ConvUnit conv1_, conv2_;
  bool down_;
};
TORCH_MODULE(ResidualBlock);

}  // namespace face_resnet

class FaceResNet final : public Backbone {
 public:
  FaceResNet();
  torch::Tensor forward(const torch::Tensor& chips) override;
  std::string arch() const override { return "face-resnet"; }
  int64_t input_size() const override { return 150; }
  int64_t feature_dim() const override { return 128; }
  nlohmann::json params() const override { return nlohmann::json::object(); }

  // Loads face-api.js's `face_recognition_model` manifest (117 tensors).
  absl::Status LoadFromTfjs(const TfjsWeights& weights);

 private:
  face_resnet::ConvUnit stem_;
  std::vector<std::pair<std::string, face_resnet::ResidualBlock>> blocks_;
  torch::Tensor fc_;    // [256, 128], applied as x @ fc
  torch::Tensor mean_;  // [1, 3, 1, 1], RGB
};

}  // namespace veriface
