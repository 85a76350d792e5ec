#pragma once
// VGG19 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
// ICLR 2015, configuration E: sixteen 3x3 convolutions in five pooled stages), trained from scratch as
// a face-embedding backbone. Batch normalisation after every convolution (a plain VGG19 does not train
// from scratch without it), a width multiplier for small machines, and global average pooling in place
// of the two 4096-wide ImageNet layers. Output: [N, 512 * width].

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "core/embed/backbone.h"

namespace veriface {

struct Vgg19Options {
  int64_t input_size = 112;  // at least 32: five 2x2 pools
  double width = 1.0;        // multiplies every convolution's channels (at least 8 each)

  static absl::StatusOr<Vgg19Options> FromJson(const nlohmann::json& params);
  nlohmann::json ToJson() const;
};

class Vgg19 final : public Backbone {
 public:
  explicit Vgg19(const Vgg19Options& options);
  // Parses `params` (model.json) and builds an untrained network; the factory's entry point.
  static absl::StatusOr<std::shared_ptr<Backbone>> Create(const nlohmann::json& params);

  torch::Tensor forward(const torch::Tensor& chips) override;
  std::string arch() const override { return "vgg19"; }
  int64_t input_size() const override { return options_.input_size; }
  int64_t feature_dim() const override { return feature_dim_; }
  nlohmann::json params() const override { return options_.ToJson(); }

 private:
  Vgg19Options options_;
  int64_t feature_dim_ = 0;
  torch::nn::Sequential features_;
  torch::Tensor mean_, inv_std_;  // ImageNet statistics on the 0..255 scale, [1, 3, 1, 1]
};

}  // namespace veriface
