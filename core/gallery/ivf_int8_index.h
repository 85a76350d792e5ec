#pragma once
// An approximate GalleryIndex of our own for the largest galleries: inverted lists (IVF) over spherical
// k-means centroids, each list holding Int8FlatIndex's codes contiguously, so that a probe is one run of
// the AVX2 int8 kernel over a list, and the candidates are re-scored in fp32 over the collection's rows.
//
// Why not faiss's IVF: Debian's libfaiss is built for baseline x86-64, so its scalar-quantizer scan
// decodes each code to float with SSE (about 1.5 ns per dimension per vector on these cores). The int8
// kernel here reads the same bytes at memory speed: 10M templates in ~94 ms on 2 cores, where faiss's
// IVF4096,SQ8 scan covered about a twentieth of that many in the same time (bench/results/index.md). A query visits
// `nprobe` of the `lists` lists, so it reads about nprobe / lists of the codes.
//
// Remove is O(1): each label's list and position are kept, and the removed entry's place is taken by
// its list's last. Labels are the collection's slot numbers (small, dense), so those maps are vectors.
// Add assigns to the nearest centroid; the centroids are not retrained as the gallery changes (the
// factory rebuilds the index at start-up, from the durable store).
//
// Not thread-safe on its own (see GalleryIndex): Search is const and may run on many threads at once.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/flat_index.h"
#include "core/gallery/gallery_index.h"

namespace veriface {

struct IvfInt8Options {
  int64_t lists = 1024;   // inverted lists (k-means centroids)
  int nprobe = 128;       // lists visited per query, at most `lists`
  int rerank_factor = 4;  // k * this many int8 candidates are re-scored in fp32
  int kmeans_iterations = 10;
  uint64_t seed = 20261203;  // the k-means start: a restart over the same gallery builds the same index
};

class IvfInt8Index : public GalleryIndex {
 public:
  // Beyond this many lists, routing a query (one dot product per centroid) costs more than it saves.
  static constexpr int64_t kMaxLists = int64_t{1} << 20;

  // INVALID_ARGUMENT naming gallery.index.ivf_lists or ivf_nprobe when either is out of range.
  static absl::Status CheckOptions(const IvfInt8Options& options);
  // Trains options.lists centroids on `training` (n_training x rows->dim unit vectors). `rows` (the
  // collection's) must outlive the index: Search re-scores its candidates there. CheckOptions' errors,
  // INVALID_ARGUMENT for rerank_factor < 1 or iterations < 0; FAILED_PRECONDITION when there are fewer
  // training vectors than lists.
  static absl::StatusOr<std::unique_ptr<IvfInt8Index>> Create(const SlotRows* rows, const IvfInt8Options& options,
                                                              const float* training, int64_t n_training);

  // "ivf1024-int8": what answered, for Identify's response (nprobe is a search setting, not the index).
  std::string name() const override;
  bool exact() const override { return false; }
  int64_t size() const override { return live_; }
  // Codes, scales and labels in the lists (with their spare capacity, at most a fifth), the centroids and
  // the label maps: about 136 B per template at 128-D.
  int64_t memory_bytes() const override;
  // INVALID_ARGUMENT for a negative label or one already present; nothing is added then.
  absl::Status Add(const float* vectors, const int64_t* labels, int64_t n) override;
  // O(1) a label: its list's last entry moves into its place. Unknown labels are ignored.
  absl::Status Remove(const int64_t* labels, int64_t n) override;
  // Scores the centroids, scans the nprobe nearest lists' codes and re-scores the best k * rerank_factor
  // in fp32: the scores returned are exact.
  absl::StatusOr<std::vector<IndexHit>> Search(const float* query, int64_t k) const override;

  // For benchmarks that sweep nprobe over one build; not while searches run.
  absl::Status set_nprobe(int nprobe);
  // The largest list's length over the mean (1 when balanced): a probe costs its lists' lengths.
  double imbalance() const;

 private:
  struct List {
    std::vector<int8_t> codes;  // size() x dim
    std::vector<float> scales;
    std::vector<int32_t> labels;  // slot numbers fit: Add refuses larger labels
  };

  IvfInt8Index(const SlotRows* rows, const IvfInt8Options& options, std::vector<float> centroids);
  // Room for `more` entries in `list`, grown by a quarter at least: doubling would leave up to half of
  // a 10M-template index's memory unused, and exact growth would copy every list at every batch.
  void Reserve(List& list, size_t more) const;

  const SlotRows* const rows_;
  const int64_t dim_;
  const int rerank_factor_;
  int nprobe_;
  const std::vector<float> centroids_;  // lists x dim, unit rows
  std::vector<List> lists_;
  // Per label: its list and its position there, -1 when absent.
  std::vector<int32_t> list_of_;
  std::vector<int32_t> position_of_;
  int64_t live_ = 0;
};

}  // namespace veriface
