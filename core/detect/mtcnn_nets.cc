#include "core/detect/mtcnn_nets.h"

#include <string>

#include "core/common/status_macros.h"
#include "core/nn/tf_ops.h"

namespace veriface {
namespace {

FastConv2d Conv(int64_t in, int64_t out, int64_t kernel) {
  Conv2dSpec spec;
  spec.in_channels = in;
  spec.out_channels = out;
  spec.kernel_h = spec.kernel_w = kernel;
  return FastConv2d(spec);
}

absl::Status LoadConv(const TfjsWeights& w, const std::string& name, FastConv2d& conv) {
  const Conv2dSpec& s = conv->spec();
  VF_ASSIGN_OR_RETURN(const auto filters,
                      w.Get(name + "/weights", {s.kernel_h, s.kernel_w, s.in_channels, s.out_channels}));
  VF_RETURN_IF_ERROR(AssignTensor(conv->weight, HwioToOihw(filters), name + "/weights"));
  VF_ASSIGN_OR_RETURN(const auto bias, w.Get(name + "/bias", {s.out_channels}));
  return AssignTensor(conv->bias, bias, name + "/bias");
}

absl::Status LoadDense(const TfjsWeights& w, const std::string& name, FastLinear& fc) {
  VF_ASSIGN_OR_RETURN(const auto weights, w.Get(name + "/weights", {fc->in_features(), fc->out_features()}));
  VF_RETURN_IF_ERROR(AssignTensor(fc->weight, weights.t().contiguous(), name + "/weights"));
  VF_ASSIGN_OR_RETURN(const auto bias, w.Get(name + "/bias", {fc->out_features()}));
  return AssignTensor(fc->bias, bias, name + "/bias");
}

absl::Status LoadPRelu(const TfjsWeights& w, const std::string& name, torch::Tensor& alpha) {
  VF_ASSIGN_OR_RETURN(const auto value, w.Get(name, {alpha.size(0)}));
  return AssignTensor(alpha, value, name);
}

torch::Tensor FaceProbability(const torch::Tensor& logits) { return torch::softmax(logits, 1).select(1, 1); }

// LibTorch 1.13's NCHW max-pooling is scalar code, ~6x slower than its channels-last kernel, and
// oneDNN's convolutions are ~2x faster on channels-last too; so the networks run channels-last.
torch::Tensor ChannelsLast(const torch::Tensor& x) { return x.contiguous(at::MemoryFormat::ChannelsLast); }

}  // namespace

PNetImpl::PNetImpl()
    : conv1_(register_module("conv1", Conv(3, 10, 3))),
      conv2_(register_module("conv2", Conv(10, 16, 3))),
      conv3_(register_module("conv3", Conv(16, 32, 3))),
      conv4_1_(register_module("conv4_1", Conv(32, 2, 1))),
      conv4_2_(register_module("conv4_2", Conv(32, 4, 1))),
      prelu1_(register_buffer("prelu1", torch::zeros({10}))),
      prelu2_(register_buffer("prelu2", torch::zeros({16}))),
      prelu3_(register_buffer("prelu3", torch::zeros({32}))) {}

std::tuple<torch::Tensor, torch::Tensor> PNetImpl::forward(const torch::Tensor& input) {
  auto x = PRelu(conv1_(ChannelsLast(input)), prelu1_);
  x = MaxPoolTfSame(x, 2, 2);
  x = PRelu(conv2_(x), prelu2_);
  x = PRelu(conv3_(x), prelu3_);
  return {FaceProbability(conv4_1_(x)), conv4_2_(x)};
}

absl::Status PNetImpl::LoadFromTfjs(const TfjsWeights& w) {
  VF_RETURN_IF_ERROR(LoadConv(w, "pnet/conv1", conv1_));
  VF_RETURN_IF_ERROR(LoadConv(w, "pnet/conv2", conv2_));
  VF_RETURN_IF_ERROR(LoadConv(w, "pnet/conv3", conv3_));
  VF_RETURN_IF_ERROR(LoadConv(w, "pnet/conv4_1", conv4_1_));
  VF_RETURN_IF_ERROR(LoadConv(w, "pnet/conv4_2", conv4_2_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "pnet/prelu1_alpha", prelu1_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "pnet/prelu2_alpha", prelu2_));
  return LoadPRelu(w, "pnet/prelu3_alpha", prelu3_);
}

RNetImpl::RNetImpl()
    : conv1_(register_module("conv1", Conv(3, 28, 3))),
      conv2_(register_module("conv2", Conv(28, 48, 3))),
      conv3_(register_module("conv3", Conv(48, 64, 2))),
      fc1_(register_module("fc1", FastLinear(576, 128))),
      fc2_1_(register_module("fc2_1", FastLinear(128, 2))),
      fc2_2_(register_module("fc2_2", FastLinear(128, 4))),
      prelu1_(register_buffer("prelu1", torch::zeros({28}))),
      prelu2_(register_buffer("prelu2", torch::zeros({48}))),
      prelu3_(register_buffer("prelu3", torch::zeros({64}))),
      prelu4_(register_buffer("prelu4", torch::zeros({128}))) {}

std::tuple<torch::Tensor, torch::Tensor> RNetImpl::forward(const torch::Tensor& input) {
  auto x = PRelu(conv1_(ChannelsLast(input)), prelu1_);    // 22x22
  x = MaxPoolTfSame(x, 3, 2);                // 11x11
  x = PRelu(conv2_(x), prelu2_);             // 9x9
  x = torch::max_pool2d(x, {3, 3}, {2, 2});  // 4x4, VALID
  x = PRelu(conv3_(x), prelu3_);             // 3x3x64
  x = PRelu(fc1_(FlattenNhwc(x)), prelu4_);
  return {FaceProbability(fc2_1_(x)), fc2_2_(x)};
}

absl::Status RNetImpl::LoadFromTfjs(const TfjsWeights& w) {
  VF_RETURN_IF_ERROR(LoadConv(w, "rnet/conv1", conv1_));
  VF_RETURN_IF_ERROR(LoadConv(w, "rnet/conv2", conv2_));
  VF_RETURN_IF_ERROR(LoadConv(w, "rnet/conv3", conv3_));
  VF_RETURN_IF_ERROR(LoadDense(w, "rnet/fc1", fc1_));
  VF_RETURN_IF_ERROR(LoadDense(w, "rnet/fc2_1", fc2_1_));
  VF_RETURN_IF_ERROR(LoadDense(w, "rnet/fc2_2", fc2_2_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "rnet/prelu1_alpha", prelu1_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "rnet/prelu2_alpha", prelu2_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "rnet/prelu3_alpha", prelu3_));
  return LoadPRelu(w, "rnet/prelu4_alpha", prelu4_);
}

ONetImpl::ONetImpl()
    : conv1_(register_module("conv1", Conv(3, 32, 3))),
      conv2_(register_module("conv2", Conv(32, 64, 3))),
      conv3_(register_module("conv3", Conv(64, 64, 3))),
      conv4_(register_module("conv4", Conv(64, 128, 2))),
      fc1_(register_module("fc1", FastLinear(1152, 256))),
      fc2_1_(register_module("fc2_1", FastLinear(256, 2))),
      fc2_2_(register_module("fc2_2", FastLinear(256, 4))),
      fc2_3_(register_module("fc2_3", FastLinear(256, 10))),
      prelu1_(register_buffer("prelu1", torch::zeros({32}))),
      prelu2_(register_buffer("prelu2", torch::zeros({64}))),
      prelu3_(register_buffer("prelu3", torch::zeros({64}))),
      prelu4_(register_buffer("prelu4", torch::zeros({128}))),
      prelu5_(register_buffer("prelu5", torch::zeros({256}))) {}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> ONetImpl::forward(const torch::Tensor& input) {
  auto x = PRelu(conv1_(ChannelsLast(input)), prelu1_);    // 46x46
  x = MaxPoolTfSame(x, 3, 2);                // 23x23
  x = PRelu(conv2_(x), prelu2_);             // 21x21
  x = torch::max_pool2d(x, {3, 3}, {2, 2});  // 10x10, VALID
  x = PRelu(conv3_(x), prelu3_);             // 8x8
  x = MaxPoolTfSame(x, 2, 2);                // 4x4
  x = PRelu(conv4_(x), prelu4_);             // 3x3x128
  x = PRelu(fc1_(FlattenNhwc(x)), prelu5_);
  return {FaceProbability(fc2_1_(x)), fc2_2_(x), fc2_3_(x)};
}

absl::Status ONetImpl::LoadFromTfjs(const TfjsWeights& w) {
  VF_RETURN_IF_ERROR(LoadConv(w, "onet/conv1", conv1_));
  VF_RETURN_IF_ERROR(LoadConv(w, "onet/conv2", conv2_));
  VF_RETURN_IF_ERROR(LoadConv(w, "onet/conv3", conv3_));
  VF_RETURN_IF_ERROR(LoadConv(w, "onet/conv4", conv4_));
  VF_RETURN_IF_ERROR(LoadDense(w, "onet/fc1", fc1_));
  VF_RETURN_IF_ERROR(LoadDense(w, "onet/fc2_1", fc2_1_));
  VF_RETURN_IF_ERROR(LoadDense(w, "onet/fc2_2", fc2_2_));
  VF_RETURN_IF_ERROR(LoadDense(w, "onet/fc2_3", fc2_3_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "onet/prelu1_alpha", prelu1_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "onet/prelu2_alpha", prelu2_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "onet/prelu3_alpha", prelu3_));
  VF_RETURN_IF_ERROR(LoadPRelu(w, "onet/prelu4_alpha", prelu4_));
  return LoadPRelu(w, "onet/prelu5_alpha", prelu5_);
}

}  // namespace veriface
