#include "trainer/training/pk_sampler.h"

#include <algorithm>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"

namespace veriface {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Fisher-Yates with our own index draw: std::shuffle's sequence is left to the standard library, and a
// checkpoint should resume identically wherever it is built.
template <typename T>
void Shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace

uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  return SplitMix(SplitMix(SplitMix(SplitMix(a) ^ b) ^ c) ^ d);
}

absl::StatusOr<PkSampler> PkSampler::Create(const std::vector<int>& labels, const PkSamplerOptions& options) {
  if (options.people_per_batch < 1 || options.images_per_person < 2 || options.extra_negatives < 0 ||
      options.batches_per_epoch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("P x K sampler: need people per batch >= 1 (got ", options.people_per_batch,
                     "), images per person >= 2 (got ", options.images_per_person, "), extra negatives >= 0 (got ",
                     options.extra_negatives, ") and batches per epoch >= 0 (got ", options.batches_per_epoch, ")"));
  }
  std::map<int, std::vector<int64_t>> by_person;
  for (size_t i = 0; i < labels.size(); ++i) by_person[labels[i]].push_back(static_cast<int64_t>(i));
  PkSampler s;
  s.options_ = options;
  for (auto& [label, items] : by_person) {
    if (items.size() >= 2) {
      s.groups_.push_back(std::move(items));
    } else {
      s.singles_.push_back(items[0]);
    }
  }
  const bool has_negatives =
      s.groups_.size() >= 2 || (!s.groups_.empty() && options.extra_negatives > 0 && !s.singles_.empty());
  if (!has_negatives || (options.people_per_batch < 2 && (options.extra_negatives == 0 || s.singles_.empty()))) {
    return absl::InvalidArgumentError(absl::StrCat("P x K sampler: no batch could hold a triplet: ", s.groups_.size(),
                                                   " people have two or more images, ", s.singles_.size(),
                                                   " have one; P = ", options.people_per_batch,
                                                   ", extra negatives = ", options.extra_negatives));
  }
  const int64_t people = static_cast<int64_t>(s.groups_.size());
  s.batches_per_epoch_ = options.batches_per_epoch > 0
                             ? options.batches_per_epoch
                             : (people + options.people_per_batch - 1) / options.people_per_batch;
  return s;
}

std::vector<std::vector<int64_t>> PkSampler::Epoch(int64_t epoch) const {
  std::mt19937_64 rng(MixSeed(options_.seed, static_cast<uint64_t>(epoch), 0x504b));
  const size_t p = std::min<size_t>(static_cast<size_t>(options_.people_per_batch), groups_.size());
  std::vector<size_t> order(groups_.size());
  size_t next = order.size();  // forces a shuffle before the first draw
  std::vector<int64_t> singles = singles_;
  Shuffle(singles, rng);
  size_t next_single = 0;

  std::vector<std::vector<int64_t>> batches;
  batches.reserve(static_cast<size_t>(batches_per_epoch_));
  for (int64_t b = 0; b < batches_per_epoch_; ++b) {
    std::vector<int64_t> batch;
    std::vector<size_t> chosen;
    while (chosen.size() < p) {
      if (next == order.size()) {
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        Shuffle(order, rng);
        next = 0;
      }
      const size_t person = order[next++];
      // A reshuffle can bring back someone already in this batch; skip them (there are > p people, or
      // p equals the number of people and the batch is every one of them).
      if (std::find(chosen.begin(), chosen.end(), person) != chosen.end()) continue;
      chosen.push_back(person);
      std::vector<int64_t> items = groups_[person];
      Shuffle(items, rng);
      const auto k = static_cast<size_t>(options_.images_per_person);
      if (items.size() >= k) {
        items.resize(k);
      } else if (options_.repeat_to_k) {
        const size_t have = items.size();
        while (items.size() < k) items.push_back(items[static_cast<size_t>(rng() % have)]);
      }
      batch.insert(batch.end(), items.begin(), items.end());
    }
    for (int k = 0; k < options_.extra_negatives && !singles.empty(); ++k) {
      if (next_single == singles.size()) {
        Shuffle(singles, rng);
        next_single = 0;
      }
      batch.push_back(singles[next_single++]);
    }
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace veriface
