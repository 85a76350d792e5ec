#pragma once
// Pairs of images, resolved to files, and their cosine scores from a matrix of embeddings.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/metrics.h"
#include "core/eval/pairs.h"

namespace veriface {

struct ResolvedPairs {
  std::vector<ImagePair> pairs;           // those of the folds asked for, in file order
  std::vector<std::string> images;        // every image they use: unique, sorted
  std::vector<int64_t> index_a, index_b;  // per pair, into images
};

// The pairs of `file` in `folds` (0-based; empty: all), their images found under `root` (LFW layout,
// any extension). NOT_FOUND names a missing image.
absl::StatusOr<ResolvedPairs> ResolvePairs(const PairsFile& file, const std::vector<int>& folds,
                                           const std::string& root);

// Cosine similarity of each pair: `embeddings` [images, D] holds unit rows in the order of `images`.
absl::StatusOr<VerificationScores> CosineScores(const torch::Tensor& embeddings, const ResolvedPairs& pairs);

}  // namespace veriface
