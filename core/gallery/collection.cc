#include "core/gallery/collection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/gallery/dot_kernel.h"
#include "core/gallery/validation.h"

namespace veriface {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr char kPageTokenPrefix[] = "vf-gallery-page-1:";
// Rows scored per call of the kernel: the scores of one block stay in L1 while the best-per-identity
// update reads them back.
constexpr int64_t kBlockRows = 512;

}  // namespace

Collection::Collection(GalleryRecord record, std::string model_id, int64_t embedding_dim, GalleryLimits limits)
    : record_(std::move(record)), model_id_(std::move(model_id)), embedding_dim_(embedding_dim), limits_(limits) {}

absl::Status Collection::NotFound(const std::string& identity_id) const {
  return absl::NotFoundError(absl::StrCat("no identity ", Quote(identity_id), " in gallery ", Quote(record_.name)));
}

int64_t Collection::max_templates() const {
  return record_.max_templates > 0 ? std::min(record_.max_templates, limits_.max_templates) : limits_.max_templates;
}

void Collection::Put(IdentityState state) {
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  auto existing = identity_index_.find(state.record.identity_id);
  if (existing != identity_index_.end()) RemoveAt(existing->second);
  const int32_t index = static_cast<int32_t>(identities_.size());
  IdentityInfo info{std::move(state.record), {}, record_.name};
  identity_index_.emplace(info.record.identity_id, index);
  identities_.push_back(std::move(info));
  for (TemplateRecord& t : state.templates) {
    template_row_.emplace(t.template_id, static_cast<int64_t>(row_template_.size()));
    matrix_.insert(matrix_.end(), t.embedding.begin(), t.embedding.end());
    row_template_.push_back(t.template_id);
    row_identity_.push_back(index);
    identities_[index].template_ids.push_back(std::move(t.template_id));
  }
}

void Collection::Remove(const std::string& identity_id) {
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  auto it = identity_index_.find(identity_id);
  if (it != identity_index_.end()) RemoveAt(it->second);
}

void Collection::RemoveAt(int32_t identity) {
  const size_t dim = static_cast<size_t>(embedding_dim_);
  // Fill each freed row with the current last row. Going from the highest freed row down guarantees
  // that the last row is never a freed row still waiting to be removed.
  std::vector<int64_t> rows;
  for (const std::string& id : identities_[identity].template_ids) rows.push_back(template_row_.at(id));
  std::sort(rows.rbegin(), rows.rend());
  for (int64_t row : rows) {
    const int64_t last = static_cast<int64_t>(row_template_.size()) - 1;
    template_row_.erase(row_template_[row]);
    if (row != last) {
      std::copy_n(matrix_.begin() + last * dim, dim, matrix_.begin() + row * dim);
      row_template_[row] = std::move(row_template_[last]);
      row_identity_[row] = row_identity_[last];
      template_row_[row_template_[row]] = row;
    }
    row_template_.pop_back();
    row_identity_.pop_back();
    matrix_.resize(matrix_.size() - dim);
  }
  // Keep identities_ dense: the last identity takes the freed slot.
  const int32_t last = static_cast<int32_t>(identities_.size()) - 1;
  identity_index_.erase(identities_[identity].record.identity_id);
  if (identity != last) {
    identities_[identity] = std::move(identities_[last]);
    identity_index_[identities_[identity].record.identity_id] = identity;
    for (const std::string& id : identities_[identity].template_ids) row_identity_[template_row_.at(id)] = identity;
  }
  identities_.pop_back();
  // Give memory back after large deletions, without reallocating on every small one.
  if (matrix_.capacity() > 2 * matrix_.size() + (1 << 20)) matrix_.shrink_to_fit();
}

bool Collection::HasTemplate(const std::string& template_id) const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return template_row_.count(template_id) != 0;
}

absl::StatusOr<IdentityInfo> Collection::Get(const std::string& identity_id) const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  auto it = identity_index_.find(identity_id);
  if (it == identity_index_.end()) return NotFound(identity_id);
  return identities_[it->second];
}

absl::StatusOr<IdentityState> Collection::State(const std::string& identity_id) const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  auto it = identity_index_.find(identity_id);
  if (it == identity_index_.end()) return NotFound(identity_id);
  const IdentityInfo& info = identities_[it->second];
  IdentityState state{info.record, {}};
  for (const std::string& id : info.template_ids) {
    const float* row = matrix_.data() + template_row_.at(id) * embedding_dim_;
    TemplateRecord t;
    t.template_id = id;
    t.identity_id = identity_id;
    t.model_id = model_id_;
    t.embedding.assign(row, row + embedding_dim_);
    state.templates.push_back(std::move(t));
  }
  return state;
}

absl::StatusOr<IdentityPage> Collection::List(int page_size, const std::string& page_token) const {
  if (page_size <= 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, limits_.max_page_size);
  std::string after;
  bool has_after = false;
  if (!page_token.empty()) {
    std::string decoded;
    if (!absl::WebSafeBase64Unescape(page_token, &decoded) || decoded.rfind(kPageTokenPrefix, 0) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("page token ", Quote(page_token), " was not issued by this gallery's List"));
    }
    after = decoded.substr(sizeof(kPageTokenPrefix) - 1);
    has_after = true;
  }
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  // The token names the last identity returned, not a position, so enrolments and deletions between
  // pages neither repeat nor skip the identities that stay.
  auto it = has_after ? identity_index_.upper_bound(after) : identity_index_.begin();
  IdentityPage page;
  for (; it != identity_index_.end() && static_cast<int>(page.identities.size()) < page_size; ++it) {
    page.identities.push_back(identities_[it->second]);
  }
  if (it != identity_index_.end()) {
    page.next_page_token =
        absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, page.identities.back().record.identity_id));
  }
  return page;
}

