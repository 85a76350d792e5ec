#pragma once
// MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018),
// trained from scratch as a face-embedding backbone: the paper's stage table, a width multiplier so
// that it fits a small CPU, and a configurable square input (112 or 160 suit aligned face chips).
// Output: the globally average-pooled last 1x1 convolution, [N, last_channels].

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/embed/backbone.h"
#include "core/embed/conv_bn_act.h"

namespace veriface {

struct MobileNetV2Options {
  int64_t input_size = 112;
  double width = 1.0;            // multiplies every stage's channels (rounded to a multiple of 8)
  int64_t last_channels = 1280;  // the final 1x1 convolution; the paper scales it only for width > 1

  // Missing keys keep their defaults; unknown keys and out-of-range values are errors.
  static absl::StatusOr<MobileNetV2Options> FromJson(const nlohmann::json& params);
  nlohmann::json ToJson() const;
};

namespace mobilenetv2 {

// expand 1x1 (ReLU6) -> depthwise 3x3 (ReLU6) -> project 1x1 (linear), with an identity shortcut
// when the block keeps both resolution and width.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expansion);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Sequential body_;
  bool shortcut_;
};
TORCH_MODULE(InvertedResidual);

}  // namespace mobilenetv2

class MobileNetV2 final : public Backbone {
 public:
  explicit MobileNetV2(const MobileNetV2Options& options);
  // Parses `params` (model.json) and builds an untrained network; the factory's entry point.
  static absl::StatusOr<std::shared_ptr<Backbone>> Create(const nlohmann::json& params);

  torch::Tensor forward(const torch::Tensor& chips) override;
  std::string arch() const override { return "mobilenetv2"; }
  int64_t input_size() const override { return options_.input_size; }
  int64_t feature_dim() const override { return feature_dim_; }
  nlohmann::json params() const override { return options_.ToJson(); }

 private:
  MobileNetV2Options options_;
  int64_t feature_dim_ = 0;
  torch::nn::Sequential features_;
};

}  // namespace veriface
