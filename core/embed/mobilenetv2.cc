#include "core/embed/mobilenetv2.h"

#include <algorithm>
#include <cmath>

#include "core/common/status_macros.h"
#include "core/embed/param_reader.h"

namespace veriface {
namespace {

// The paper's rounding: to the nearest multiple of 8, never losing more than 10% of the channels.
int64_t RoundChannels(double channels) {
  const int64_t divisor = 8;
  int64_t rounded = std::max(divisor, static_cast<int64_t>(channels + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * channels) rounded += divisor;
  return rounded;
}

struct Stage {
  int64_t expansion;  // t
  int64_t channels;   // c
  int64_t repeats;    // n
  int64_t stride;     // s (first block of the stage only)
};

// Table 2 of the paper.
constexpr Stage kStages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

}  // namespace

absl::StatusOr<MobileNetV2Options> MobileNetV2Options::FromJson(const nlohmann::json& params) {
  MobileNetV2Options o;
  ParamReader r(params, "mobilenetv2 params");
  VF_ASSIGN_OR_RETURN(o.input_size, r.Integer("input_size", o.input_size, 32, 512));
  VF_ASSIGN_OR_RETURN(o.width, r.Number("width", o.width, 0.1, 4.0));
  VF_ASSIGN_OR_RETURN(o.last_channels, r.Integer("last_channels", o.last_channels, 8, 8192));
  VF_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  return o;
}

nlohmann::json MobileNetV2Options::ToJson() const {
  return {{"input_size", input_size}, {"width", width}, {"last_channels", last_channels}};
}

namespace mobilenetv2 {

InvertedResidualImpl::InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expansion)
    : shortcut_(stride == 1 && in == out) {
  const int64_t hidden = in * expansion;
  if (expansion != 1) body_->push_back(ConvBnAct(SquareConv(in, hidden, 1, 1, false, Activation::kRelu6)));
  ConvBnActSpec depthwise = SquareConv(hidden, hidden, 3, stride, false, Activation::kRelu6);
  depthwise.groups = hidden;
  body_->push_back(ConvBnAct(depthwise));
  body_->push_back(ConvBnAct(SquareConv(hidden, out, 1, 1, false, Activation::kNone)));
  register_module("body", body_);
}

torch::Tensor InvertedResidualImpl::forward(const torch::Tensor& x) {
  auto y = body_->forward(x);
  return shortcut_ ? x + y : y;
}

}  // namespace mobilenetv2

absl::StatusOr<std::shared_ptr<Backbone>> MobileNetV2::Create(const nlohmann::json& params) {
  VF_ASSIGN_OR_RETURN(const auto options, MobileNetV2Options::FromJson(params));
  return std::shared_ptr<Backbone>(std::make_shared<MobileNetV2>(options));
}

MobileNetV2::MobileNetV2(const MobileNetV2Options& options) : options_(options) {
  int64_t channels = RoundChannels(32 * options_.width);
  features_->push_back(ConvBnAct(SquareConv(3, channels, 3, 2, false, Activation::kRelu6)));
  for (const Stage& s : kStages) {
    const int64_t out = RoundChannels(static_cast<double>(s.channels) * options_.width);
    for (int64_t i = 0; i < s.repeats; ++i) {
      features_->push_back(mobilenetv2::InvertedResidual(channels, out, i == 0 ? s.stride : 1, s.expansion));
      channels = out;
    }
  }
  feature_dim_ = options_.width > 1.0 ? RoundChannels(static_cast<double>(options_.last_channels) * options_.width)
                                      : options_.last_channels;
  features_->push_back(ConvBnAct(SquareConv(channels, feature_dim_, 1, 1, false, Activation::kRelu6)));
  register_module("features", features_);
}

torch::Tensor MobileNetV2::forward(const torch::Tensor& chips) {
  auto x = chips / 127.5 - 1.0;  // 0..255 -> -1..1
  x = features_->forward(x);
  return x.mean({2, 3});
}

}  // namespace veriface
