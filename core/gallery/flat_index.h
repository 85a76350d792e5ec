#pragma once
// The exact scans. FlatIndex searches the collection's own fp32 rows (it holds no copy: the rows are the
// gallery's source of truth in memory); Int8FlatIndex scans int8 codes with a per-vector scale, a quarter
// of the bytes, then re-scores its best candidates in fp32 over the same rows.

#include <cstdint>
#include <string>
#include <vector>

#include "core/gallery/gallery_index.h"

namespace veriface {

// A collection's templates in slots: slot s holds a unit vector when owner[s] >= 0 and is free (its
// values zero) when owner[s] < 0. Labels of the collection's indexes are slot numbers.
struct SlotRows {
  int64_t dim = 0;
  std::vector<float> values;   // slots x dim, row-major
  std::vector<int32_t> owner;  // per slot: the collection's identity index, -1 when free

  int64_t slots() const { return static_cast<int64_t>(owner.size()); }
  const float* row(int64_t slot) const { return values.data() + slot * dim; }
};

class FlatIndex : public GalleryIndex {
 public:
  // `rows` (the collection's) must outlive the index; Add and Remove only check their labels against it.
  explicit FlatIndex(const SlotRows* rows) : rows_(rows) {}
  std::string name() const override { return "flat-fp32"; }
  bool exact() const override { return true; }
  int64_t size() const override;
  int64_t memory_bytes() const override;  // the rows it reads
  absl::Status Add(const float* vectors, const int64_t* labels, int64_t n) override;
  absl::Status Remove(const int64_t* labels, int64_t n) override;
  absl::StatusOr<std::vector<IndexHit>> Search(const float* query, int64_t k) const override;

 private:
  const SlotRows* const rows_;
};

class Int8FlatIndex : public GalleryIndex {
 public:
  // `rerank_factor` x k candidates by int8 score are re-scored in fp32 over `rows`.
  Int8FlatIndex(const SlotRows* rows, int rerank_factor) : rows_(rows), rerank_factor_(rerank_factor) {}
  std::string name() const override { return "flat-int8"; }
  // Not exact: a true neighbour whose int8 score lost more than the candidates' margin is missed, which
  // at 8 bits and 128-D is rare but possible.
  bool exact() const override { return false; }
  int64_t size() const override { return live_; }
  int64_t memory_bytes() const override;
  absl::Status Add(const float* vectors, const int64_t* labels, int64_t n) override;
  absl::Status Remove(const int64_t* labels, int64_t n) override;
  absl::StatusOr<std::vector<IndexHit>> Search(const float* query, int64_t k) const override;

 private:
  const SlotRows* const rows_;
  const int rerank_factor_;
  std::vector<int8_t> codes_;  // per slot, dim codes
  std::vector<float> scales_;  // per slot; 0 for a free slot
  int64_t live_ = 0;
};

}  // namespace veriface
