#include "core/embed/dense_head.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/embed/param_reader.h"

namespace veriface {

absl::StatusOr<DenseHeadOptions> DenseHeadOptions::FromJson(const nlohmann::json& params) {
  DenseHeadOptions o;
  ParamReader r(params, "dense head params");
  VF_ASSIGN_OR_RETURN(o.output_dim, r.Integer("output_dim", o.output_dim, 1, 65536));
  VF_ASSIGN_OR_RETURN(o.hidden, r.IntegerList("hidden", o.hidden, 1, 65536));
  VF_ASSIGN_OR_RETURN(o.dropout, r.Number("dropout", o.dropout, 0.0, 0.95));
  VF_ASSIGN_OR_RETURN(o.residual, r.Bool("residual", o.residual));
  VF_ASSIGN_OR_RETURN(o.input_norm, r.Bool("input_norm", o.input_norm));
  VF_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  return o;
}

nlohmann::json DenseHeadOptions::ToJson() const {
  return {{"output_dim", output_dim},
          {"hidden", hidden},
          {"dropout", dropout},
          {"residual", residual},
          {"input_norm", input_norm}};
}

absl::StatusOr<std::shared_ptr<DenseHead>> DenseHead::Create(int64_t input_dim, const DenseHeadOptions& options) {
  if (input_dim <= 0) return absl::InvalidArgumentError(absl::StrCat("dense head: input_dim ", input_dim, " <= 0"));
  if (options.residual && input_dim != options.output_dim) {
    return absl::InvalidArgumentError(absl::StrCat("dense head: 'residual' needs input_dim == output_dim, got ",
                                                   input_dim, " and ", options.output_dim));
  }
  return std::make_shared<DenseHead>(input_dim, options);
}

absl::StatusOr<std::shared_ptr<Head>> DenseHead::Create(int64_t input_dim, const nlohmann::json& params) {
  VF_ASSIGN_OR_RETURN(const auto options, DenseHeadOptions::FromJson(params));
  VF_ASSIGN_OR_RETURN(auto head, Create(input_dim, options));
  return std::shared_ptr<Head>(std::move(head));
}

DenseHead::DenseHead(int64_t input_dim, const DenseHeadOptions& options) : input_dim_(input_dim), options_(options) {
  if (options_.input_norm) input_norm_ = register_module("input_norm", torch::nn::BatchNorm1d(input_dim));
  int64_t width = input_dim;
  for (const int64_t h : options_.hidden) {
    hidden_->push_back(torch::nn::Linear(width, h));
    hidden_->push_back(torch::nn::BatchNorm1d(h));
    hidden_->push_back(torch::nn::ReLU());
    width = h;
  }
  register_module("hidden", hidden_);
  dropout_ = register_module("dropout", torch::nn::Dropout(options_.dropout));
  out_ = register_module("out", torch::nn::Linear(width, options_.output_dim));
  if (options_.residual) {
    // f starts at zero: the untrained head is the identity.
    torch::NoGradGuard no_grad;
    out_->weight.zero_();
    out_->bias.zero_();
  }
}

absl::Status DenseHead::SetAffine(const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!hidden_->is_empty() || options_.input_norm) {
    return absl::FailedPreconditionError("dense head: an affine map needs no hidden layers and no input_norm");
  }
  if (weight.sizes() != out_->weight.sizes() || bias.sizes() != out_->bias.sizes()) {
    return absl::InvalidArgumentError(absl::StrCat("dense head: affine map of shape [", weight.size(0), ", ",
                                                   weight.dim() > 1 ? weight.size(1) : 0, "], expected [",
                                                   options_.output_dim, ", ", input_dim_, "]"));
  }
  torch::NoGradGuard no_grad;
  const auto w = weight.to(out_->weight.device(), out_->weight.scalar_type());
  out_->weight.copy_(options_.residual ? w - torch::eye(input_dim_, w.options()) : w);
  out_->bias.copy_(bias);
  return absl::OkStatus();
}

torch::Tensor DenseHead::forward(const torch::Tensor& features) {
  const auto x = options_.input_norm ? input_norm_(features) : features;
  auto y = x;
  if (!hidden_->is_empty()) y = hidden_->forward(y);
  y = out_(dropout_(y));
  return options_.residual ? x + y : y;
}

}  // namespace veriface
