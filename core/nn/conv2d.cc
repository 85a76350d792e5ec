#include "core/nn/conv2d.h"

#include <cmath>

namespace veriface {

FastConv2dImpl::FastConv2dImpl(const Conv2dSpec& spec) : spec_(spec) {
  weight = register_parameter(
      "weight", torch::empty({spec.out_channels, spec.in_channels / spec.groups, spec.kernel_h, spec.kernel_w}));
  // Kaiming-uniform, as torch::nn::Conv2d does, so that from-scratch training starts sensibly.
  const double fan_in = static_cast<double>(spec.in_channels / spec.groups * spec.kernel_h * spec.kernel_w);
  const double bound = 1.0 / std::sqrt(fan_in);
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (spec.bias) bias = register_parameter("bias", torch::empty({spec.out_channels}).uniform_(-bound, bound));
}

torch::Tensor FastConv2dImpl::forward(const torch::Tensor& x) {
  const int64_t s = spec_.stride;
  const int64_t p = spec_.padding;
  const bool inference = !torch::GradMode::is_enabled() || (!x.requires_grad() && !weight.requires_grad());
  if (inference && x.device().is_cpu() && x.scalar_type() == torch::kFloat32) {
    // Channels-last inputs stay channels-last: oneDNN's direct kernels are about twice as fast on them.
    const bool packed = packed_weight_.defined() && packed_version_ == static_cast<int64_t>(weight._version());
    return at::mkldnn_convolution(x.contiguous(x.suggest_memory_format()), packed ? packed_weight_ : weight,
                                  bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt, {p, p}, {s, s},
                                  {1, 1}, spec_.groups);
  }
  return at::conv2d(x, weight, bias, {s, s}, {p, p}, {1, 1}, spec_.groups);
}

void FastConv2dImpl::PrepackForInference() {
  if (!weight.device().is_cpu() || weight.scalar_type() != torch::kFloat32) return;
  torch::NoGradGuard no_grad;
  const int64_t s = spec_.stride;
  const int64_t p = spec_.padding;
  packed_weight_ = at::mkldnn_reorder_conv2d_weight(weight.detach().to_mkldnn(), {p, p}, {s, s}, {1, 1}, spec_.groups);
  packed_version_ = static_cast<int64_t>(weight._version());
}

void PrepackConvolutions(torch::nn::Module& module) {
  for (const std::shared_ptr<torch::nn::Module>& m : module.modules(/*include_self=*/true)) {
    if (auto* conv = dynamic_cast<FastConv2dImpl*>(m.get())) conv->PrepackForInference();
  }
}

}  // namespace veriface
