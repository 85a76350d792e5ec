#include "core/gallery/gallery.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/gallery/dot_kernel.h"

namespace veriface {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr char kPageTokenPrefix[] = "vf-gallery-page-1:";
// Rows scored per call of the kernel: the scores of one block stay in L1 while the best-per-identity
// update reads them back.
constexpr int64_t kBlockRows = 512;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Printable form of a user-supplied string for error messages (bounded, control bytes escaped).
std::string Quote(const std::string& s) {
  constexpr size_t kMax = 64;
  std::string shown = absl::CHexEscape(s.size() > kMax ? s.substr(0, kMax) : s);
  return absl::StrCat("\"", shown, s.size() > kMax ? "...\"" : "\"");
}

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are rejected).
size_t Utf8SequenceLength(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Checks that `s` is valid UTF-8 without control characters (tab and newline allowed when
// `allow_whitespace_controls`).
absl::Status ValidateText(const std::string& what, const std::string& s, bool allow_whitespace_controls) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      if (!(allow_whitespace_controls && (c == '\t' || c == '\n' || c == '\r'))) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s %s contains control character 0x%02x at byte %d", what, Quote(s), c, i));
      }
    }
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrFormat("%s %s is not valid UTF-8 at byte %d", what, Quote(s), i));
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status ValidateId(const std::string& what, const std::string& id, int64_t max_length) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (static_cast<int64_t>(id.size()) > max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(id), " is ", id.size(), " bytes long; the limit is ", max_length));
  }
  return ValidateText(what, id, /*allow_whitespace_controls=*/false);
}

int64_t MetadataBytes(const std::map<std::string, std::string>& metadata) {
  int64_t bytes = 0;
  for (const auto& [key, value] : metadata) bytes += static_cast<int64_t>(key.size() + value.size());
  return bytes;
}

}  // namespace

Gallery::Gallery(std::unique_ptr<GalleryStore> store, std::string model_id, int64_t embedding_dim, GalleryLimits limits)
    : store_(std::move(store)), model_id_(std::move(model_id)), embedding_dim_(embedding_dim), limits_(limits) {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
  id_rng_.seed(seed);
}

absl::StatusOr<std::unique_ptr<Gallery>> Gallery::Open(std::unique_ptr<GalleryStore> store, std::string model_id,
                                                       int64_t embedding_dim, GalleryLimits limits) {
  if (store == nullptr) return absl::InvalidArgumentError("gallery store is null");
  if (model_id.empty()) return absl::InvalidArgumentError("model id must not be empty");
  if (embedding_dim <= 0 || embedding_dim > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("embedding_dim ", embedding_dim, " is not in [1, 65536]"));
  }
  if (limits.max_templates < 0 || limits.max_templates_per_identity < 1 || limits.max_id_length < 1 ||
      limits.max_metadata_entries < 0 || limits.max_metadata_bytes < 0 || limits.max_page_size < 1 ||
      limits.max_k < 1 || !(limits.norm_tolerance >= 0)) {
    return absl::InvalidArgumentError(
        "gallery limits must be positive (max_templates_per_identity, max_id_length, "
        "max_page_size, max_k >= 1; the others >= 0)");
  }
  VF_ASSIGN_OR_RETURN(GallerySnapshot snapshot, store->Load());
  if (!snapshot.model_id.empty() && !snapshot.templates.empty() &&
      (snapshot.model_id != model_id || snapshot.embedding_dim != embedding_dim)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the gallery was built with model '", snapshot.model_id, "' (", snapshot.embedding_dim,
        "-D embeddings) and cannot be used with model '", model_id, "' (", embedding_dim, "-D): its ",
        snapshot.templates.size(), " templates are not comparable; re-embed the gallery or use another gallery file"));
  }
  for (const TemplateRecord& t : snapshot.templates) {
    if (t.model_id != model_id) {
      return absl::FailedPreconditionError(absl::StrCat("gallery template '", t.template_id, "' of identity '",
                                                        t.identity_id, "' was made with model '", t.model_id,
                                                        "', not the serving model '", model_id, "'"));
    }
  }
  VF_RETURN_IF_ERROR(store->BindModel(model_id, embedding_dim));
  std::unique_ptr<Gallery> gallery(new Gallery(std::move(store), std::move(model_id), embedding_dim, limits));
  VF_RETURN_IF_ERROR(gallery->LoadSnapshot(std::move(snapshot)));
  return gallery;
}

