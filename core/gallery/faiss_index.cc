#include "core/gallery/faiss_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

// Threads. faiss's CPU indexes may be searched from many threads at once as long as nothing modifies them
// (faiss's wiki, "Threads and asynchronous calls"); the only shared state a search writes is faiss's global
// statistics counters (indexIVF_stats, hnsw_stats), updated without synchronisation, so they are
// meaningless here and never read. Search passes every per-call value in faiss::SearchParameters and
// changes nothing in the index: nprobe and ef_search are fixed for the index's life, so they are set once in
// Create, and only HNSW's over-fetch varies per call.
//
// OpenMP. faiss parallelises over the queries of a batch; for one query it still opens a parallel region
// (IndexHNSW::search does so unconditionally, each thread allocating a visited table of `size` bytes), and
// on this 2-core machine, with other work running, an HNSW32 query over 20k 64-D vectors took 1.4 ms with two
// OpenMP threads against 0.19 ms with one (IVF: 0.25 against 0.19 ms). Identify runs on several request
// threads at once, so a query's parallelism would only fight the others for the cores: Search, and Add of
// small batches, run faiss on the calling thread alone. Training, bulk adds and Remove (which scans every
// list) keep the caller's OpenMP setting.
//
// Exceptions. Every faiss call is wrapped in Guard below (Guarded() in core/common is the usual way, but it
// lives in the LibTorch-linked veriface_common, which the gallery does not link; it also does not know
// faiss's messages). An exception thrown inside one of faiss's OpenMP regions cannot be caught anywhere: the
// runtime aborts the process (fast-scan lists do that on remove_ids in 1.7.3). Hence the short list of kinds
// CheckKind accepts and the checks of sizes and labels before faiss sees them.

namespace veriface {
namespace {

static_assert(std::is_same_v<faiss::Index::idx_t, int64_t>, "faiss labels are passed through as int64_t");

constexpr char kFactoryKey[] = "gallery.index.faiss_factory";
// labels_ entry of a removed HNSW vector: -1 is never a caller's label (Add refuses negative ones).
constexpr int64_t kRemoved = -1;
// Below this many vectors an Add runs on the calling thread (see the comment on OpenMP above).
constexpr int64_t kParallelAddMinimum = 1024;

// faiss's messages start "Error in <function signature> at <file>:<line>: "; the signature is long and
// says nothing to an operator, so only what follows is kept.
std::string FaissMessage(const faiss::FaissException& e) {
  const std::string& msg = e.msg;
  if (msg.rfind("Error in ", 0) != 0) return msg;
  const size_t at = msg.find(" at ");
  if (at == std::string::npos) return msg;
  const size_t colon = msg.find(": ", at);
  return colon == std::string::npos ? msg : msg.substr(colon + 2);
}

// Runs `fn` (returning absl::Status or StatusOr) and turns what it throws into a status: `faiss_code` for
// faiss's own exceptions (whose meaning depends on the call: a description faiss refuses is the caller's
// mistake, a failed search is ours), RESOURCE_EXHAUSTED for std::bad_alloc, INTERNAL otherwise.
template <typename Fn>
auto Guard(absl::StatusCode faiss_code, const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const faiss::FaissException& e) {
    return absl::Status(faiss_code, absl::StrCat(what, ": ", FaissMessage(e)));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": an unknown exception"));
  }
}

// Makes faiss run on the calling thread alone while it lives. libgomp keeps omp_set_num_threads's value per
// thread, so this touches neither other threads' searches nor, once restored, whatever else the thread runs
// afterwards (LibTorch's kernels read the same setting).
class OneOpenMpThread {
 public:
  OneOpenMpThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneOpenMpThread() { omp_set_num_threads(saved_); }
  OneOpenMpThread(const OneOpenMpThread&) = delete;
  OneOpenMpThread& operator=(const OneOpenMpThread&) = delete;

 private:
  const int saved_;
};

