#pragma once
// Inception-ResNet-V2 (Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
// Connections on Learning", AAAI 2017, figures 3 and 15-19, with the channel counts of the released
// TF-slim model), trained from scratch as a face-embedding backbone. The stem and reductions are VALID,
// so any input of at least 75 pixels works (112 and 160 suit face chips). For small machines a width
// multiplier scales every convolution and the three residual stages can be made shallower than the
// paper's 10 / 20 / 10 blocks. Output: the globally average-pooled final 1x1 convolution, [N, 1536*width].

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/embed/backbone.h"

namespace veriface {

struct InceptionResNetV2Options {
  int64_t input_size = 160;
  double width = 1.0;
  std::vector<int64_t> blocks = {10, 20, 10};  // residual blocks at 35x35, 17x17 and 8x8 (for a 299 input)

  static absl::StatusOr<InceptionResNetV2Options> FromJson(const nlohmann::json& params);
  nlohmann::json ToJson() const;
};

namespace inception {

// Parallel branches over one input, concatenated along the channels.
class BranchesImpl : public torch::nn::Module {
 public:
  void Add(torch::nn::Sequential branch);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::vector<torch::nn::Sequential> branches_;
};
TORCH_MODULE(Branches);

// x + scale * up(branches(x)), then ReLU unless it is the network's last block.
class ScaledResidualImpl : public torch::nn::Module {
 public:
  ScaledResidualImpl(Branches branches, int64_t branch_channels, int64_t channels, double scale, bool relu);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Branches branches_;
  torch::nn::Conv2d up_;
  double scale_;
  bool relu_;
};
TORCH_MODULE(ScaledResidual);

}  // namespace inception

class InceptionResNetV2 final : public Backbone {
 public:
  explicit InceptionResNetV2(const InceptionResNetV2Options& options);
  // Parses `params` (model.json) and builds an untrained network; the factory's entry point.
  static absl::StatusOr<std::shared_ptr<Backbone>> Create(const nlohmann::json& params);

  torch::Tensor forward(const torch::Tensor& chips) override;
  std::string arch() const override { return "inception-resnet-v2"; }
  int64_t input_size() const override { return options_.input_size; }
  int64_t feature_dim() const override { return feature_dim_; }
  nlohmann::json params() const override { return options_.ToJson(); }

 private:
  InceptionResNetV2Options options_;
  int64_t feature_dim_ = 0;
  torch::nn::Sequential features_;
};

}  // namespace veriface
