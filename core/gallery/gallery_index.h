#pragma once
// The search structure under one gallery, in the manner of faiss's Index: vectors under caller-chosen
// int64 labels, added, removed and searched for the top k by inner product (cosine similarity, as every
// vector is unit length). It knows nothing of identities, template ids or metadata: Collection keeps
// those and maps labels back. Implementations: the exact scans (FlatIndex in fp32 over the collection's
// own rows, Int8FlatIndex over a compressed copy) and the approximate faiss ones (FaissIndex).
//
// Not thread-safe on its own: Collection calls Add and Remove under its exclusive lock and Search under
// its shared lock, so Search must not mutate.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface {

struct IndexHit {
  int64_t label = -1;
  float score = 0;  // inner product with the query, as the index estimates it
};

class GalleryIndex {
 public:
  virtual ~GalleryIndex() = default;

  // "flat-fp32", "flat-int8", "faiss:IVF1024,SQ8", ...: what answered, for Identify's response.
  virtual std::string name() const = 0;
  // True when Search returns exactly the top k of exhaustive fp32 search (up to ties and rounding).
  virtual bool exact() const = 0;
  virtual int64_t size() const = 0;
  // Bytes the index itself holds (not the collection's fp32 rows, unless it is them).
  virtual int64_t memory_bytes() const = 0;

  // Adds `n` unit vectors of the index's dimension under `labels` (new, unique).
  virtual absl::Status Add(const float* vectors, const int64_t* labels, int64_t n) = 0;
  // Removes the labels; a removed label is never returned again. Unknown labels are ignored.
  virtual absl::Status Remove(const int64_t* labels, int64_t n) = 0;
  // The (at most) k stored vectors most similar to `query`, best first.
  virtual absl::StatusOr<std::vector<IndexHit>> Search(const float* query, int64_t k) const = 0;
};

}  // namespace veriface