std::string KeyFor(const std::string& description) { return absl::StrCat(kFactoryKey, " \"", description, "\""); }

const faiss::Index* BelowTransforms(const faiss::Index* index) {
  while (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) index = pre->index;
  return index;
}

// The kinds FaissIndex can serve (see faiss_index.h): what remains after index_factory took the description.
absl::Status CheckKind(const faiss::Index& index, const std::string& description) {
  const std::string key = KeyFor(description);
  if (index.metric_type != faiss::METRIC_INNER_PRODUCT) {
    // IndexHNSWPQ ("HNSW32_PQ16") has no metric argument in 1.7.3 and is always L2.
    return absl::InvalidArgumentError(absl::StrCat(
        key, ": faiss builds this kind with the L2 metric whatever is asked; similarities must be inner products"));
  }
  if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&index)) {
    if (typeid(index) != typeid(faiss::IndexHNSWFlat) && typeid(index) != typeid(faiss::IndexHNSWSQ)) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": an HNSW graph must be over flat or SQ storage (\"HNSW32\", \"HNSW32_SQ8\")"));
    }
    // index_factory takes "HNSW0" and "HNSW1", whose level probabilities are degenerate (1/log M).
    if (hnsw->hnsw.cum_nneighbor_per_level.size() < 2 || hnsw->hnsw.nb_neighbors(0) < 4) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": an HNSW graph needs M >= 2 neighbours per node"));
    }
    return absl::OkStatus();
  }
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(BelowTransforms(&index))) {
    // index_factory takes "IVF0,Flat" and builds an index that can hold nothing.
    if (ivf->nlist < 1) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": an IVF index needs at least 1 inverted list"));
    }
    const std::type_info& type = typeid(*ivf);
    const bool known_codes = type == typeid(faiss::IndexIVFFlat) || type == typeid(faiss::IndexIVFScalarQuantizer) ||
                             type == typeid(faiss::IndexIVFPQ);
    if (!known_codes || dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(key,
                       ": the IVF codes must be Flat, SQ or PQ (\"IVF4096,SQ8\", \"IVF4096,PQ32\"); fast-scan, "
                       "refined and other codes cannot remove vectors"));
    }
    return absl::OkStatus();
  }
  const bool id_map = dynamic_cast<const faiss::IndexIDMap*>(&index) != nullptr;
  return absl::InvalidArgumentError(absl::StrCat(
      key, ": FaissIndex takes IVF indexes with Flat, SQ or PQ codes (\"IVF4096,SQ8\") or HNSW graphs (\"HNSW32\")",
      id_map ? "; it keeps the labels itself, so leave out \"IDMap\"" : ""));
}

// The empty index for the options, with every option checked.
absl::StatusOr<std::unique_ptr<faiss::Index>> BuildEmpty(const IndexOptions& options, int64_t dim) {
  if (dim < 1 || dim > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("faiss index: embedding dimension ", dim, " is not in [1, ", INT_MAX, "]"));
  }
  if (options.nprobe < 1) {
    return absl::InvalidArgumentError(absl::StrCat("gallery.index.nprobe must be at least 1, got ", options.nprobe));
  }
  if (options.ef_search < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("gallery.index.ef_search must be at least 1, got ", options.ef_search));
  }
  const std::string& description = options.faiss_factory;
  std::unique_ptr<faiss::Index> index;
  VF_RETURN_IF_ERROR(Guard(absl::StatusCode::kInvalidArgument, KeyFor(description), [&]() -> absl::Status {
    index.reset(faiss::index_factory(static_cast<int>(dim), description.c_str(), faiss::METRIC_INNER_PRODUCT));
    return absl::OkStatus();
  }));
  VF_RETURN_IF_ERROR(CheckKind(*index, description));
  return index;
}

