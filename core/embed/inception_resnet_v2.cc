#include "core/embed/inception_resnet_v2.h"

#include <algorithm>
#include <cmath>

#include "core/common/status_macros.h"
#include "core/embed/conv_bn_act.h"
#include "core/embed/param_reader.h"

namespace veriface {
namespace inception {

void BranchesImpl::Add(torch::nn::Sequential branch) {
  branches_.push_back(register_module("branch" + std::to_string(branches_.size()), std::move(branch)));
}

torch::Tensor BranchesImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> outs;
  outs.reserve(branches_.size());
  for (auto& b : branches_) outs.push_back(b->forward(x));
  return torch::cat(outs, 1);
}

ScaledResidualImpl::ScaledResidualImpl(Branches branches, int64_t branch_channels, int64_t channels, double scale,
                                       bool relu)
    : branches_(register_module("branches", std::move(branches))),
      up_(register_module("up", torch::nn::Conv2d(torch::nn::Conv2dOptions(branch_channels, channels, 1)))),
      scale_(scale),
      relu_(relu) {}

torch::Tensor ScaledResidualImpl::forward(const torch::Tensor& x) {
  auto y = x + scale_ * up_(branches_(x));
  return relu_ ? torch::relu(y) : y;
}

}  // namespace inception

namespace {

using inception::Branches;
using torch::nn::Sequential;

// Builds the network while counting channels, so that every block knows its input width.
class Builder {
 public:
  explicit Builder(double width) : width_(width) {}

  int64_t Scaled(int64_t channels) const {
    return std::max<int64_t>(8, std::lround(static_cast<double>(channels) * width_));
  }

  // A convolution (+BN +ReLU) of `out` paper channels with a kh x kw kernel; "same" padding unless valid.
  ConvBnAct Conv(int64_t in, int64_t out_paper, int64_t kh, int64_t kw, int64_t stride = 1, bool valid = false) const {
    ConvBnActSpec s;
    s.in = in;
    s.out = Scaled(out_paper);
    s.kernel_h = kh;
    s.kernel_w = kw;
    s.stride = stride;
    s.pad_h = valid ? 0 : kh / 2;
    s.pad_w = valid ? 0 : kw / 2;
    s.bn_eps = 1e-3;  // as in the released model
    return ConvBnAct(s);
  }

  // A chain of convolutions from `in`: each step is {channels, kh, kw, stride, valid}.
  struct Step {
    int64_t out, kh, kw, stride;
    bool valid;
  };
  Sequential Chain(int64_t in, std::initializer_list<Step> steps, int64_t* out_channels) const {
    Sequential seq;
    for (const Step& s : steps) {
      seq->push_back(Conv(in, s.out, s.kh, s.kw, s.stride, s.valid));
      in = Scaled(s.out);
    }
    *out_channels += in;
    return seq;
  }

 private:
  double width_;
};

Sequential MaxPoolValid(int64_t in, int64_t* out_channels) {
  *out_channels += in;
  return Sequential(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
}

// Mixed_5b: the inception-A block that widens the stem to 320 channels.
Branches Mixed5b(const Builder& b, int64_t in, int64_t* out) {
  Branches br;
  br->Add(b.Chain(in, {{96, 1, 1, 1, false}}, out));
  br->Add(b.Chain(in, {{48, 1, 1, 1, false}, {64, 5, 5, 1, false}}, out));
  br->Add(b.Chain(in, {{64, 1, 1, 1, false}, {96, 3, 3, 1, false}, {96, 3, 3, 1, false}}, out));
  Sequential pool(torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false)));
  pool->push_back(b.Conv(in, 64, 1, 1));
  *out += b.Scaled(64);
  br->Add(pool);
  return br;
}

// Block35 (inception-resnet-A, 35x35 grid for a 299 input).
inception::ScaledResidual Block35(const Builder& b, int64_t in) {
  Branches br;
  int64_t cat = 0;
  br->Add(b.Chain(in, {{32, 1, 1, 1, false}}, &cat));
  br->Add(b.Chain(in, {{32, 1, 1, 1, false}, {32, 3, 3, 1, false}}, &cat));
  br->Add(b.Chain(in, {{32, 1, 1, 1, false}, {48, 3, 3, 1, false}, {64, 3, 3, 1, false}}, &cat));
  return inception::ScaledResidual(br, cat, in, 0.17, true);
}

// Mixed_6a (reduction-A).
Branches Mixed6a(const Builder& b, int64_t in, int64_t* out) {
  Branches br;
  br->Add(b.Chain(in, {{384, 3, 3, 2, true}}, out));
  br->Add(b.Chain(in, {{256, 1, 1, 1, false}, {256, 3, 3, 1, false}, {384, 3, 3, 2, true}}, out));
  br->Add(MaxPoolValid(in, out));
  return br;
}

