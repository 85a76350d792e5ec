#pragma once
// A closed-form starting point for a linear head over frozen descriptors: centring and within-class
// whitening (the linear part of LDA), fitted on the training people only.
//
// Why: the pretrained descriptors share a common direction (different people still have a mean cosine
// of about 0.8), so cosine similarity is dominated by what every face has in common. Subtracting the
// training mean removes that, and scaling the directions in which one person's photos vary (pose,
// light, expression) down relative to those in which people differ makes cosine compare identity.
// Triplet fine-tuning can then start from this map instead of from the pass-through head.
//
// The map is y = W (x - centre * mean), W = S_w^(-power/2), with the within-class covariance S_w shrunk towards
// a multiple of the identity (S_w is estimated from about a thousand people in 128 dimensions; its small
// eigenvalues are noisy and would be blown up). power 0 is centring only, 1 is full whitening. With
// fewer outputs than inputs, the directions kept are the whitened space's largest between-class ones
// (classic LDA). W is scaled so that embeddings have unit mean norm before the final L2 normalisation,
// which keeps the gradient scale of later fine-tuning independent of the descriptor's scale.

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

struct WhiteningOptions {
  double shrinkage = 0.1;  // S_w <- (1 - s) S_w + s (trace(S_w) / D) I, in [0, 1]
  double power = 1.0;      // 0: centring only; 1: full within-class whitening
  int64_t output_dim = 0;  // 0: as many as the input
  // The point subtracted is centre * mean: 1 centres. Below 0 it adds the mean instead, which on
  // descriptors trained for Euclidean distance (dlib's) makes the cosine of the outputs approach their
  // Euclidean distance orthogonal to the mean (cos(x + c m, y + c m) ~ 1 - |x - y|^2 / 2c^2 for large c).
  double centre = 1.0;
};

struct AffineMap {
  torch::Tensor weight;  // [out, in], float
  torch::Tensor bias;    // [out], float
  int64_t people = 0;    // people with >= 2 samples that shaped S_w
  int64_t samples = 0;
};

// features [N, D] (one row per image, as the head sees them at test time), labels[i] the person of
// row i. Needs at least two people with two or more rows. Deterministic (double precision, no sampling).
absl::StatusOr<AffineMap> FitWhitening(const torch::Tensor& features, const std::vector<int>& labels,
                                       const WhiteningOptions& options);

}  // namespace veriface
