#include "core/embed/face_resnet.h"

#include "core/common/status_macros.h"

namespace veriface {
namespace face_resnet {

ConvUnitImpl::ConvUnitImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool relu)
    : conv_(nullptr), relu_(relu) {
  Conv2dSpec spec;
  spec.in_channels = in;
  spec.out_channels = out;
  spec.kernel_h = spec.kernel_w = kernel;
  spec.stride = stride;
  spec.padding = stride == 1 ? kernel / 2 : 0;  // dlib: SAME for stride 1, VALID otherwise
  conv_ = register_module("conv", FastConv2d(spec));
}

torch::Tensor ConvUnitImpl::forward(const torch::Tensor& x) {
  auto y = conv_(x);
  return relu_ ? torch::relu(y) : y;
}

absl::Status ConvUnitImpl::LoadFromTfjs(const TfjsWeights& w, const std::string& prefix) {
  const Conv2dSpec& s = conv_->spec();
  VF_ASSIGN_OR_RETURN(const auto filters,
                      w.Get(prefix + "/conv/filters", {s.kernel_h, s.kernel_w, s.in_channels, s.out_channels}));
  VF_ASSIGN_OR_RETURN(const auto bias, w.Get(prefix + "/conv/bias", {s.out_channels}));
  VF_ASSIGN_OR_RETURN(const auto gain, w.Get(prefix + "/scale/weights", {s.out_channels}));
  VF_ASSIGN_OR_RETURN(const auto shift, w.Get(prefix + "/scale/biases", {s.out_channels}));
  VF_RETURN_IF_ERROR(AssignTensor(conv_->weight, HwioToOihw(filters) * gain.view({-1, 1, 1, 1}), prefix + "/conv"));
  return AssignTensor(conv_->bias, bias * gain + shift, prefix + "/conv/bias");
}

ResidualBlockImpl::ResidualBlockImpl(int64_t in, int64_t out, bool down)
    : conv1_(register_module("conv1", ConvUnit(in, out, 3, down ? 2 : 1, true))),
      conv2_(register_module("conv2", ConvUnit(out, out, 3, 1, false))),
      down_(down) {}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  auto out = conv2_(conv1_(x));
  if (!down_) return torch::relu(out + x);
  auto shortcut = torch::avg_pool2d(x, {2, 2}, {2, 2});
  if (shortcut.size(1) < out.size(1)) {
    shortcut = torch::constant_pad_nd(shortcut, {0, 0, 0, 0, 0, out.size(1) - shortcut.size(1)});
  }
  const int64_t dh = shortcut.size(2) - out.size(2);
  const int64_t dw = shortcut.size(3) - out.size(3);
  if (dh > 0 || dw > 0) out = torch::constant_pad_nd(out, {0, dw, 0, dh});
  return torch::relu(out + shortcut);
}

absl::Status ResidualBlockImpl::LoadFromTfjs(const TfjsWeights& w, const std::string& prefix) {
  VF_RETURN_IF_ERROR(conv1_->LoadFromTfjs(w, prefix + "/conv1"));
  return conv2_->LoadFromTfjs(w, prefix + "/conv2");
}

}  // namespace face_resnet

namespace {

struct BlockSpec {
  const char* name;
  int64_t in;
  int64_t out;
  bool down;
};

constexpr BlockSpec kBlocks[] = {
    {"conv32_1", 32, 32, false},    {"conv32_2", 32, 32, false},          {"conv32_3", 32, 32, false},
    {"conv64_down", 32, 64, true},  {"conv64_1", 64, 64, false},          {"conv64_2", 64, 64, false},
    {"conv64_3", 64, 64, false},    {"conv128_down", 64, 128, true},      {"conv128_1", 128, 128, false},
    {"conv128_2", 128, 128, false}, {"conv256_down", 128, 256, true},     {"conv256_1", 256, 256, false},
    {"conv256_2", 256, 256, false}, {"conv256_down_out", 256, 256, true},
};

}  // namespace

FaceResNet::FaceResNet()
    : stem_(register_module("conv32_down", face_resnet::ConvUnit(3, 32, 7, 2, true))),
      fc_(register_parameter("fc", torch::randn({256, 128}) * 0.05)),
      mean_(register_buffer("mean", torch::tensor({122.782F, 117.001F, 104.298F}).view({1, 3, 1, 1}))) {
  for (const BlockSpec& b : kBlocks) {
    blocks_.emplace_back(b.name, register_module(b.name, face_resnet::ResidualBlock(b.in, b.out, b.down)));
  }
}

torch::Tensor FaceResNet::forward(const torch::Tensor& chips) {
  auto x = (chips - mean_) / 256.0;                  // dlib's input layer divides by 256, not 255
  x = stem_(x);                                      // 150 -> 72
  x = torch::max_pool2d(x, {3, 3}, {2, 2});          // 72 -> 35, VALID
  for (auto& [name, block] : blocks_) x = block(x);  // 35 -> 17 -> 8 -> 4 -> 2
  x = x.mean({2, 3});                                // the zero padding counts in the mean
  return torch::matmul(x, fc_);
}

absl::Status FaceResNet::LoadFromTfjs(const TfjsWeights& w) {
  VF_RETURN_IF_ERROR(stem_->LoadFromTfjs(w, "conv32_down"));
  for (auto& [name, block] : blocks_) VF_RETURN_IF_ERROR(block->LoadFromTfjs(w, name));
  VF_ASSIGN_OR_RETURN(const auto fc, w.Get("fc", {256, 128}));
  return AssignTensor(fc_, fc, "fc");
}

}  // namespace veriface
