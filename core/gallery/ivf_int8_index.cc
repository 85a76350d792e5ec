#include "core/gallery/ivf_int8_index.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/gallery/dot_kernel.h"
#include "core/gallery/int8_codes.h"
#include "core/gallery/top_keeper.h"

namespace veriface {
namespace {

// Codes scored per kernel call: the sums of one block stay in L1 while the top-k update reads them.
constexpr int64_t kBlockRows = 512;
// Below this many vectors an assignment runs on the calling thread: one enrolment must not wake a team.
constexpr int64_t kParallelAssignAt = 1024;

// The nearest of `lists` unit centroids to each of the n vectors (inner product), on OpenMP threads
// when there are many.
std::vector<int32_t> Assign(const float* centroids, int64_t lists, int64_t dim, const float* vectors, int64_t n) {
  std::vector<int32_t> nearest(static_cast<size_t>(n));
#pragma omp parallel if (n >= kParallelAssignAt)
  {
    std::vector<float> scores(static_cast<size_t>(lists));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      DotRows(centroids, lists, dim, vectors + i * dim, scores.data());
      nearest[static_cast<size_t>(i)] =
          static_cast<int32_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
    }
  }
  return nearest;
}

// Spherical k-means (centroids renormalised after each update, as the vectors are compared by inner
// product), started from distinct training vectors chosen by `seed`. A list left empty takes a training
// vector at random, so that every list can be probed usefully.
std::vector<float> TrainCentroids(const float* training, int64_t n, int64_t dim, int64_t lists, int iterations,
                                  uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<float> centroids(static_cast<size_t>(lists * dim));
  for (int64_t c = 0; c < lists; ++c) {
    std::copy_n(training + order[static_cast<size_t>(c)] * dim, dim, centroids.begin() + c * dim);
  }
  std::uniform_int_distribution<int64_t> any(0, n - 1);
  for (int it = 0; it < iterations; ++it) {
    const std::vector<int32_t> nearest = Assign(centroids.data(), lists, dim, training, n);
    std::vector<double> sums(static_cast<size_t>(lists * dim), 0.0);
    std::vector<int64_t> counts(static_cast<size_t>(lists), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = nearest[static_cast<size_t>(i)];
      ++counts[static_cast<size_t>(c)];
      for (int64_t j = 0; j < dim; ++j) sums[static_cast<size_t>(c * dim + j)] += training[i * dim + j];
    }
    for (int64_t c = 0; c < lists; ++c) {
      float* centroid = centroids.data() + c * dim;
      double norm = 0;
      for (int64_t j = 0; j < dim; ++j)
        norm += sums[static_cast<size_t>(c * dim + j)] * sums[static_cast<size_t>(c * dim + j)];
      if (counts[static_cast<size_t>(c)] == 0 || norm == 0) {
        std::copy_n(training + any(rng) * dim, dim, centroid);
        continue;
      }
      const double inv = 1.0 / std::sqrt(norm);
      for (int64_t j = 0; j < dim; ++j) centroid[j] = static_cast<float>(sums[static_cast<size_t>(c * dim + j)] * inv);
    }
  }
  return centroids;
}

}  // namespace

