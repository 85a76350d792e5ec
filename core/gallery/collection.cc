#include "core/gallery/collection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <shared_mutex>
#include <unordered_set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/gallery/dot_kernel.h"
#include "core/gallery/index_factory.h"
#include "core/gallery/validation.h"

namespace veriface {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr char kPageTokenPrefix[] = "vf-gallery-page-1:";

}  // namespace

Collection::Collection(GalleryRecord record, std::string model_id, int64_t embedding_dim, GalleryLimits limits,
                       IndexOptions index)
    : record_(std::move(record)),
      model_id_(std::move(model_id)),
      embedding_dim_(embedding_dim),
      limits_(limits),
      index_options_(std::move(index)) {
  rows_.dim = embedding_dim;
  index_ = std::make_unique<FlatIndex>(&rows_);
}

absl::Status Collection::NotFound(const std::string& identity_id) const {
  return absl::NotFoundError(absl::StrCat("no identity ", Quote(identity_id), " in gallery ", Quote(record_.name)));
}

int64_t Collection::max_templates() const {
  return record_.max_templates > 0 ? std::min(record_.max_templates, limits_.max_templates) : limits_.max_templates;
}

absl::Status Collection::Put(IdentityState state) {
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  absl::Status index_status = absl::OkStatus();
  auto existing = identity_index_.find(state.record.identity_id);
  if (existing != identity_index_.end()) index_status.Update(RemoveAt(existing->second));
  const int32_t index = static_cast<int32_t>(identities_.size());
  IdentityInfo info{std::move(state.record), {}, record_.name};
  identity_index_.emplace(info.record.identity_id, index);
  identities_.push_back(std::move(info));
  const size_t dim = static_cast<size_t>(embedding_dim_);
  std::vector<int64_t> added;
  added.reserve(state.templates.size());
  for (TemplateRecord& t : state.templates) {
    int64_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = rows_.slots();
      rows_.owner.push_back(-1);
      rows_.values.resize(rows_.values.size() + dim);
      slot_template_.emplace_back();
    }
    std::copy(t.embedding.begin(), t.embedding.end(), rows_.values.begin() + slot * embedding_dim_);
    rows_.owner[slot] = index;
    template_slot_.emplace(t.template_id, slot);
    slot_template_[slot] = t.template_id;
    identities_[index].template_ids.push_back(std::move(t.template_id));
    if (!t.has_face_crop) ++identities_[index].templates_without_face_crop;
    added.push_back(slot);
  }
  live_templates_ += static_cast<int64_t>(added.size());
  if (loading_) return index_status;  // Load builds the index once, at the end
  const bool crossed = index_->exact() && WantsApproximate(index_options_, live_templates_);
  if (crossed && (rebuild_failed_at_ < 0 || live_templates_ >= 2 * rebuild_failed_at_)) {
    // The gallery just grew past gallery.index.exact_below: build the configured index, once (or again
    // only after it has doubled, if building failed).
    const absl::Status built = RebuildIndexLocked();
    rebuild_failed_at_ = built.ok() ? -1 : live_templates_;
    index_status.Update(built);
    return index_status;
  }
  std::vector<float> vectors;
  vectors.reserve(added.size() * dim);
  for (int64_t slot : added) vectors.insert(vectors.end(), rows_.row(slot), rows_.row(slot) + dim);
  const absl::Status indexed = index_->Add(vectors.data(), added.data(), static_cast<int64_t>(added.size()));
  // An index that failed to take the templates would miss them: rebuild it from the rows (falling back to
  // the exact scan if that fails too), so that every committed template stays findable.
  if (!indexed.ok()) index_status.Update(RebuildIndexLocked());
  return index_status;
}

absl::Status Collection::Load(std::vector<IdentityState> states) {
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  loading_ = true;
  lock.unlock();
  for (IdentityState& state : states) (void)Put(std::move(state));  // the index is built below
  lock.lock();
  loading_ = false;
  return RebuildIndexLocked();
}