// The fewest training vectors faiss's training accepts for `index` (k-means needs one point per centroid),
// and why, for the message.
std::pair<int64_t, std::string> MinTraining(const faiss::Index& index) {
  int64_t need = 1;
  std::string why;
  if (const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(&index)) {
    need = static_cast<int64_t>(ivf->nlist);
    why = absl::StrCat("one per inverted list, of ", ivf->nlist);
    if (const auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf)) {
      if (static_cast<int64_t>(pq->pq.ksub) > need) {
        need = static_cast<int64_t>(pq->pq.ksub);
        why = absl::StrCat("one per centroid of each PQ sub-quantizer, of ", pq->pq.ksub);
      }
    }
  }
  return {need, why};
}

template <typename T>
int64_t SpareBytes(const std::vector<T>& v) {
  return static_cast<int64_t>((v.capacity() - v.size()) * sizeof(T));
}

// An IOWriter that only counts: the size write_index would produce, without a copy of the index.
class ByteCounter : public faiss::IOWriter {
 public:
  size_t operator()(const void* /*ptr*/, size_t size, size_t nitems) override {
    bytes += static_cast<int64_t>(size * nitems);
    return nitems;
  }
  int64_t bytes = 0;
};

}  // namespace

absl::Status CheckFaissOptions(const IndexOptions& options, int64_t dim) { return BuildEmpty(options, dim).status(); }

absl::StatusOr<bool> FaissIndex::NeedsTraining(const IndexOptions& options, int64_t dim) {
  VF_ASSIGN_OR_RETURN(const std::unique_ptr<faiss::Index> index, BuildEmpty(options, dim));
  return !index->is_trained;
}

absl::StatusOr<std::unique_ptr<FaissIndex>> FaissIndex::Create(const IndexOptions& options, int64_t dim,
                                                               const float* training, int64_t n_training) {
  VF_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> index, BuildEmpty(options, dim));
  const std::string& description = options.faiss_factory;
  if (n_training < 0 || (n_training > 0 && training == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("faiss index: ", n_training, " training vectors at ", training == nullptr ? "null" : "data"));
  }
  faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
  if (auto* ivf_pq = dynamic_cast<faiss::IndexIVFPQ*>(ivf)) {
    // index_factory turns on polysemous training for PQ codes: simulated annealing that reorders the
    // centroids for Hamming-distance pre-filtering (polysemous_ht), which stays off. It took minutes of CPU.
    ivf_pq->do_polysemous_training = false;
  }
  if (!index->is_trained) {
    const auto [need, why] = MinTraining(*index);
    if (n_training < need) {
      return absl::FailedPreconditionError(absl::StrCat(KeyFor(description), " needs at least ", need,
                                                        " training vectors (", why, "), got ", n_training));
    }
    VF_RETURN_IF_ERROR(Guard(absl::StatusCode::kFailedPrecondition,
                             absl::StrCat("training ", KeyFor(description), " on ", n_training, " vectors"),
                             [&]() -> absl::Status {
                               index->train(n_training, training);
                               return absl::OkStatus();
                             }));
  }
  if (ivf != nullptr) {
    // faiss would clamp a larger nprobe itself, but size its coarse search by it first.
    ivf->nprobe = std::min(static_cast<size_t>(options.nprobe), ivf->nlist);
    // An HNSW coarse quantizer ("IVF65536_HNSW32,...") must return nprobe lists per query.
    if (auto* quantizer = dynamic_cast<faiss::IndexHNSW*>(ivf->quantizer)) {
      quantizer->hnsw.efSearch = std::max(options.ef_search, static_cast<int>(ivf->nprobe));
    }
  }
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get())) hnsw->hnsw.efSearch = options.ef_search;
  return std::unique_ptr<FaissIndex>(new FaissIndex(description, options.ef_search, std::move(index)));
}

FaissIndex::FaissIndex(std::string description, int ef_search, std::unique_ptr<faiss::Index> index)
    : description_(std::move(description)),
      ef_search_(ef_search),
      index_(std::move(index)),
      hnsw_(dynamic_cast<faiss::IndexHNSW*>(index_.get())) {}

