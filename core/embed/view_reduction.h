#pragma once
// How a face's views become its embedding, in one place: the backbone features of every view of a face
// (its test-time crops, each with its mirror) are averaged, the head maps the mean, and the result is
// scaled to unit length. The server's embedder, veriface-eval and veriface-train all call this, so that a
// threshold calibrated by one of them means the same in the others.
//
// A fusion bundle has several backbones; their features of a view sit side by side (member_dims says how
// wide each is), and each network's part of the mean is scaled to unit length before the head, so that
// every network weighs the same whatever the scale of its features. With an identity head the cosine of
// two such embeddings is then exactly the mean of the networks' own cosines.

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "core/embed/head.h"

namespace veriface {

// features [N, sum(member_dims)] -> the same with each member's slice at unit length. One member (or
// none given): returned as it is, so that a bundle of one network reduces as it always did.
torch::Tensor NormalizeMembers(const torch::Tensor& features, const std::vector<int64_t>& member_dims);

// view_features: [N, V, D] backbone features of N faces with V views each, on the head's device.
// Returns [N, head.output_dim()] unit-length rows on the same device. Call it under torch::NoGradGuard
// unless the head is being trained.
torch::Tensor ReduceViews(const torch::Tensor& view_features, Head& head, const std::vector<int64_t>& member_dims = {});

}  // namespace veriface
