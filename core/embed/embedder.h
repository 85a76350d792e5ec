#pragma once
// Backbone + head + L2 normalisation, with optional flip averaging: aligned chips in, unit-length
// embeddings out.

#include <torch/torch.h>

#include <memory>
#include <opencv2/core.hpp>
#include <vector>

#include "core/embed/backbone.h"
#include "core/embed/head.h"

namespace veriface {

struct EmbedderOptions {
  // Average the backbone features of each chip and of its mirror image before the head: the same
  // face seen both ways, which removes some of the pose and lighting asymmetry from the embedding.
  bool flip_average = true;
};

class Embedder {
 public:
  Embedder(std::shared_ptr<Backbone> backbone, std::shared_ptr<Head> head, torch::Device device,
           EmbedderOptions options);

  // chips: CV_8UC3 RGB, input_size() square. Returns float [N, output_dim()] on the CPU, unit rows.
  torch::Tensor Embed(const std::vector<cv::Mat>& chips) const;

  // The backbone alone on the chips as given (no flip, no head, no normalisation): [N, feature_dim].
  torch::Tensor Features(const std::vector<cv::Mat>& chips) const;

  int64_t input_size() const { return backbone_->input_size(); }
  int64_t output_dim() const { return head_->output_dim(); }
  const EmbedderOptions& options() const { return options_; }
  const std::shared_ptr<Backbone>& backbone() const { return backbone_; }
  const std::shared_ptr<Head>& head() const { return head_; }

 private:
  std::shared_ptr<Backbone> backbone_;
  std::shared_ptr<Head> head_;
  torch::Device device_;
  EmbedderOptions options_;
};

// uint8 RGB chips (CV_8UC3, all the same size) -> float [N, 3, H, W] with values 0..255.
torch::Tensor ChipsToTensor(const std::vector<cv::Mat>& chips);

}  // namespace veriface
