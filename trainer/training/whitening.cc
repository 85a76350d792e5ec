#include "trainer/training/whitening.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "core/common/guarded.h"

namespace veriface {

absl::StatusOr<AffineMap> FitWhitening(const torch::Tensor& features, const std::vector<int>& labels,
                                       const WhiteningOptions& options) {
  if (features.dim() != 2 || features.size(0) != static_cast<int64_t>(labels.size())) {
    return absl::InvalidArgumentError(absl::StrCat("whitening: features must be [N, D] with N = ", labels.size(),
                                                   " labels, got ", features.dim(), " dimension(s)"));
  }
  if (!(options.shrinkage >= 0 && options.shrinkage <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("whitening: shrinkage must be in [0, 1], got ", options.shrinkage));
  }
  if (!(options.power >= 0 && options.power <= 2)) {
    return absl::InvalidArgumentError(absl::StrCat("whitening: power must be in [0, 2], got ", options.power));
  }
  const int64_t dim = features.size(1);
  if (options.output_dim < 0 || options.output_dim > dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("whitening: output_dim must be in [0, ", dim, "], got ", options.output_dim));
  }
  const int64_t out_dim = options.output_dim == 0 ? dim : options.output_dim;

  return Guarded("whitening", [&]() -> absl::StatusOr<AffineMap> {
    torch::NoGradGuard no_grad;
    // Double precision: the eigenvalues of S_w span several orders of magnitude.
    const auto x = features.detach().to(torch::kCPU, torch::kFloat64);
    const auto mean = x.mean(0);

    std::map<int, std::vector<int64_t>> rows;
    for (size_t i = 0; i < labels.size(); ++i) rows[labels[i]].push_back(static_cast<int64_t>(i));
    auto within = torch::zeros({dim, dim}, x.options());
    std::vector<torch::Tensor> class_means;
    int64_t degrees = 0, people = 0;
    for (const auto& [label, idx] : rows) {
      const auto xc = x.index_select(0, torch::tensor(idx, torch::kInt64));
      const auto m = xc.mean(0);
      class_means.push_back(m);
      if (idx.size() < 2) continue;  // a single photo says nothing about how one person varies
      const auto d = xc - m;
      within += d.t().mm(d);
      degrees += static_cast<int64_t>(idx.size()) - 1;
      ++people;
    }
    if (people < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("whitening needs two or more people with two or more images, got ", people));
    }
    within /= static_cast<double>(degrees);
    const double average = within.trace().item<double>() / static_cast<double>(dim);
    within = (1 - options.shrinkage) * within + options.shrinkage * average * torch::eye(dim, x.options());

    const auto [values, vectors] = torch::linalg::eigh(within, "L");
    if (values.min().item<double>() <= average * 1e-12) {
      return absl::InvalidArgumentError(
          "whitening: the within-class covariance is singular (too few images for the dimension); use shrinkage > 0");
    }
    auto weight = vectors.mm(torch::diag(values.pow(-options.power / 2))).mm(vectors.t());

    if (out_dim < dim) {
      // LDA: keep the whitened directions along which the people's means spread most.
      const auto centred_means = (torch::stack(class_means) - mean).mm(weight.t());
      const auto between = centred_means.t().mm(centred_means) / static_cast<double>(class_means.size());
      const auto [b_values, b_vectors] = torch::linalg::eigh(between, "L");  // ascending
      weight = b_vectors.slice(1, dim - out_dim, dim).flip({1}).t().mm(weight);
    }
    const auto origin = options.centre * mean;
    const double scale = (x - origin).mm(weight.t()).norm(2, {1}).mean().item<double>();
    if (!(scale > 0)) return absl::InvalidArgumentError("whitening: every feature is the same");
    weight /= scale;

    AffineMap map;
    map.bias = (-weight.mv(origin)).to(torch::kFloat32).contiguous();
    map.weight = weight.to(torch::kFloat32).contiguous();
    map.people = people;
    map.samples = x.size(0);
    return map;
  });
}

}  // namespace veriface