absl::Status IvfInt8Index::CheckOptions(const IvfInt8Options& options) {
  if (options.lists < 1 || options.lists > kMaxLists) {
    return absl::InvalidArgumentError(
        absl::StrCat("gallery.index.ivf_lists ", options.lists, " is not in [1, ", kMaxLists, "]"));
  }
  if (options.nprobe < 1 || options.nprobe > options.lists) {
    return absl::InvalidArgumentError(absl::StrCat("gallery.index.ivf_nprobe ", options.nprobe,
                                                   " is not in [1, gallery.index.ivf_lists = ", options.lists, "]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<IvfInt8Index>> IvfInt8Index::Create(const SlotRows* rows, const IvfInt8Options& options,
                                                                   const float* training, int64_t n_training) {
  VF_RETURN_IF_ERROR(CheckOptions(options));
  if (options.rerank_factor < 1) {
    return absl::InvalidArgumentError(absl::StrCat("gallery.index.rerank_factor ", options.rerank_factor, " < 1"));
  }
  if (options.kmeans_iterations < 0) {
    return absl::InvalidArgumentError(absl::StrCat("k-means iterations ", options.kmeans_iterations, " < 0"));
  }
  if (n_training < options.lists || training == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "an IVF index of ", options.lists, " lists needs at least as many training vectors, got ", n_training));
  }
  std::vector<float> centroids =
      TrainCentroids(training, n_training, rows->dim, options.lists, options.kmeans_iterations, options.seed);
  return std::unique_ptr<IvfInt8Index>(new IvfInt8Index(rows, options, std::move(centroids)));
}

IvfInt8Index::IvfInt8Index(const SlotRows* rows, const IvfInt8Options& options, std::vector<float> centroids)
    : rows_(rows),
      dim_(rows->dim),
      rerank_factor_(options.rerank_factor),
      nprobe_(options.nprobe),
      centroids_(std::move(centroids)),
      lists_(static_cast<size_t>(options.lists)) {}

std::string IvfInt8Index::name() const { return absl::StrCat("ivf", lists_.size(), "-int8"); }

int64_t IvfInt8Index::memory_bytes() const {
  size_t bytes = centroids_.capacity() * sizeof(float) + list_of_.capacity() * sizeof(int32_t) +
                 position_of_.capacity() * sizeof(int32_t) + lists_.capacity() * sizeof(List);
  for (const List& list : lists_) {
    bytes += list.codes.capacity() + list.scales.capacity() * sizeof(float) + list.labels.capacity() * sizeof(int32_t);
  }
  return static_cast<int64_t>(bytes);
}

double IvfInt8Index::imbalance() const {
  if (live_ == 0) return 1;
  size_t longest = 0;
  for (const List& list : lists_) longest = std::max(longest, list.labels.size());
  return static_cast<double>(longest) * static_cast<double>(lists_.size()) / static_cast<double>(live_);
}

absl::Status IvfInt8Index::set_nprobe(int nprobe) {
  if (nprobe < 1 || nprobe > static_cast<int64_t>(lists_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("nprobe ", nprobe, " is not in [1, ", lists_.size(), "]"));
  }
  nprobe_ = nprobe;
  return absl::OkStatus();
}

void IvfInt8Index::Reserve(List& list, size_t more) const {
  const size_t need = list.labels.size() + more;
  if (need <= list.labels.capacity()) return;
  const size_t grown = std::max(need, list.labels.capacity() + list.labels.capacity() / 4);
  list.codes.reserve(grown * static_cast<size_t>(dim_));
  list.scales.reserve(grown);
  list.labels.reserve(grown);
}

absl::Status IvfInt8Index::Add(const float* vectors, const int64_t* labels, int64_t n) {
  if (n < 0 || (n > 0 && (vectors == nullptr || labels == nullptr))) {
    return absl::InvalidArgumentError("Add needs n >= 0 vectors and labels");
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = labels[i];
    if (label < 0 || label > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat("label ", label, " is not a slot number"));
    }
    if (static_cast<size_t>(label) < list_of_.size() && list_of_[static_cast<size_t>(label)] >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("label ", label, " is already in the index"));
    }
  }
  const std::vector<int32_t> nearest = Assign(centroids_.data(), static_cast<int64_t>(lists_.size()), dim_, vectors, n);
  std::vector<size_t> more(lists_.size(), 0);
  for (int32_t l : nearest) ++more[static_cast<size_t>(l)];
  for (size_t l = 0; l < lists_.size(); ++l) {
    if (more[l] > 0) Reserve(lists_[l], more[l]);
  }
  for (int64_t i = 0; i < n; ++i) {
    const size_t label = static_cast<size_t>(labels[i]);
    if (label >= list_of_.size()) {
      list_of_.resize(label + 1, -1);
      position_of_.resize(label + 1, -1);
    }
    List& list = lists_[static_cast<size_t>(nearest[static_cast<size_t>(i)])];
    const size_t at = list.labels.size();
    list.codes.resize((at + 1) * static_cast<size_t>(dim_));
    list.scales.push_back(EncodeInt8(vectors + i * dim_, dim_, list.codes.data() + at * static_cast<size_t>(dim_)));
    list.labels.push_back(static_cast<int32_t>(labels[i]));
    list_of_[label] = nearest[static_cast<size_t>(i)];
    position_of_[label] = static_cast<int32_t>(at);
    ++live_;
  }
  return absl::OkStatus();
}

