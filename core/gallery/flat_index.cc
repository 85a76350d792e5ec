#include "core/gallery/flat_index.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/gallery/dot_kernel.h"
#include "core/gallery/int8_codes.h"
#include "core/gallery/top_keeper.h"

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
    const float scale = EncodeInt8(vectors + i * rows.dim, rows.dim, codes_.data() + static_cast<size_t>(slot) * dim);
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
  std::vector<int8_t> q(static_cast<size_t>(dim));
  const float q_scale = EncodeInt8(query, dim, q.data());

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
  return RescoreInFp32(*rows_, query, candidates.Take(), k);
}

}  // namespace veriface
