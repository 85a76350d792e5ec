#pragma once
// The head maps backbone features to the embedding; the pipeline L2-normalises its output.

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"

namespace veriface {

class Head : public torch::nn::Module {
 public:
  // features [N, input_dim] -> embeddings [N, output_dim] (not yet normalised).
  virtual torch::Tensor forward(const torch::Tensor& features) = 0;

  virtual std::string arch() const = 0;
  virtual int64_t input_dim() const = 0;
  virtual int64_t output_dim() const = 0;
  virtual nlohmann::json params() const = 0;
};

// The pass-through head: the backbone's features are the embedding.
class IdentityHead final : public Head {
 public:
  explicit IdentityHead(int64_t dim) : dim_(dim) {}
  torch::Tensor forward(const torch::Tensor& features) override { return features; }
  std::string arch() const override { return "identity"; }
  int64_t input_dim() const override { return dim_; }
  int64_t output_dim() const override { return dim_; }
  nlohmann::json params() const override { return {{"dim", dim_}}; }

 private:
  int64_t dim_;
};

// Builds an untrained head of architecture `arch` ("identity", "dense", ...) whose input has
// `input_dim` features.
absl::StatusOr<std::shared_ptr<Head>> MakeHead(const std::string& arch, int64_t input_dim,
                                               const nlohmann::json& params);

}  // namespace veriface