absl::Status Gallery::LoadSnapshot(GallerySnapshot snapshot) {
  // Called before the gallery is shared; the locks are taken only to keep the invariants uniform.
  std::lock_guard<std::mutex> write(write_mutex_);
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  identities_.reserve(snapshot.identities.size());
  for (IdentityRecord& record : snapshot.identities) {
    const std::string id = record.identity_id;
    if (!identity_index_.emplace(id, static_cast<int32_t>(identities_.size())).second) {
      return absl::DataLossError(absl::StrCat("gallery store lists identity ", Quote(id), " twice"));
    }
    identities_.push_back(IdentityInfo{std::move(record), {}});
  }
  const size_t dim = static_cast<size_t>(embedding_dim_);
  matrix_.reserve(snapshot.templates.size() * dim);
  row_template_.reserve(snapshot.templates.size());
  row_identity_.reserve(snapshot.templates.size());
  for (TemplateRecord& t : snapshot.templates) {
    auto it = identity_index_.find(t.identity_id);
    if (it == identity_index_.end()) {
      return absl::DataLossError(
          absl::StrCat("gallery template '", t.template_id, "' belongs to unknown identity ", Quote(t.identity_id)));
    }
    if (t.embedding.size() != dim) {
      return absl::DataLossError(absl::StrCat("gallery template '", t.template_id, "' has ", t.embedding.size(),
                                              " values; the gallery's embeddings have ", dim));
    }
    if (!template_row_.emplace(t.template_id, static_cast<int64_t>(row_template_.size())).second) {
      return absl::DataLossError(absl::StrCat("gallery template id '", t.template_id, "' appears twice"));
    }
    for (float v : t.embedding) {
      if (!std::isfinite(v)) {
        return absl::DataLossError(absl::StrCat("gallery template '", t.template_id, "' has a non-finite value"));
      }
    }
    matrix_.insert(matrix_.end(), t.embedding.begin(), t.embedding.end());
    row_template_.push_back(t.template_id);
    row_identity_.push_back(it->second);
    identities_[it->second].template_ids.push_back(std::move(t.template_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Gallery::NormalizedEmbedding(const std::vector<float>& embedding,
                                                                const std::string& what) const {
  if (static_cast<int64_t>(embedding.size()) != embedding_dim_) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has ", embedding.size(), " values; model '", model_id_,
                                                   "' makes ", embedding_dim_, "-D embeddings"));
  }
  double sum = 0;
  for (size_t i = 0; i < embedding.size(); ++i) {
    if (!std::isfinite(embedding[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has a non-finite value (", embedding[i], ") at index ", i));
    }
    sum += static_cast<double>(embedding[i]) * embedding[i];
  }
  const double norm = std::sqrt(sum);
  if (std::abs(norm - 1.0) > limits_.norm_tolerance) {
    return absl::InvalidArgumentError(absl::StrFormat("%s has L2 norm %.6g; embeddings must be unit length (within %g)",
                                                      what, norm, limits_.norm_tolerance));
  }
  std::vector<float> out(embedding.size());
  for (size_t i = 0; i < embedding.size(); ++i) out[i] = static_cast<float>(embedding[i] / norm);
  return out;
}

std::string Gallery::NewTemplateId() {
  // 128 random bits: collisions are not a practical concern, but callers still check.
  return absl::StrFormat("%016x%016x", id_rng_(), id_rng_());
}

absl::StatusOr<std::vector<std::string>> Gallery::Enroll(const std::string& identity_id,
                                                         const std::map<std::string, std::string>& metadata,
                                                         const std::vector<std::vector<float>>& embeddings) {
  VF_RETURN_IF_ERROR(CheckIdentityId(identity_id, "identity id"));
  for (const auto& [key, value] : metadata) {
    VF_RETURN_IF_ERROR(ValidateId("metadata key", key, limits_.max_id_length));
    VF_RETURN_IF_ERROR(ValidateText(absl::StrCat("metadata value of ", Quote(key)), value, true));
  }
  if (embeddings.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("enrolment of ", Quote(identity_id), " has no embeddings"));
  }
  std::vector<std::vector<float>> rows;
  rows.reserve(embeddings.size());
  for (size_t i = 0; i < embeddings.size(); ++i) {
    VF_ASSIGN_OR_RETURN(auto row, NormalizedEmbedding(embeddings[i], absl::StrCat("embedding ", i)));
    rows.push_back(std::move(row));
  }

  std::lock_guard<std::mutex> write(write_mutex_);
  // Only writers change the state below, and they hold write_mutex_, so it can be read without mutex_.
  auto existing = identity_index_.find(identity_id);
  const IdentityInfo* info = existing == identity_index_.end() ? nullptr : &identities_[existing->second];
  const int64_t have = info == nullptr ? 0 : static_cast<int64_t>(info->template_ids.size());
  const int64_t adding = static_cast<int64_t>(rows.size());
  if (have + adding > limits_.max_templates_per_identity) {
    return absl::ResourceExhaustedError(absl::StrCat("identity ", Quote(identity_id), " has ", have,
                                                     " templates; adding ", adding, " would pass the limit of ",
                                                     limits_.max_templates_per_identity, " per identity"));
  }
  const int64_t total = static_cast<int64_t>(row_template_.size());
  if (total + adding > limits_.max_templates) {
    return absl::ResourceExhaustedError(absl::StrCat("the gallery holds ", total, " templates; adding ", adding,
                                                     " would pass its limit of ", limits_.max_templates));
  }
  IdentityRecord record;
  const int64_t now = NowUnixMs();
  if (info != nullptr) {
    record = info->record;
  } else {
    record.identity_id = identity_id;
    record.created_unix_ms = now;
  }
  record.updated_unix_ms = now;
  for (const auto& [key, value] : metadata) record.metadata[key] = value;
  if (static_cast<int64_t>(record.metadata.size()) > limits_.max_metadata_entries) {
    return absl::InvalidArgumentError(absl::StrCat("identity ", Quote(identity_id), " would have ",
                                                   record.metadata.size(), " metadata entries; the limit is ",
                                                   limits_.max_metadata_entries));
  }
  if (MetadataBytes(record.metadata) > limits_.max_metadata_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("identity ", Quote(identity_id), " would have ",
                                                   MetadataBytes(record.metadata), " bytes of metadata; the limit is ",
                                                   limits_.max_metadata_bytes));
  }

  std::vector<TemplateRecord> templates(rows.size());
  std::vector<std::string> ids;
  ids.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string id;
    do {
      id = NewTemplateId();
    } while (template_row_.count(id) != 0 || std::find(ids.begin(), ids.end(), id) != ids.end());
    ids.push_back(id);
    templates[i].template_id = id;
    templates[i].identity_id = identity_id;
    templates[i].model_id = model_id_;
    templates[i].embedding = rows[i];
    templates[i].created_unix_ms = now;
  }
  // Durable first: if the commit fails, memory is untouched and the caller sees the error.
  VF_RETURN_IF_ERROR(store_->AddTemplates(record, templates));

  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  int32_t index;
  if (existing == identity_index_.end()) {
    index = static_cast<int32_t>(identities_.size());
    identities_.push_back(IdentityInfo{std::move(record), {}});
    identity_index_.emplace(identity_id, index);
  } else {
    index = existing->second;
    identities_[index].record = std::move(record);
  }
  AppendRows(index, rows, ids);
  return ids;
}

