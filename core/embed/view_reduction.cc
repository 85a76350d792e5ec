#include "core/embed/view_reduction.h"

namespace veriface {

torch::Tensor ReduceViews(const torch::Tensor& view_features, Head& head) {
  // With one view the mean is the identity, bit for bit.
  const torch::Tensor mean = view_features.mean(1);
  return torch::nn::functional::normalize(head.forward(mean), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

}  // namespace veriface
