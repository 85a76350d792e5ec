#pragma once
// The trained head: a small dense block from backbone features to the embedding (the pipeline
// L2-normalises its output). Optional batch normalisation of the input features, hidden layers (Linear +
// BatchNorm + ReLU), dropout before the output layer, and a residual form y = x + f(x) whose output layer
// starts at zero, so that over a pretrained descriptor training starts from the pass-through head and
// learns a correction.
//
// The input normalisation matters for backbones trained from scratch: their pooled features are
// post-ReLU, all positive and nearly parallel at initialisation, so every embedding starts in the same
// direction and the batch-hard triplet loss settles at the collapsed solution (all distances 0, loss =
// margin). Centring and scaling each feature spreads the initial embeddings over the sphere.

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/embed/head.h"

namespace veriface {

struct DenseHeadOptions {
  int64_t output_dim = 128;
  std::vector<int64_t> hidden;  // widths of the hidden layers, none by default
  double dropout = 0.0;         // before the output layer, training only
  bool residual = false;        // y = x + f(x); needs input_dim == output_dim
  bool input_norm = false;      // BatchNorm1d on the input features first

  static absl::StatusOr<DenseHeadOptions> FromJson(const nlohmann::json& params);
  nlohmann::json ToJson() const;
};

class DenseHead final : public Head {
 public:
  // Fails when `residual` is asked for with input_dim != output_dim.
  static absl::StatusOr<std::shared_ptr<DenseHead>> Create(int64_t input_dim, const DenseHeadOptions& options);
  // Parses `params` (model.json) first; the factory's entry point.
  static absl::StatusOr<std::shared_ptr<Head>> Create(int64_t input_dim, const nlohmann::json& params);

  torch::Tensor forward(const torch::Tensor& features) override;
  std::string arch() const override { return "dense"; }
  int64_t input_dim() const override { return input_dim_; }
  int64_t output_dim() const override { return options_.output_dim; }
  nlohmann::json params() const override { return options_.ToJson(); }

  // Makes the head compute y = weight x + bias (weight [output_dim, input_dim]), e.g. a whitening map
  // fitted in closed form before fine-tuning. Only a purely linear head can represent that exactly: no
  // hidden layers and no input normalisation; a residual head stores weight - I in its output layer.
  absl::Status SetAffine(const torch::Tensor& weight, const torch::Tensor& bias);

  DenseHead(int64_t input_dim, const DenseHeadOptions& options);  // use Create()

 private:
  int64_t input_dim_;
  DenseHeadOptions options_;
  torch::nn::BatchNorm1d input_norm_{nullptr};
  torch::nn::Sequential hidden_;
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Linear out_{nullptr};
};

}  // namespace veriface