// Block17 (inception-resnet-B, 17x17 grid), with the factorised 1x7 / 7x1 convolutions.
inception::ScaledResidual Block17(const Builder& b, int64_t in) {
  Branches br;
  int64_t cat = 0;
  br->Add(b.Chain(in, {{192, 1, 1, 1, false}}, &cat));
  br->Add(b.Chain(in, {{128, 1, 1, 1, false}, {160, 1, 7, 1, false}, {192, 7, 1, 1, false}}, &cat));
  return inception::ScaledResidual(br, cat, in, 0.10, true);
}

// Mixed_7a (reduction-B).
Branches Mixed7a(const Builder& b, int64_t in, int64_t* out) {
  Branches br;
  br->Add(b.Chain(in, {{256, 1, 1, 1, false}, {384, 3, 3, 2, true}}, out));
  br->Add(b.Chain(in, {{256, 1, 1, 1, false}, {288, 3, 3, 2, true}}, out));
  br->Add(b.Chain(in, {{256, 1, 1, 1, false}, {288, 3, 3, 1, false}, {320, 3, 3, 2, true}}, out));
  br->Add(MaxPoolValid(in, out));
  return br;
}

// Block8 (inception-resnet-C, 8x8 grid); the network's last one has no ReLU.
inception::ScaledResidual Block8(const Builder& b, int64_t in, bool relu) {
  Branches br;
  int64_t cat = 0;
  br->Add(b.Chain(in, {{192, 1, 1, 1, false}}, &cat));
  br->Add(b.Chain(in, {{192, 1, 1, 1, false}, {224, 1, 3, 1, false}, {256, 3, 1, 1, false}}, &cat));
  return inception::ScaledResidual(br, cat, in, 0.20, relu);
}

}  // namespace

absl::StatusOr<InceptionResNetV2Options> InceptionResNetV2Options::FromJson(const nlohmann::json& params) {
  InceptionResNetV2Options o;
  ParamReader r(params, "inception-resnet-v2 params");
  // 75 is the smallest input that survives the VALID stem and both reductions.
  VF_ASSIGN_OR_RETURN(o.input_size, r.Integer("input_size", o.input_size, 75, 640));
  VF_ASSIGN_OR_RETURN(o.width, r.Number("width", o.width, 0.05, 4.0));
  VF_ASSIGN_OR_RETURN(o.blocks, r.IntegerList("blocks", o.blocks, 0, 64));
  if (o.blocks.size() != 3) {
    return absl::InvalidArgumentError("inception-resnet-v2 params: 'blocks' needs 3 counts (A, B and C stages)");
  }
  VF_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  return o;
}

nlohmann::json InceptionResNetV2Options::ToJson() const {
  return {{"input_size", input_size}, {"width", width}, {"blocks", blocks}};
}

absl::StatusOr<std::shared_ptr<Backbone>> InceptionResNetV2::Create(const nlohmann::json& params) {
  VF_ASSIGN_OR_RETURN(const auto options, InceptionResNetV2Options::FromJson(params));
  return std::shared_ptr<Backbone>(std::make_shared<InceptionResNetV2>(options));
}

InceptionResNetV2::InceptionResNetV2(const InceptionResNetV2Options& options) : options_(options) {
  const Builder b(options_.width);
  // Stem: 3x3/2 V, 3x3 V, 3x3, max 3x3/2 V, 1x1, 3x3 V, max 3x3/2 V.
  features_->push_back(b.Conv(3, 32, 3, 3, 2, /*valid=*/true));
  features_->push_back(b.Conv(b.Scaled(32), 32, 3, 3, 1, /*valid=*/true));
  features_->push_back(b.Conv(b.Scaled(32), 64, 3, 3));
  features_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
  features_->push_back(b.Conv(b.Scaled(64), 80, 1, 1));
  features_->push_back(b.Conv(b.Scaled(80), 192, 3, 3, 1, /*valid=*/true));
  features_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
  int64_t channels = b.Scaled(192);

  int64_t next = 0;
  features_->push_back(Mixed5b(b, channels, &next));
  channels = next;
  for (int64_t i = 0; i < options_.blocks[0]; ++i) features_->push_back(Block35(b, channels));
  next = 0;
  features_->push_back(Mixed6a(b, channels, &next));
  channels = next;
  for (int64_t i = 0; i < options_.blocks[1]; ++i) features_->push_back(Block17(b, channels));
  next = 0;
  features_->push_back(Mixed7a(b, channels, &next));
  channels = next;
  for (int64_t i = 0; i < options_.blocks[2]; ++i) {
    features_->push_back(Block8(b, channels, /*relu=*/i + 1 < options_.blocks[2]));
  }
  feature_dim_ = b.Scaled(1536);
  features_->push_back(b.Conv(channels, 1536, 1, 1));
  register_module("features", features_);
}

torch::Tensor InceptionResNetV2::forward(const torch::Tensor& chips) {
  return features_->forward(chips / 127.5 - 1.0).mean({2, 3});
}

}  // namespace veriface
