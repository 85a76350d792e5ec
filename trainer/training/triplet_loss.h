#pragma once
// The triplet loss with online mining inside a batch. A triplet (anchor a, positive p of the same
// person, negative n of another) costs max(0, d(a,p) - d(a,n) + margin); mining decides which triplets
// a batch contributes:
//   batch-hard (Hermans et al. 2017, "In Defense of the Triplet Loss"): per anchor, its farthest positive
//     and its nearest negative;
//   semi-hard (Schroff et al. 2015, FaceNet): per positive pair (a, p), the nearest negative that is still
//     farther than p (d(a,n) > d(a,p)); when there is none, the farthest negative, which is the least
//     violating one;
//   batch-all (Hermans et al., their "BA, != 0" variant): every valid triplet of the batch, the loss
//     averaged over the active ones only, so that the many satisfied triplets do not dilute the
//     gradient; steadier than batch-hard while a network trained from scratch is still random, when the
//     hardest pairs of a batch are mostly noise;
//   random (the original study's fixed random triplets, for comparison): per anchor, a random positive
//     and a random negative.
// Only anchors with at least one positive and one negative in the batch take part. Except for batch-all,
// the loss is the mean over the triplets taken, including those already satisfied (they count as
// inactive).

#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <string>

#include "absl/status/statusor.h"

namespace veriface {

enum class Mining { kBatchHard, kSemiHard, kBatchAll, kRandom };
enum class TripletDistance {
  kSquared,   // ||a - b||^2, FaceNet's choice; on unit vectors 2 - 2 cos
  kEuclidean  // ||a - b||
};

// "batch-hard", "semi-hard", "batch-all", "random"; "squared", "euclidean".
absl::StatusOr<Mining> ParseMining(const std::string& name);
std::string MiningName(Mining mining);
absl::StatusOr<TripletDistance> ParseTripletDistance(const std::string& name);
std::string TripletDistanceName(TripletDistance distance);

struct TripletLossOptions {
  Mining mining = Mining::kBatchHard;
  double margin = 0.2;
  TripletDistance distance = TripletDistance::kSquared;
};

struct TripletLossResult {
  torch::Tensor loss;    // scalar; differentiable with respect to the embeddings; 0 when no triplet
  int64_t triplets = 0;  // triplets taken
  int64_t active = 0;    // of which violate the margin (positive loss)
  double active_fraction() const { return triplets > 0 ? static_cast<double>(active) / triplets : 0.0; }
};

// All pairwise distances of the rows of `x` [N, D]: [N, N], exactly 0 on the diagonal. The Euclidean
// form keeps a finite gradient where two rows coincide.
torch::Tensor PairwiseDistances(const torch::Tensor& x, TripletDistance distance);

// embeddings [N, D] (normalised by the caller if wanted), labels [N] integer person ids. `rng` is used
// by kRandom only and must then be non-null. INVALID_ARGUMENT for mismatched shapes or a negative margin.
absl::StatusOr<TripletLossResult> TripletLoss(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                              const TripletLossOptions& options, std::mt19937_64* rng = nullptr);

}  // namespace veriface
