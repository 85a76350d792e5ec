#pragma once
// An approximate GalleryIndex over faiss (1.7.3, CPU), for galleries too large to scan: built by
// faiss::index_factory from gallery.index.faiss_factory with the inner-product metric.
//
// Two families are taken, because only they can both forget a vector and be searched concurrently
// without being changed:
//  - IVF with flat, SQ or PQ codes ("IVF4096,SQ8", "IVF4096,PQ32", "IVF4096_HNSW32,SQ8"), optionally
//    behind a vector transform ("OPQ32,IVF4096,PQ32"). The inverted lists keep the caller's labels
//    and remove_ids takes vectors out for good. Remove scans every list: O(size) per call.
//  - HNSW over flat or SQ storage ("HNSW32", "HNSW32_SQ8"). faiss cannot delete from the graph, so
//    labels live in a table here (8 bytes per vector, indexed by faiss's sequential id) and a removed
//    vector becomes a tombstone: it stays in the storage and graph (its full cost: about
//    4*dim + 8*M bytes for HNSW32 over fp32, plus 8 here), still guides searches through the graph and
//    is filtered out of results, which are over-fetched so that k live ones still come back. Re-adding
//    a removed label appends a new vector. Remove scans the label table: O(size) per call. Rebuild the
//    index once tombstones() is a sizeable share of the index (a quarter, say): they cost memory, and
//    each search over-fetches by the factor (live + tombstones) / live.
// Fast-scan ("PQ16x4fs"), refinement, IDMap and the exhaustive kinds (Flat, PQ, SQ without IVF) are
// refused: the first cannot remove (faiss aborts the process trying), the rest are not worth it here
// (the exact scans serve small galleries, Collection re-ranks in fp32 and keeps the labels).
//
// Not thread-safe on its own (see GalleryIndex): Search is const, does not touch the index (per-query
// values go in faiss::SearchParameters) and may run on many threads at once; Add and Remove need the
// caller's exclusive lock.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/gallery_index.h"
#include "core/gallery/index_options.h"

namespace faiss {
struct Index;
struct IndexHNSW;
}  // namespace faiss

namespace veriface {

class FaissIndex : public GalleryIndex {
 public:
  // The index options.faiss_factory describes, for vectors of `dim`, with nprobe (IVF, at most the
  // number of lists) and ef_search (HNSW, and an HNSW coarse quantizer) from `options`.
  // INVALID_ARGUMENT (naming gallery.index.faiss_factory, nprobe or ef_search and the bad value) when
  // CheckFaissOptions refuses the options. Kinds that need training (IVF, PQ and SQ codes) are trained
  // on `training` (n_training x dim unit vectors, may be null when 0; ignored by kinds that need none);
  // FAILED_PRECONDITION, saying how many are needed, when n_training is below the hard minimum (one
  // vector per IVF list; 2^nbits for PQ codes) or faiss's training refuses the data. faiss recommends
  // 39 training vectors per IVF list and prints a warning on stderr below that.
  static absl::StatusOr<std::unique_ptr<FaissIndex>> Create(const IndexOptions& options, int64_t dim,
                                                            const float* training, int64_t n_training);
  // Whether options.faiss_factory needs training data (so that the caller gathers it first); the same
  // INVALID_ARGUMENT as CheckFaissOptions.
  static absl::StatusOr<bool> NeedsTraining(const IndexOptions& options, int64_t dim);

  ~FaissIndex() override;
  FaissIndex(const FaissIndex&) = delete;
  FaissIndex& operator=(const FaissIndex&) = delete;

  std::string name() const override { return "faiss:" + description_; }
  bool exact() const override { return false; }
  // Live vectors (tombstones not counted).
  int64_t size() const override;
  // What faiss would write for the index (codes, ids, centroids, graph links, trained tables: measured by
  // serializing it into a byte counter), plus the spare capacity of its growing arrays (inverted lists,
  // HNSW storage and links), plus the label table kept here. Allocator overhead is not counted.
  int64_t memory_bytes() const override;

  // INVALID_ARGUMENT for n < 0, null arrays or a negative label (faiss's -1 means "no result"). Labels
  // are not checked for uniqueness (the caller's contract). OpenMP threads are used only for batches of
  // 1024 vectors or more: smaller ones run on the calling thread.
  absl::Status Add(const float* vectors, const int64_t* labels, int64_t n) override;
  absl::Status Remove(const int64_t* labels, int64_t n) override;
  // INVALID_ARGUMENT for a null query or k < 0. Runs on the calling thread only (see faiss_index.cc).
  absl::StatusOr<std::vector<IndexHit>> Search(const float* query, int64_t k) const override;

  // HNSW: removed vectors still held in the graph (0 for IVF, which deletes).
  int64_t tombstones() const;

 private:
  FaissIndex(std::string description, int ef_search, std::unique_ptr<faiss::Index> index);

  absl::StatusOr<std::vector<IndexHit>> SearchHnsw(const float* query, int64_t k) const;

  const std::string description_;
  const int ef_search_;
  const std::unique_ptr<faiss::Index> index_;
  // Non-null for the HNSW family (index_ itself): labels and tombstones are kept here.
  faiss::IndexHNSW* const hnsw_;
  // HNSW: the label of each faiss id (faiss numbers vectors 0, 1, ... as added), kRemoved for tombstones.
  std::vector<int64_t> labels_;
  int64_t live_ = 0;  // HNSW: entries of labels_ not kRemoved
};

// Checks the faiss options for vectors of `dim` without training or adding anything (it builds the empty
// index to see that faiss takes the description): INVALID_ARGUMENT naming gallery.index.faiss_factory
// (a description faiss cannot parse, IVF0, HNSW with M < 2, a kind listed above as refused, one faiss
// builds with another metric than inner product), gallery.index.nprobe (< 1) or gallery.index.ef_search
// (< 1), with the value.
absl::Status CheckFaissOptions(const IndexOptions& options, int64_t dim);

}  // namespace veriface
