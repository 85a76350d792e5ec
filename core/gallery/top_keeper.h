#pragma once
// The best k of a stream of scored labels, for the scans: a bounded heap whose top is the worst kept, so
// most offers are rejected by one comparison with it. Ties go to the smaller label, so that every scan
// orders equal scores the same way.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/gallery/gallery_index.h"

namespace veriface {

class TopKeeper {
 public:
  explicit TopKeeper(int64_t k) : k_(k) { heap_.reserve(static_cast<size_t>(k) + 1); }

  void Offer(int64_t label, float score) {
    if (static_cast<int64_t>(heap_.size()) < k_) {
      heap_.push_back({label, score});
      std::push_heap(heap_.begin(), heap_.end(), Better);
    } else if (Better({label, score}, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Better);
      heap_.back() = {label, score};
      std::push_heap(heap_.begin(), heap_.end(), Better);
    }
  }

  // Best first; the keeper is empty afterwards.
  std::vector<IndexHit> Take() {
    std::sort_heap(heap_.begin(), heap_.end(), Better);
    return std::move(heap_);
  }

 private:
  static bool Better(const IndexHit& a, const IndexHit& b) {
    return a.score != b.score ? a.score > b.score : a.label < b.label;
  }
  const int64_t k_;
  std::vector<IndexHit> heap_;
};

}  // namespace veriface
