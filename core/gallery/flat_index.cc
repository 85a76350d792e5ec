#include "core/gallery/flat_index.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/gallery/dot_kernel.h"

namespace veriface {
namespace {

// Rows scored per kernel call: the scores of one block stay in L1 while the top-k update reads them.
constexpr int64_t kBlockRows = 512;

absl::Status CheckLabels(const SlotRows& rows, const int64_t* labels, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= rows.slots()) {
      return absl::InvalidArgumentError(absl::StrCat("label ", labels[i], " is not a slot of the gallery"));
    }
  }
  return absl::OkStatus();
}

// A bounded heap whose top is the worst kept; most rows are rejected by one comparison with it.
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

}  // namespace

int64_t FlatIndex::size() const {
  return static_cast<int64_t>(
      std::count_if(rows_->owner.begin(), rows_->owner.end(), [](int32_t o) { return o >= 0; }));
}

int64_t FlatIndex::memory_bytes() const { return static_cast<int64_t>(rows_->values.size() * sizeof(float)); }

absl::Status FlatIndex::Add(const float*, const int64_t* labels, int64_t n) { return CheckLabels(*rows_, labels, n); }

absl::Status FlatIndex::Remove(const int64_t* labels, int64_t n) { return CheckLabels(*rows_, labels, n); }

absl::StatusOr<std::vector<IndexHit>> FlatIndex::Search(const float* query, int64_t k) const {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("k must be at least 1, got ", k));
  const SlotRows& rows = *rows_;
  TopKeeper keep(k);
  float scores[kBlockRows];
  for (int64_t start = 0; start < rows.slots(); start += kBlockRows) {
    const int64_t count = std::min(kBlockRows, rows.slots() - start);
    DotRows(rows.row(start), count, rows.dim, query, scores);
    for (int64_t i = 0; i < count; ++i) {
      if (rows.owner[start + i] >= 0) keep.Offer(start + i, scores[i]);
    }
  }
  return keep.Take();
}

int64_t Int8FlatIndex::memory_bytes() const {
  return static_cast<int64_t>(codes_.size() * sizeof(int8_t) + scales_.size() * sizeof(float));
}

absl::Status Int8FlatIndex::Add(const float* vectors, const int64_t* labels, int64_t n) {
  const SlotRows& rows = *rows_;
  const size_t dim = static_cast<size_t>(rows.dim);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t slot = labels[i];
    if (slot < 0) return absl::InvalidArgumentError(absl::StrCat("label ", slot, " is negative"));
    if (static_cast<size_t>(slot) >= scales_.size()) {
      scales_.resize(static_cast<size_t>(slot) + 1, 0.0F);
      codes_.resize(scales_.size() * dim, 0);
    }
    const float* v = vectors + i * rows.dim;
    float max_abs = 0;
    for (size_t j = 0; j < dim; ++j) max_abs = std::max(max_abs, std::abs(v[j]));
    // Symmetric 8-bit codes scaled to the vector's own largest value: its error is a fraction of a
    // percent of each coordinate, whatever the vector's spread.
    const float scale = max_abs > 0 ? max_abs / 127.0F : 1.0F;
    int8_t* code = codes_.data() + static_cast<size_t>(slot) * dim;
    for (size_t j = 0; j < dim; ++j) code[j] = static_cast<int8_t>(std::lround(v[j] / scale));
    if (scales_[static_cast<size_t>(slot)] == 0) ++live_;
    scales_[static_cast<size_t>(slot)] = scale;
  }
  return absl::OkStatus();
}

absl::Status Int8FlatIndex::Remove(const int64_t* labels, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t slot = labels[i];
    if (slot < 0 || static_cast<size_t>(slot) >= scales_.size() || scales_[static_cast<size_t>(slot)] == 0) continue;
    scales_[static_cast<size_t>(slot)] = 0;
    std::fill_n(codes_.begin() + slot * rows_->dim, rows_->dim, 0);
    --live_;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<IndexHit>> Int8FlatIndex::Search(const float* query, int64_t k) const {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("k must be at least 1, got ", k));
  const int64_t dim = rows_->dim;
  float max_abs = 0;
  for (int64_t j = 0; j < dim; ++j) max_abs = std::max(max_abs, std::abs(query[j]));
  const float q_scale = max_abs > 0 ? max_abs / 127.0F : 1.0F;
  std::vector<int8_t> q(static_cast<size_t>(dim));
  for (int64_t j = 0; j < dim; ++j) q[j] = static_cast<int8_t>(std::lround(query[j] / q_scale));

  const int64_t slots = static_cast<int64_t>(scales_.size());
  TopKeeper candidates(k * std::max(1, rerank_factor_));
  int32_t sums[kBlockRows];
  for (int64_t start = 0; start < slots; start += kBlockRows) {
    const int64_t count = std::min(kBlockRows, slots - start);
    DotRowsInt8(codes_.data() + start * dim, count, dim, q.data(), sums);
    for (int64_t i = 0; i < count; ++i) {
      const float scale = scales_[static_cast<size_t>(start + i)];
      if (scale != 0) candidates.Offer(start + i, static_cast<float>(sums[i]) * scale * q_scale);
    }
  }
  // Re-scored in fp32, so the order among the candidates (the top-1 above all) is the exact one.
  TopKeeper best(k);
  for (const IndexHit& c : candidates.Take()) {
    float score = 0;
    DotRows(rows_->row(c.label), 1, dim, query, &score);
    best.Offer(c.label, score);
  }
  return best.Take();
}

}  // namespace veriface