FaissIndex::~FaissIndex() = default;

int64_t FaissIndex::size() const { return hnsw_ != nullptr ? live_ : static_cast<int64_t>(index_->ntotal); }

int64_t FaissIndex::tombstones() const { return hnsw_ != nullptr ? static_cast<int64_t>(labels_.size()) - live_ : 0; }

int64_t FaissIndex::memory_bytes() const {
  ByteCounter counter;
  try {
    faiss::write_index(index_.get(), &counter);
  } catch (const std::exception&) {
    return -1;  // cannot happen for the kinds CheckKind takes: faiss writes them all
  }
  int64_t bytes = counter.bytes;
  if (const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index_.get())) {
    if (const auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists)) {
      for (size_t i = 0; i < lists->nlist; ++i) bytes += SpareBytes(lists->codes[i]) + SpareBytes(lists->ids[i]);
      // Each list is two std::vectors in memory, where the file has one 8-byte size.
      bytes += static_cast<int64_t>(lists->nlist * (2 * sizeof(std::vector<uint8_t>) - sizeof(uint64_t)));
    }
  }
  if (hnsw_ != nullptr) {
    bytes += SpareBytes(hnsw_->hnsw.neighbors) + SpareBytes(hnsw_->hnsw.levels) + SpareBytes(hnsw_->hnsw.offsets);
    if (const auto* storage = dynamic_cast<const faiss::IndexFlatCodes*>(hnsw_->storage)) {
      bytes += SpareBytes(storage->codes);
    }
    bytes += static_cast<int64_t>(labels_.capacity() * sizeof(int64_t));
  }
  return bytes;
}

absl::Status FaissIndex::Add(const float* vectors, const int64_t* labels, int64_t n) {
  if (n < 0 || (n > 0 && (vectors == nullptr || labels == nullptr))) {
    return absl::InvalidArgumentError(absl::StrCat(name(), ": cannot add ", n, " vectors from null arrays"));
  }
  if (n == 0) return absl::OkStatus();
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(name(), ": label ", labels[i], " (vector ", i, ") is negative"));
    }
  }
  std::optional<OneOpenMpThread> one_thread;
  if (n < kParallelAddMinimum) one_thread.emplace();
  if (hnsw_ == nullptr) {
    return Guard(absl::StatusCode::kInternal, absl::StrCat(name(), ": adding ", n, " vectors"), [&]() -> absl::Status {
      index_->add_with_ids(n, vectors, labels);
      return absl::OkStatus();
    });
  }
  // HNSW numbers its vectors with 32-bit ints, tombstones included.
  if (static_cast<int64_t>(labels_.size()) + n > INT_MAX) {
    return absl::ResourceExhaustedError(absl::StrCat(name(), ": ", labels_.size(), " vectors (", tombstones(),
                                                     " of them removed) and ", n,
                                                     " more exceed HNSW's 32-bit ids; rebuild the index"));
  }
  const absl::Status added =
      Guard(absl::StatusCode::kInternal, absl::StrCat(name(), ": adding ", n, " vectors"), [&]() -> absl::Status {
        hnsw_->add(n, vectors);
        return absl::OkStatus();
      });
  if (added.ok()) {
    labels_.insert(labels_.end(), labels, labels + n);
    live_ += n;
  } else {
    // faiss may have kept part of the batch: those vectors have no label here and are never returned.
    labels_.resize(std::max(labels_.size(), static_cast<size_t>(hnsw_->ntotal)), kRemoved);
  }
  return added;
}