absl::Status IvfInt8Index::Remove(const int64_t* labels, int64_t n) {
  if (n < 0 || (n > 0 && labels == nullptr)) return absl::InvalidArgumentError("Remove needs n >= 0 labels");
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = labels[i];
    if (label < 0 || static_cast<size_t>(label) >= list_of_.size() || list_of_[static_cast<size_t>(label)] < 0)
      continue;
    List& list = lists_[static_cast<size_t>(list_of_[static_cast<size_t>(label)])];
    const size_t at = static_cast<size_t>(position_of_[static_cast<size_t>(label)]);
    const size_t last = list.labels.size() - 1;
    if (at != last) {
      // The list's last entry takes the removed one's place, so the list stays contiguous.
      std::copy_n(list.codes.begin() + static_cast<std::ptrdiff_t>(last * static_cast<size_t>(dim_)), dim_,
                  list.codes.begin() + static_cast<std::ptrdiff_t>(at * static_cast<size_t>(dim_)));
      list.scales[at] = list.scales[last];
      list.labels[at] = list.labels[last];
      position_of_[static_cast<size_t>(list.labels[at])] = static_cast<int32_t>(at);
    }
    list.codes.resize(last * static_cast<size_t>(dim_));
    list.scales.pop_back();
    list.labels.pop_back();
    list_of_[static_cast<size_t>(label)] = -1;
    position_of_[static_cast<size_t>(label)] = -1;
    --live_;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<IndexHit>> IvfInt8Index::Search(const float* query, int64_t k) const {
  if (query == nullptr) return absl::InvalidArgumentError("Search needs a query");
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("k must be at least 1, got ", k));
  const int64_t lists = static_cast<int64_t>(lists_.size());
  std::vector<float> closeness(static_cast<size_t>(lists));
  DotRows(centroids_.data(), lists, dim_, query, closeness.data());
  std::vector<int32_t> probe(static_cast<size_t>(lists));
  std::iota(probe.begin(), probe.end(), 0);
  const int64_t nprobe = std::min<int64_t>(nprobe_, lists);
  std::nth_element(probe.begin(), probe.begin() + (nprobe - 1), probe.end(), [&](int32_t a, int32_t b) {
    return closeness[static_cast<size_t>(a)] != closeness[static_cast<size_t>(b)]
               ? closeness[static_cast<size_t>(a)] > closeness[static_cast<size_t>(b)]
               : a < b;
  });
  probe.resize(static_cast<size_t>(nprobe));

  std::vector<int8_t> q(static_cast<size_t>(dim_));
  const float q_scale = EncodeInt8(query, dim_, q.data());
  TopKeeper candidates(k * rerank_factor_);
  int32_t sums[kBlockRows];
  for (const int32_t l : probe) {
    const List& list = lists_[static_cast<size_t>(l)];
    const int64_t size = static_cast<int64_t>(list.labels.size());
    for (int64_t start = 0; start < size; start += kBlockRows) {
      const int64_t count = std::min(kBlockRows, size - start);
      DotRowsInt8(list.codes.data() + start * dim_, count, dim_, q.data(), sums);
      for (int64_t i = 0; i < count; ++i) {
        candidates.Offer(list.labels[static_cast<size_t>(start + i)],
                         static_cast<float>(sums[i]) * list.scales[static_cast<size_t>(start + i)] * q_scale);
      }
    }
  }
  return RescoreInFp32(*rows_, query, candidates.Take(), k);
}

}  // namespace veriface
