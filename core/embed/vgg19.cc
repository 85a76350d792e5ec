#include "core/embed/vgg19.h"

#include <algorithm>
#include <cmath>

#include "core/common/status_macros.h"
#include "core/embed/conv_bn_act.h"
#include "core/embed/param_reader.h"

namespace veriface {
namespace {

constexpr int64_t kPool = 0;
// Configuration E: channels of each 3x3 convolution, kPool for a 2x2 max-pool.
constexpr int64_t kLayers[] = {64,  64,  kPool, 128, 128,   kPool, 256, 256, 256, 256,  kPool,
                               512, 512, 512,   512, kPool, 512,   512, 512, 512, kPool};

}  // namespace

absl::StatusOr<Vgg19Options> Vgg19Options::FromJson(const nlohmann::json& params) {
  Vgg19Options o;
  ParamReader r(params, "vgg19 params");
  VF_ASSIGN_OR_RETURN(o.input_size, r.Integer("input_size", o.input_size, 32, 512));
  VF_ASSIGN_OR_RETURN(o.width, r.Number("width", o.width, 0.05, 4.0));
  VF_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  return o;
}

nlohmann::json Vgg19Options::ToJson() const { return {{"input_size", input_size}, {"width", width}}; }

absl::StatusOr<std::shared_ptr<Backbone>> Vgg19::Create(const nlohmann::json& params) {
  VF_ASSIGN_OR_RETURN(const auto options, Vgg19Options::FromJson(params));
  return std::shared_ptr<Backbone>(std::make_shared<Vgg19>(options));
}

Vgg19::Vgg19(const Vgg19Options& options) : options_(options) {
  int64_t channels = 3;
  for (const int64_t layer : kLayers) {
    if (layer == kPool) {
      features_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      continue;
    }
    const auto out = std::max<int64_t>(8, std::lround(static_cast<double>(layer) * options_.width));
    features_->push_back(ConvBnAct(SquareConv(channels, out, 3)));
    channels = out;
  }
  feature_dim_ = channels;
  register_module("features", features_);
  mean_ = register_buffer("mean", torch::tensor({123.675F, 116.28F, 103.53F}).view({1, 3, 1, 1}));
  inv_std_ = register_buffer("inv_std", 1.0 / torch::tensor({58.395F, 57.12F, 57.375F}).view({1, 3, 1, 1}));
}

torch::Tensor Vgg19::forward(const torch::Tensor& chips) {
  return features_->forward((chips - mean_) * inv_std_).mean({2, 3});
}

}  // namespace veriface