absl::Status Collection::Remove(const std::string& identity_id) {
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  auto it = identity_index_.find(identity_id);
  if (it == identity_index_.end()) return absl::OkStatus();
  return RemoveAt(it->second);
}

absl::Status Collection::RemoveAt(int32_t identity) {
  const size_t dim = static_cast<size_t>(embedding_dim_);
  std::vector<int64_t> freed;
  for (const std::string& id : identities_[identity].template_ids) {
    const int64_t slot = template_slot_.at(id);
    template_slot_.erase(id);
    slot_template_[slot].clear();
    rows_.owner[slot] = -1;
    std::fill_n(rows_.values.begin() + slot * embedding_dim_, dim, 0.0F);
    free_slots_.push_back(slot);
    freed.push_back(slot);
  }
  live_templates_ -= static_cast<int64_t>(freed.size());
  // The index forgets them before the lock is released, so no search can return a freed slot; an index
  // that cannot is replaced by one rebuilt from the rows.
  absl::Status index_status = index_->Remove(freed.data(), static_cast<int64_t>(freed.size()));
  if (!index_status.ok()) index_status = RebuildIndexLocked();
  // Keep identities_ dense: the last identity takes the freed place.
  const int32_t last = static_cast<int32_t>(identities_.size()) - 1;
  identity_index_.erase(identities_[identity].record.identity_id);
  if (identity != last) {
    identities_[identity] = std::move(identities_[last]);
    identity_index_[identities_[identity].record.identity_id] = identity;
    for (const std::string& id : identities_[identity].template_ids) rows_.owner[template_slot_.at(id)] = identity;
  }
  identities_.pop_back();
  return index_status;
}

absl::Status Collection::RebuildIndex() {
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  return RebuildIndexLocked();
}

absl::Status Collection::RebuildIndexLocked() {
  auto built = BuildIndex(index_options_, &rows_, record_.name);
  if (!built.ok()) {
    // The exact scan always works: keep serving with it and say why the configured index is missing.
    index_ = std::make_unique<FlatIndex>(&rows_);
    return absl::Status(built.status().code(),
                        absl::StrCat("gallery ", Quote(record_.name),
                                     ": cannot build its index, searching exactly: ", built.status().message()));
  }
  index_ = *std::move(built);
  return absl::OkStatus();
}

SearchInfo Collection::index_info() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return SearchInfo{index_->name(), index_->exact()};
}

int64_t Collection::index_memory_bytes() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return index_->memory_bytes();
}

