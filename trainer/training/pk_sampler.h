#pragma once
// P x K batches: P people, K images of each, so that every anchor has positives and negatives in its
// own batch for online mining. Batches have one shape by default (short people repeat images): with
// LibTorch on a CPU every new batch shape costs new oneDNN primitives and allocator fragments. People with a single
// image can never be anchors; a few of them are added to each batch as extra negatives, so they still teach the network
// who someone is not.
//
// Deterministic: an epoch's batches depend only on (seed, epoch), never on earlier calls, which is what
// lets a resumed run continue exactly where it stopped.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

struct PkSamplerOptions {
  int people_per_batch = 16;  // P
  int images_per_person = 4;  // K
  // A person with fewer than K images: repeat some of them (each repeat gets its own augmentation or
  // view) so that every batch has the same shape, or give just the ones there are.
  bool repeat_to_k = true;
  int extra_negatives = 0;        // images of single-image people added to every batch
  int64_t batches_per_epoch = 0;  // 0: one pass over the people with >= 2 images
  uint64_t seed = 1;
};

class PkSampler {
 public:
  // labels[i]: the person of item i (any integers). INVALID_ARGUMENT when P < 1, K < 2, or fewer than
  // two people have two or more items and no extra negatives are asked for (no triplet could form).
  static absl::StatusOr<PkSampler> Create(const std::vector<int>& labels, const PkSamplerOptions& options);

  // The batches of one epoch (0-based), as item indices; each batch lists a person's items together.
  std::vector<std::vector<int64_t>> Epoch(int64_t epoch) const;

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t anchor_people() const { return static_cast<int64_t>(groups_.size()); }
  int64_t single_items() const { return static_cast<int64_t>(singles_.size()); }

 private:
  PkSampler() = default;

  PkSamplerOptions options_;
  std::vector<std::vector<int64_t>> groups_;  // items of each person with >= 2 items
  std::vector<int64_t> singles_;              // items of people with exactly one
  int64_t batches_per_epoch_ = 0;
};

// A 64-bit mix of several values (splitmix64 steps), for seeding per-epoch and per-item generators.
uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0);

}  // namespace veriface
