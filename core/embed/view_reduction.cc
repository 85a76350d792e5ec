#include "core/embed/view_reduction.h"

namespace veriface {

torch::Tensor NormalizeMembers(const torch::Tensor& features, const std::vector<int64_t>& member_dims) {
  if (member_dims.size() < 2) return features;
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor& part : features.split_with_sizes(member_dims, 1)) {
    parts.push_back(torch::nn::functional::normalize(part, torch::nn::functional::NormalizeFuncOptions().dim(1)));
  }
  return torch::cat(parts, 1);
}

torch::Tensor ReduceViews(const torch::Tensor& view_features, Head& head, const std::vector<int64_t>& member_dims) {
  // With one view the mean is the identity, bit for bit.
  const torch::Tensor mean = NormalizeMembers(view_features.mean(1), member_dims);
  return torch::nn::functional::normalize(head.forward(mean), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

}  // namespace veriface