bool Collection::HasTemplate(const std::string& template_id) const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return template_slot_.count(template_id) != 0;
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
    const float* row = rows_.row(template_slot_.at(id));
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
                                                                float min_similarity, SearchInfo* info) const {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("top-k must be at least 1, got ", k));
  if (std::isnan(min_similarity)) return absl::InvalidArgumentError("min_similarity is NaN");
  k = std::min(k, limits_.max_k);
  VF_ASSIGN_OR_RETURN(std::vector<float> q,
                      NormalizedEmbedding(query, embedding_dim_, limits_.norm_tolerance, "query embedding", model_id_));
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  if (info != nullptr) *info = SearchInfo{index_->name(), index_->exact()};
  // The index ranks templates; an identity counts once, by its best. Ask for more templates than k
  // identities need, and for more again while some identities are missing, the templates are above the
  // floor and there are templates left: for an exact index that makes the identities exactly the top k.
  // An approximate one is asked rerank_factor times more, once, and grown at most a few times.
  // The first ask allows for each identity's share of templates, so that one pass usually suffices.
  const int64_t live = live_templates_;
  const int64_t per_identity = identities_.empty() ? 1 : (live + identities_.size() - 1) / identities_.size();
  int64_t want = std::min<int64_t>(
      live, static_cast<int64_t>(k) * std::max<int64_t>(index_options_.rerank_factor, 2 * per_identity + 2));
  std::vector<int32_t> candidates;  // identities, in the order the index found them
  for (int round = 0; live > 0; ++round) {
    VF_ASSIGN_OR_RETURN(const std::vector<IndexHit> hits, index_->Search(q.data(), want));
    candidates.clear();
    // A set the size of the hits, not of the gallery: with millions of identities a per-query bitmap
    // would cost more than an approximate search.
    std::unordered_set<int32_t> seen;
    seen.reserve(hits.size());
    for (const IndexHit& hit : hits) {
      if (hit.label < 0 || hit.label >= rows_.slots()) continue;
      const int32_t owner = rows_.owner[hit.label];
      if (owner < 0 || !seen.insert(owner).second) continue;
      candidates.push_back(owner);
    }
    const bool enough = static_cast<int>(candidates.size()) >= k;
    const bool below_floor = !hits.empty() && hits.back().score < min_similarity;
    const bool all = static_cast<int64_t>(hits.size()) >= live || want >= live;
    if (enough || below_floor || all || (!index_->exact() && round >= 3)) break;
    want = std::min(live, want * 4);
  }
  // Every candidate scored exactly, over all its templates in fp32: the similarities never depend on
  // which index found them.
  std::vector<IdentityMatch> matches;
  matches.reserve(candidates.size());
  for (int32_t identity : candidates) {
    IdentityMatch m = BestTemplate(identity, q.data());
    if (m.similarity >= min_similarity) matches.push_back(std::move(m));
  }
  std::sort(matches.begin(), matches.end(), [](const IdentityMatch& a, const IdentityMatch& b) {
    return a.similarity != b.similarity ? a.similarity > b.similarity : a.identity_id < b.identity_id;
  });
  if (static_cast<int>(matches.size()) > k) matches.resize(static_cast<size_t>(k));
  return matches;
}

IdentityMatch Collection::BestTemplate(int32_t identity, const float* query) const {
  const IdentityInfo& info = identities_[identity];
  IdentityMatch match{info.record.identity_id, "", -std::numeric_limits<float>::infinity()};
  for (const std::string& id : info.template_ids) {
    float score = 0;
    DotRows(rows_.row(template_slot_.at(id)), 1, embedding_dim_, query, &score);
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

TemplateSample Collection::SampleTemplates(int64_t max_templates, uint64_t seed) const {
  TemplateSample sample;
  sample.dim = embedding_dim_;
  std::mt19937_64 rng(seed);
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  sample.identities_in_gallery = static_cast<int64_t>(identities_.size());
  sample.templates_in_gallery = live_templates_;
  const int64_t expected = std::max<int64_t>(0, std::min(max_templates, live_templates_));
  sample.rows.reserve(static_cast<size_t>(expected * embedding_dim_));
  sample.identity.reserve(static_cast<size_t>(expected));
  // A Fisher-Yates shuffle stopped early: each step draws uniformly among the identities not yet taken.
  std::vector<int32_t> order(identities_.size());
  std::iota(order.begin(), order.end(), 0);
  int64_t taken_templates = 0;
  for (size_t i = 0; i < order.size() && taken_templates < max_templates; ++i) {
    std::uniform_int_distribution<size_t> pick(i, order.size() - 1);
    std::swap(order[i], order[pick(rng)]);
    const IdentityInfo& info = identities_[order[i]];
    const int64_t templates = static_cast<int64_t>(info.template_ids.size());
    if (taken_templates + templates > max_templates) continue;  // too large for what is left: try the others
    taken_templates += templates;
    const int32_t dense = static_cast<int32_t>(sample.identity_ids.size());
    sample.identity_ids.push_back(info.record.identity_id);
    for (const std::string& id : info.template_ids) {
      const float* row = rows_.row(template_slot_.at(id));
      sample.rows.insert(sample.rows.end(), row, row + embedding_dim_);
      sample.identity.push_back(dense);
    }
  }
  return sample;
}

int64_t Collection::identity_count() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return static_cast<int64_t>(identities_.size());
}

int64_t Collection::template_count() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return live_templates_;
}

}  // namespace veriface