void Gallery::AppendRows(int32_t identity, const std::vector<std::vector<float>>& rows,
                         const std::vector<std::string>& ids) {
  for (size_t i = 0; i < rows.size(); ++i) {
    template_row_.emplace(ids[i], static_cast<int64_t>(row_template_.size()));
    matrix_.insert(matrix_.end(), rows[i].begin(), rows[i].end());
    row_template_.push_back(ids[i]);
    row_identity_.push_back(identity);
    identities_[identity].template_ids.push_back(ids[i]);
  }
}

absl::Status Gallery::Delete(const std::string& identity_id) {
  std::lock_guard<std::mutex> write(write_mutex_);
  auto it = identity_index_.find(identity_id);
  if (it == identity_index_.end()) {
    return absl::NotFoundError(absl::StrCat("no identity ", Quote(identity_id), " in the gallery"));
  }
  VF_RETURN_IF_ERROR(store_->DeleteIdentity(identity_id));
  std::unique_lock<WriterPreferringMutex> lock(mutex_);
  RemoveIdentity(it->second);
  return absl::OkStatus();
}

void Gallery::RemoveIdentity(int32_t identity) {
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

absl::StatusOr<IdentityInfo> Gallery::Get(const std::string& identity_id) const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  auto it = identity_index_.find(identity_id);
  if (it == identity_index_.end()) {
    return absl::NotFoundError(absl::StrCat("no identity ", Quote(identity_id), " in the gallery"));
  }
  return identities_[it->second];
}

