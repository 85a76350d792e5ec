#pragma once
// How a face's views become its embedding, in one place: the backbone features of every view of a face
// (its test-time crops, each with its mirror) are averaged, the head maps the mean, and the result is
// scaled to unit length. The server's embedder, veriface-eval and veriface-train all call this, so that a
// threshold calibrated by one of them means the same in the others.

#include <torch/torch.h>

#include "core/embed/head.h"

namespace veriface {

// view_features: [N, V, D] backbone features of N faces with V views each, on the head's device.
// Returns [N, head.output_dim()] unit-length rows on the same device. Call it under torch::NoGradGuard
// unless the head is being trained.
torch::Tensor ReduceViews(const torch::Tensor& view_features, Head& head);

}  // namespace veriface
