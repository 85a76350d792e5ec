#pragma once
// One named gallery in memory: every template's unit-length embedding in slots of one row-major matrix
// (the fp32 source of truth for comparisons), identities and their metadata, and a GalleryIndex over the
// slots for Identify: the exact fp32 scan, or what gallery.index configures once the gallery is large
// enough. It holds what the store committed and nothing else: Gallery writes the store first and then
// puts the committed state here. Thread-safe: many readers; Put and Remove take the lock exclusively.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/flat_index.h"
#include "core/gallery/gallery_index.h"
#include "core/gallery/gallery_limits.h"
#include "core/gallery/gallery_types.h"
#include "core/gallery/index_options.h"
#include "core/gallery/rw_mutex.h"

namespace veriface {

struct IdentityMatch {
  std::string identity_id;
  std::string best_template_id;  // the identity's template most similar to the query
  float similarity = 0;          // cosine similarity of that template
};

// The most similar pair of templates of two identities.
struct IdentityPairMatch {
  std::string template_a;  // a template of the first identity
  std::string template_b;  // a template of the second identity
  float similarity = 0;    // cosine similarity of that pair
};

struct IdentityInfo {
  IdentityRecord record;
  std::vector<std::string> template_ids;  // in enrolment order
  std::string gallery;
  // Templates that keep no face crop: another model cannot re-embed them, so a model migration needs
  // this person re-enrolled (or drops those templates).
  int64_t templates_without_face_crop = 0;
};

// Which index answered an Identify.
struct SearchInfo {
  std::string index;  // GalleryIndex::name()
  bool exact = true;  // the answer is that of exhaustive fp32 search
};

// Templates of a sample of a collection's identities, copied out so that they can be scored without
// holding the collection's lock.
struct TemplateSample {
  int64_t dim = 0;
  std::vector<float> rows;                // n x dim, row-major; each identity's rows are contiguous
  std::vector<int32_t> identity;          // per row: dense 0..identities-1, in the order they were drawn
  std::vector<std::string> identity_ids;  // per dense index
  int64_t identities_in_gallery = 0;
  int64_t templates_in_gallery = 0;
};

struct IdentityPage {
  std::vector<IdentityInfo> identities;  // ordered by identity id (bytewise)
  std::string next_page_token;           // empty on the last page
};

class Collection {
 public:
  // Empty; `contents` (already validated by the gallery) is loaded with Put.
  Collection(GalleryRecord record, std::string model_id, int64_t embedding_dim, GalleryLimits limits,
             IndexOptions index = {});
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;

  absl::StatusOr<IdentityInfo> Get(const std::string& identity_id) const;

  // Identities ordered by id. `page_token` is empty for the first page, else a previous page's
  // next_page_token; pages stay stable under concurrent enrolments and deletions (each identity present
  // for the whole walk is returned exactly once). page_size <= 0 means the default (100).
  absl::StatusOr<IdentityPage> List(int page_size, const std::string& page_token) const;

  // The `k` identities most similar to `query` (best template per identity), most similar first, ties
  // broken by identity id, keeping only those with similarity >= min_similarity. INVALID_ARGUMENT when
  // the query has the wrong size, is not finite or is not unit length, or k < 1.
  // The similarities are exact fp32 ones whichever index found the candidates; `info` (may be null) says
  // which index that was and whether the candidates are exactly the top ones.
  absl::StatusOr<std::vector<IdentityMatch>> Identify(const std::vector<float>& query, int k, float min_similarity,
                                                      SearchInfo* info = nullptr) const;

  // The best similarity between `query` and any template of the identity; NOT_FOUND if unknown.
  absl::StatusOr<IdentityMatch> Compare(const std::vector<float>& query, const std::string& identity_id) const;

  // The best similarity between any template of `identity_a` (here) and any template of `identity_b` in
  // `other` (which may be this collection), with the pair that gave it; NOT_FOUND naming whichever is
  // unknown. An identity compared with itself gives its templates' self-similarity (1).
  absl::StatusOr<IdentityPairMatch> CompareIdentities(const std::string& identity_a, const Collection& other,
                                                      const std::string& identity_b) const;

  // Every template of a uniform random sample of identities, taken under one read lock: identities are
  // drawn without replacement (seeded) and kept while their templates fit in `max_templates`; one that does
  // not fit is passed over, so that a single very large identity cannot leave the sample empty (near the
  // cap this slightly favours identities with few templates). Each identity's templates come in enrolment
  // order.
  TemplateSample SampleTemplates(int64_t max_templates, uint64_t seed) const;

  // The identity's templates as stored, for the gallery's write checks; NOT_FOUND if unknown.
  absl::StatusOr<IdentityState> State(const std::string& identity_id) const;

  // Memory only: the identity becomes exactly `state` (inserted when new). The caller has validated it.
  // An error is the index's (the memory is updated regardless, and the next RebuildIndex repairs it).
  absl::Status Put(IdentityState state);
  // Memory only: the identity is gone; nothing happens when it is not here.
  absl::Status Remove(const std::string& identity_id);
  // Puts every identity (validated by the caller), then builds the configured index once.
  absl::Status Load(std::vector<IdentityState> states);
  // Builds the configured index over everything held. On failure the exact scan answers, and the error
  // says why.
  absl::Status RebuildIndex();
  SearchInfo index_info() const;
  int64_t index_memory_bytes() const;
  bool HasTemplate(const std::string& template_id) const;

  const GalleryRecord& record() const { return record_; }
  const std::string& name() const { return record_.name; }
  // The gallery's own template limit: its record's when set, else the deployment's.
  int64_t max_templates() const;
  int64_t identity_count() const;
  int64_t template_count() const;

 private:
  // The caller holds mutex_ exclusively.
  absl::Status RemoveAt(int32_t identity);
  absl::Status RebuildIndexLocked();
  // The identity's template most similar to `query`; the caller holds mutex_.
  IdentityMatch BestTemplate(int32_t identity, const float* query) const;
  absl::Status NotFound(const std::string& identity_id) const;

  const GalleryRecord record_;
  const std::string model_id_;
  const int64_t embedding_dim_;
  const GalleryLimits limits_;
  const IndexOptions index_options_;

  mutable WriterPreferringMutex mutex_;  // writer-preferring, so Identify traffic cannot starve writers
  // Slots, not packed rows: a deleted template frees its slot for a later one, so the labels the index
  // holds never move.
  SlotRows rows_;
  std::vector<std::string> slot_template_;  // slot -> template id ("" when free)
  std::vector<int64_t> free_slots_;         // reused last-freed first
  int64_t live_templates_ = 0;
  std::vector<IdentityInfo> identities_;                    // dense; a deleted one's place goes to the last
  std::map<std::string, int32_t> identity_index_;           // ordered, for List's stable pagination
  std::unordered_map<std::string, int64_t> template_slot_;  // template id -> slot
  std::unique_ptr<GalleryIndex> index_;                     // over rows_; declared after it
  bool loading_ = false;                                    // within Load: Put leaves the index alone
  int64_t rebuild_failed_at_ = -1;                          // template count of the last failed build
};

}  // namespace veriface