absl::StatusOr<std::vector<IdentityMatch>> Collection::Identify(const std::vector<float>& query, int k,
                                                                float min_similarity) const {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("top-k must be at least 1, got ", k));
  if (std::isnan(min_similarity)) return absl::InvalidArgumentError("min_similarity is NaN");
  k = std::min(k, limits_.max_k);
  VF_ASSIGN_OR_RETURN(std::vector<float> q,
                      NormalizedEmbedding(query, embedding_dim_, limits_.norm_tolerance, "query embedding", model_id_));

  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  const int64_t rows = static_cast<int64_t>(row_template_.size());
  const int64_t dim = embedding_dim_;
  // Pass 1, the only one that touches the whole matrix: each identity's best similarity. Which
  // template gave it is found again afterwards for the k winners only, so the scan writes 4 bytes per
  // identity rather than 12.
  std::vector<float> best(identities_.size(), -std::numeric_limits<float>::infinity());
  float scores[kBlockRows];
  for (int64_t start = 0; start < rows; start += kBlockRows) {
    const int64_t count = std::min(kBlockRows, rows - start);
    DotRows(matrix_.data() + start * dim, count, dim, q.data(), scores);
    const int32_t* owner = row_identity_.data() + start;
    for (int64_t i = 0; i < count; ++i) best[owner[i]] = std::max(best[owner[i]], scores[i]);
  }

  // Pass 2: exact top-k with a bounded heap whose top is the worst kept; most identities are rejected
  // by one comparison with it.
  const auto better = [&](int32_t a, int32_t b) {
    if (best[a] != best[b]) return best[a] > best[b];
    return identities_[a].record.identity_id < identities_[b].record.identity_id;
  };
  std::vector<int32_t> heap;
  heap.reserve(k + 1);
  for (int32_t i = 0; i < static_cast<int32_t>(best.size()); ++i) {
    if (!(best[i] >= min_similarity)) continue;
    if (static_cast<int>(heap.size()) < k) {
      heap.push_back(i);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(i, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = i;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better);
  std::vector<IdentityMatch> matches;
  matches.reserve(heap.size());
  for (int32_t identity : heap) matches.push_back(BestTemplate(identity, q.data()));
  return matches;
}

IdentityMatch Collection::BestTemplate(int32_t identity, const float* query) const {
  const IdentityInfo& info = identities_[identity];
  IdentityMatch match{info.record.identity_id, "", -std::numeric_limits<float>::infinity()};
  for (const std::string& id : info.template_ids) {
    const int64_t row = template_row_.at(id);
    float score = 0;
    DotRows(matrix_.data() + row * embedding_dim_, 1, embedding_dim_, query, &score);
    if (score > match.similarity) {
      match.similarity = score;
      match.best_template_id = id;
    }
  }
  return match;
}

absl::StatusOr<IdentityMatch> Collection::Compare(const std::vector<float>& query,
                                                  const std::string& identity_id) const {
  VF_ASSIGN_OR_RETURN(std::vector<float> q,
                      NormalizedEmbedding(query, embedding_dim_, limits_.norm_tolerance, "query embedding", model_id_));
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  auto it = identity_index_.find(identity_id);
  if (it == identity_index_.end()) return NotFound(identity_id);
  return BestTemplate(it->second, q.data());
}

absl::StatusOr<IdentityPairMatch> Collection::CompareIdentities(const std::string& identity_a, const Collection& other,
                                                                const std::string& identity_b) const {
  // Side a's rows are copied out first, so that at most one collection's lock is held at a time: holding
  // two read locks of writer-preferring mutexes in varying order can deadlock against waiting writers.
  VF_ASSIGN_OR_RETURN(const IdentityState a, State(identity_a));
  std::shared_lock<WriterPreferringMutex> lock(other.mutex_);
  const auto b = other.identity_index_.find(identity_b);
  if (b == other.identity_index_.end()) return other.NotFound(identity_b);
  // Every template of `a` against all of `b`'s: BestTemplate is one row per template of b, so this is
  // |a| x |b| dot products, at most max_templates_per_identity squared.
  IdentityPairMatch best{"", "", -std::numeric_limits<float>::infinity()};
  for (const TemplateRecord& t : a.templates) {
    const IdentityMatch m = other.BestTemplate(b->second, t.embedding.data());
    if (m.similarity > best.similarity) best = IdentityPairMatch{t.template_id, m.best_template_id, m.similarity};
  }
  if (best.template_a.empty() || best.template_b.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "identity ", Quote(best.template_a.empty() ? identity_a : identity_b), " has no templates to compare"));
  }
  return best;
}

int64_t Collection::identity_count() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return static_cast<int64_t>(identities_.size());
}

int64_t Collection::template_count() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return static_cast<int64_t>(row_template_.size());
}

}  // namespace veriface