absl::Status FaissIndex::Remove(const int64_t* labels, int64_t n) {
  if (n < 0 || (n > 0 && labels == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(name(), ": cannot remove ", n, " labels from a null array"));
  }
  if (n == 0) return absl::OkStatus();
  if (hnsw_ == nullptr) {
    return Guard(absl::StatusCode::kInternal, absl::StrCat(name(), ": removing ", n, " labels"), [&]() -> absl::Status {
      const faiss::IDSelectorBatch selector(static_cast<size_t>(n), labels);
      index_->remove_ids(selector);
      return absl::OkStatus();
    });
  }
  std::vector<int64_t> doomed(labels, labels + n);
  std::sort(doomed.begin(), doomed.end());
  for (int64_t& label : labels_) {
    if (label != kRemoved && std::binary_search(doomed.begin(), doomed.end(), label)) {
      label = kRemoved;
      --live_;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<IndexHit>> FaissIndex::Search(const float* query, int64_t k) const {
  if (query == nullptr) return absl::InvalidArgumentError(absl::StrCat(name(), ": null query"));
  if (k < 0) return absl::InvalidArgumentError(absl::StrCat(name(), ": cannot search for ", k, " results"));
  if (hnsw_ != nullptr) return SearchHnsw(query, k);
  const int64_t fetch = std::min(k, static_cast<int64_t>(index_->ntotal));
  if (fetch == 0) return std::vector<IndexHit>();
  return Guard(absl::StatusCode::kInternal, absl::StrCat(name(), ": search"),
               [&]() -> absl::StatusOr<std::vector<IndexHit>> {
                 const OneOpenMpThread one_thread;
                 std::vector<float> scores(fetch);
                 std::vector<int64_t> ids(fetch);
                 index_->search(1, query, fetch, scores.data(), ids.data());
                 std::vector<IndexHit> hits;
                 hits.reserve(fetch);
                 for (int64_t i = 0; i < fetch; ++i) {
                   // Fewer than k vectors in the visited lists: faiss pads with -1.
                   if (ids[i] >= 0) hits.push_back({ids[i], scores[i]});
                 }
                 return hits;
               });
}

// Tombstones are filtered here rather than with SearchParameters::sel: faiss 1.7.3's HNSW does not walk
// through nodes the selector rejects, so with many of them removed the live ones beyond become unreachable
// (with 1% of 20k vectors selected it returned 7 of 10, none the true best, whatever efSearch). Here removed
// nodes still guide the walk, and the search asks for as many more results as the share of tombstones
// suggests, doubling until k live ones come back (the nearest may be exactly the removed ones: a deleted
// identity's own face).
absl::StatusOr<std::vector<IndexHit>> FaissIndex::SearchHnsw(const float* query, int64_t k) const {
  const int64_t want = std::min(k, live_);
  if (want == 0) return std::vector<IndexHit>();
  const int64_t total = static_cast<int64_t>(labels_.size());
  const bool any_removed = total > live_;
  int64_t fetch = any_removed ? std::min(total, (want * total + live_ - 1) / live_) : want;
  return Guard(absl::StatusCode::kInternal, absl::StrCat(name(), ": search"),
               [&]() -> absl::StatusOr<std::vector<IndexHit>> {
                 const OneOpenMpThread one_thread;
                 std::vector<float> scores;
                 std::vector<int64_t> ids;
                 std::vector<IndexHit> hits;
                 for (;;) {
                   // efSearch below the number of results asked for cuts the walk short in 1.7.3.
                   faiss::SearchParametersHNSW params;
                   params.efSearch = static_cast<int>(std::max<int64_t>(ef_search_, fetch));
                   scores.resize(fetch);
                   ids.resize(fetch);
                   hnsw_->search(1, query, fetch, scores.data(), ids.data(), &params);
                   hits.clear();
                   for (int64_t i = 0; i < fetch && static_cast<int64_t>(hits.size()) < want; ++i) {
                     if (ids[i] < 0 || ids[i] >= total || labels_[ids[i]] == kRemoved) continue;
                     hits.push_back({labels_[ids[i]], scores[i]});
                   }
                   if (static_cast<int64_t>(hits.size()) == want || !any_removed || fetch == total) return hits;
                   fetch = std::min(total, 2 * fetch);
                 }
               });
}

}  // namespace veriface
