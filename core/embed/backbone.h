#pragma once
// The backbone interface: aligned face chips in, feature vectors out. A new architecture is one new
// file implementing this, plus one line in backbone_factory.cc.

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "core/align/chip_template.h"

namespace veriface {

class Backbone : public torch::nn::Module {
 public:
  // chips: float [N, 3, S, S], RGB values in 0..255, S = input_size(). Each backbone does its own
  // normalisation. Returns features [N, feature_dim()].
  virtual torch::Tensor forward(const torch::Tensor& chips) = 0;

  virtual std::string arch() const = 0;
  virtual int64_t input_size() const = 0;
  virtual int64_t feature_dim() const = 0;
  // Constructor arguments, as stored in model.json so that the same network can be built again.
  virtual nlohmann::json params() const = 0;
  // The template its chips are aligned to; the project's own backbones learn on dlib-aligned chips.
  virtual ChipTemplate chip_template() const { return ChipTemplate::kDlib; }
};

// Builds an untrained backbone of architecture `arch` ("face-resnet", "mobilenetv2", ...) from the
// `params` object of model.json (or the trainer's flags); unknown names and bad params are errors.
absl::StatusOr<std::shared_ptr<Backbone>> MakeBackbone(const std::string& arch, const nlohmann::json& params);

}  // namespace veriface
