#include "core/gallery/index_factory.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/gallery/faiss_index.h"
#include "core/gallery/ivf_int8_index.h"

namespace veriface {
namespace {

// Training an IVF index on more than this many vectors buys little: faiss itself samples 256 per list.
constexpr int64_t kMaxTrainingVectors = 500'000;
// IvfInt8Index's k-means is ours (no BLAS), so it trains on fewer: 64 per list is plenty for centroids
// that only route queries (the scores are the codes' and then fp32's).
constexpr int64_t kIvfTrainingPerList = 64;

std::vector<int64_t> LiveSlots(const SlotRows& rows) {
  std::vector<int64_t> live;
  for (int64_t s = 0; s < rows.slots(); ++s) {
    if (rows.owner[s] >= 0) live.push_back(s);
  }
  return live;
}

// At most `count` of the live rows, a fixed-seed sample, so that a restart over the same gallery trains
// the same index.
std::vector<float> TrainingSample(const SlotRows& rows, const std::vector<int64_t>& live, int64_t count) {
  std::vector<int64_t> sample = live;
  std::mt19937_64 rng(20261202);
  std::shuffle(sample.begin(), sample.end(), rng);
  sample.resize(std::min<size_t>(sample.size(), static_cast<size_t>(count)));
  std::vector<float> training;
  training.reserve(sample.size() * static_cast<size_t>(rows.dim));
  for (int64_t s : sample) training.insert(training.end(), rows.row(s), rows.row(s) + rows.dim);
  return training;
}

IvfInt8Options IvfOptions(const IndexOptions& options) {
  IvfInt8Options ivf;
  ivf.lists = options.ivf_lists;
  ivf.nprobe = options.ivf_nprobe;
  ivf.rerank_factor = options.rerank_factor;
  return ivf;
}

}  // namespace

absl::Status CheckIndexOptions(const IndexOptions& options, int64_t dim) {
  if (options.type != "exact" && options.type != "exact-int8" && options.type != "ivf-int8" &&
      options.type != "faiss") {
    return absl::InvalidArgumentError(
        absl::StrCat("gallery.index.type '", options.type, "' is not one of exact, exact-int8, ivf-int8, faiss"));
  }
  if (options.exact_below < 0) {
    return absl::InvalidArgumentError(absl::StrCat("gallery.index.exact_below ", options.exact_below, " < 0"));
  }
  if (options.rerank_factor < 1 || options.rerank_factor > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("gallery.index.rerank_factor ", options.rerank_factor, " is not in [1, 1000]"));
  }
  if (options.type == "ivf-int8") VF_RETURN_IF_ERROR(IvfInt8Index::CheckOptions(IvfOptions(options)));
  if (options.type == "faiss") VF_RETURN_IF_ERROR(CheckFaissOptions(options, dim));
  return absl::OkStatus();
}

bool WantsApproximate(const IndexOptions& options, int64_t live_templates) {
  return options.type != "exact" && live_templates >= options.exact_below;
}

absl::StatusOr<std::unique_ptr<GalleryIndex>> BuildIndex(const IndexOptions& options, const SlotRows* rows,
                                                         const std::string& gallery) {
  const std::vector<int64_t> live = LiveSlots(*rows);
  if (!WantsApproximate(options, static_cast<int64_t>(live.size()))) return std::make_unique<FlatIndex>(rows);
  std::unique_ptr<GalleryIndex> index;
  if (options.type == "exact-int8") {
    index = std::make_unique<Int8FlatIndex>(rows, options.rerank_factor);
  } else if (options.type == "ivf-int8") {
    const std::vector<float> training =
        TrainingSample(*rows, live, std::min(kMaxTrainingVectors, options.ivf_lists * kIvfTrainingPerList));
    VF_ASSIGN_OR_RETURN(index, IvfInt8Index::Create(rows, IvfOptions(options), training.data(),
                                                    static_cast<int64_t>(training.size()) / rows->dim));
  } else {
    VF_ASSIGN_OR_RETURN(const bool needs_training, FaissIndex::NeedsTraining(options, rows->dim));
    const std::vector<float> training =
        needs_training ? TrainingSample(*rows, live, kMaxTrainingVectors) : std::vector<float>();
    VF_ASSIGN_OR_RETURN(index, FaissIndex::Create(options, rows->dim, training.data(),
                                                  static_cast<int64_t>(training.size()) / rows->dim));
  }
  // Added in blocks, so that the copy of the vectors being added stays small.
  constexpr size_t kBlock = 65536;
  std::vector<float> block;
  for (size_t start = 0; start < live.size(); start += kBlock) {
    const size_t end = std::min(live.size(), start + kBlock);
    block.clear();
    for (size_t i = start; i < end; ++i) block.insert(block.end(), rows->row(live[i]), rows->row(live[i]) + rows->dim);
    VF_RETURN_IF_ERROR(index->Add(block.data(), live.data() + start, static_cast<int64_t>(end - start)));
    // About every tenth of the way, and at the end.
    if (options.on_build_progress && (end == live.size() || end * 10 / live.size() != start * 10 / live.size())) {
      options.on_build_progress(gallery, static_cast<int64_t>(end), static_cast<int64_t>(live.size()));
    }
  }
  return index;
}

}  // namespace veriface
