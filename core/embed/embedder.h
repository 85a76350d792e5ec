#pragma once
// Backbone + head + L2 normalisation: the views of each face in, one unit-length embedding per face out.
// Each view's features (and, with flip averaging, its mirror's) are averaged into the face's embedding by
// ReduceViews (core/embed/view_reduction.h), the one reduction every tool uses. A fusion bundle has several
// backbones ("members"), each with its own chips; their features meet in ReduceViews.

#include <torch/torch.h>

#include <memory>
#include <opencv2/core.hpp>
#include <vector>

#include "absl/status/statusor.h"
#include "core/embed/backbone.h"
#include "core/embed/face_views.h"
#include "core/embed/head.h"

namespace veriface {

inline constexpr int64_t kCpuChipsPerPass = 32;

struct EmbedderOptions {
  // Average the backbone features of each chip and of its mirror image before the head: the same
  // face seen both ways, which removes some of the pose and lighting asymmetry from the embedding.
  bool flip_average = true;
  // The most chips one backbone pass takes; a larger batch (many faces of 12 chips each) goes through in
  // several passes. 0: no limit. FaceModel::Load sets kCpuChipsPerPass on the CPU, where passes of 256
  // chips cost 1.4-1.8x more per chip than passes of 32 (caches), and no limit on a GPU, where the largest
  // passes were the fastest (bench/device/README.md).
  int64_t max_chips_per_pass = 0;
};

class Embedder {
 public:
  // `backbones`: one, or a fusion's members in order; the head takes the sum of their feature widths.
  Embedder(std::vector<std::shared_ptr<Backbone>> backbones, std::shared_ptr<Head> head, torch::Device device,
           EmbedderOptions options);

  // One embedding per face: float [N, output_dim()] on the CPU, unit rows. Every face must have the same
  // number of views, all CV_8UC3 squares; with several members, each member's views in turn (as
  // FaceModel::Cut lays them out), the same number for each, each of its member's input size.
  // INVALID_ARGUMENT otherwise.
  absl::StatusOr<torch::Tensor> Embed(const std::vector<FaceViews>& faces) const;

  // One member's backbone alone on the chips as given (no flip, no head, no normalisation): [N, its dim].
  absl::StatusOr<torch::Tensor> Features(const std::vector<cv::Mat>& chips, size_t member = 0) const;

  int64_t input_size(size_t member = 0) const { return backbones_[member]->input_size(); }
  int64_t output_dim() const { return head_->output_dim(); }
  const EmbedderOptions& options() const { return options_; }
  // The first (for a bundle of one network, the only) backbone.
  const std::shared_ptr<Backbone>& backbone() const { return backbones_.front(); }
  const std::vector<std::shared_ptr<Backbone>>& backbones() const { return backbones_; }
  // Each member's feature width, in order: ReduceViews' member_dims.
  const std::vector<int64_t>& member_dims() const { return member_dims_; }
  const std::shared_ptr<Head>& head() const { return head_; }

 private:
  // A backbone on [N, 3, W, W], in passes of at most options_.max_chips_per_pass chips.
  torch::Tensor ForwardInPasses(Backbone& backbone, const torch::Tensor& x) const;
  // One member's features of every view of every face (with mirrors when flipping): [N, V, its dim].
  absl::StatusOr<torch::Tensor> MemberViewFeatures(const std::vector<FaceViews>& faces, size_t member,
                                                   size_t views) const;

  std::vector<std::shared_ptr<Backbone>> backbones_;
  std::vector<int64_t> member_dims_;
  std::shared_ptr<Head> head_;
  torch::Device device_;
  EmbedderOptions options_;
};

// uint8 RGB chips (CV_8UC3, all the same size) -> float [N, 3, H, W] with values 0..255;
// INVALID_ARGUMENT when they differ in type or size.
absl::StatusOr<torch::Tensor> ChipsToTensor(const std::vector<cv::Mat>& chips);

}  // namespace veriface
