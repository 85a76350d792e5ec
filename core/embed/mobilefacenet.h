#pragma once
// MobileFaceNet (Chen et al., "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face Verification on
// Mobile Devices", 2018) with the weights of sirius-ai's MobileFaceNet_TF, read from its TFLite export:
// 112x112 RGB chip aligned to the ArcFace template -> 192-D feature (not normalised).
//
// The TFLite graph has batch norm folded into each convolution's bias, so every layer here is a
// convolution with bias, then a PReLU or nothing. Two conventions that LibTorch does not share:
// - TensorFlow's SAME padding at stride 2 on an even input pads one row and column at the bottom/right
//   only (a symmetric pad of 1 would shift every feature map by a pixel).
// - The graph spells PReLU as relu(x) + m * (x - |x|), so its slope is 2m.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/embed/backbone.h"
#include "core/nn/conv2d.h"
#include "core/tflite/tflite_model.h"

namespace veriface {

namespace mobilefacenet {

struct UnitSpec {
  int64_t in = 0;
  int64_t out = 0;
  int64_t kernel = 1;
  int64_t stride = 1;
  bool depthwise = false;
  bool prelu = false;
  bool valid = false;  // VALID padding (the 7x7 global depthwise layer); SAME otherwise
};

// One convolution with bias and an optional PReLU.
class UnitImpl : public torch::nn::Module {
 public:
  explicit UnitImpl(const UnitSpec& spec);
  torch::Tensor forward(const torch::Tensor& x);
  const UnitSpec& spec() const { return spec_; }
  // weights: TFLite's [O, KH, KW, I] (convolution) or [1, KH, KW, C] (depthwise); slope: [C] or undefined.
  absl::Status Load(const torch::Tensor& weights, const torch::Tensor& bias, const torch::Tensor& slope,
                    const std::string& name);

 private:
  UnitSpec spec_;
  FastConv2d conv_;
  torch::Tensor slope_;  // PReLU slopes [out], when spec_.prelu
};
TORCH_MODULE(Unit);

}  // namespace mobilefacenet

class MobileFaceNet final : public Backbone {
 public:
  MobileFaceNet();
  torch::Tensor forward(const torch::Tensor& chips) override;
  std::string arch() const override { return "mobilefacenet"; }
  int64_t input_size() const override { return 112; }
  int64_t feature_dim() const override { return 192; }
  nlohmann::json params() const override { return nlohmann::json::object(); }
  ChipTemplate chip_template() const override { return ChipTemplate::kArcFace; }

  // Loads the weights from the TFLite graph, after checking that its convolutions, strides, paddings,
  // PReLUs and residual additions are this network's, in this order; a mismatch names the layer.
  absl::Status LoadFromTflite(const TfliteModel& model);

 private:
  // Units [begin, end) applied in turn; with `residual`, the group's input is added to its output.
  struct Group {
    size_t begin = 0;
    size_t end = 0;
    bool residual = false;
  };

  std::vector<mobilefacenet::Unit> units_;
  std::vector<Group> groups_;
};

}  // namespace veriface