absl::StatusOr<IdentityPage> Gallery::List(int page_size, const std::string& page_token) const {
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

absl::StatusOr<std::vector<IdentityMatch>> Gallery::Identify(const std::vector<float>& query, int k,
                                                             float min_similarity) const {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("top-k must be at least 1, got ", k));
  if (std::isnan(min_similarity)) return absl::InvalidArgumentError("min_similarity is NaN");
  k = std::min(k, limits_.max_k);
  VF_ASSIGN_OR_RETURN(std::vector<float> q, NormalizedEmbedding(query, "query embedding"));

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

IdentityMatch Gallery::BestTemplate(int32_t identity, const float* query) const {
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

absl::StatusOr<IdentityMatch> Gallery::Compare(const std::vector<float>& query, const std::string& identity_id) const {
  VF_ASSIGN_OR_RETURN(std::vector<float> q, NormalizedEmbedding(query, "query embedding"));
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  auto it = identity_index_.find(identity_id);
  if (it == identity_index_.end()) {
    return absl::NotFoundError(absl::StrCat("no identity ", Quote(identity_id), " in the gallery"));
  }
  return BestTemplate(it->second, q.data());
}

absl::StatusOr<IdentityPairMatch> Gallery::CompareIdentities(const std::string& identity_a,
                                                             const std::string& identity_b) const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  const auto a = identity_index_.find(identity_a);
  if (a == identity_index_.end()) {
    return absl::NotFoundError(absl::StrCat("no identity ", Quote(identity_a), " in the gallery"));
  }
  const auto b = identity_index_.find(identity_b);
  if (b == identity_index_.end()) {
    return absl::NotFoundError(absl::StrCat("no identity ", Quote(identity_b), " in the gallery"));
  }
  // Every template of `a` against all of `b`'s: BestTemplate is one row per template of b, so this is
  // |a| x |b| dot products, at most max_templates_per_identity squared.
  IdentityPairMatch best{"", "", -std::numeric_limits<float>::infinity()};
  for (const std::string& id : identities_[a->second].template_ids) {
    const float* row = matrix_.data() + template_row_.at(id) * embedding_dim_;
    const IdentityMatch m = BestTemplate(b->second, row);
    if (m.similarity > best.similarity) best = IdentityPairMatch{id, m.best_template_id, m.similarity};
  }
  if (best.template_a.empty() || best.template_b.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "identity ", Quote(best.template_a.empty() ? identity_a : identity_b), " has no templates to compare"));
  }
  return best;
}

absl::Status Gallery::CheckIdentityId(const std::string& id, const std::string& field) const {
  return ValidateId(field, id, limits_.max_id_length);
}

int64_t Gallery::identity_count() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return static_cast<int64_t>(identities_.size());
}

int64_t Gallery::template_count() const {
  std::shared_lock<WriterPreferringMutex> lock(mutex_);
  return static_cast<int64_t>(row_template_.size());
}

}  // namespace veriface
