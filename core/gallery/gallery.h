#pragma once
// The in-memory gallery: every template's unit-length embedding in one contiguous row-major matrix,
// so that Identify is one matrix-vector product plus an exact top-k. Writes go to the store first and
// reach memory only once committed. Thread-safe: many readers, one writer at a time.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/gallery_store.h"
#include "core/gallery/gallery_types.h"
#include "core/gallery/rw_mutex.h"

namespace veriface {

struct GalleryLimits {
  int64_t max_templates = 2'000'000;
  int64_t max_templates_per_identity = 1000;
  int64_t max_id_length = 256;  // bytes, for identity ids and metadata keys
  int64_t max_metadata_entries = 32;
  int64_t max_metadata_bytes = 4096;  // keys plus values, after merging
  int max_page_size = 1000;           // List clamps larger page sizes to this
  int max_k = 1000;                   // Identify clamps larger k to this
  // An embedding is accepted as unit length when | ||e|| - 1 | <= norm_tolerance; it is then renormalised.
  float norm_tolerance = 1e-3f;
};

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
};

struct IdentityPage {
  std::vector<IdentityInfo> identities;  // ordered by identity id (bytewise)
  std::string next_page_token;           // empty on the last page
};

class Gallery {
 public:
  // Loads everything from `store`. A store holding templates of another model is refused
  // (FAILED_PRECONDITION, naming both model ids); an empty store is bound to `model_id`.
  static absl::StatusOr<std::unique_ptr<Gallery>> Open(std::unique_ptr<GalleryStore> store, std::string model_id,
                                                       int64_t embedding_dim, GalleryLimits limits = {});

  // Adds templates (unit-length embeddings of `embedding_dim`) to the identity, creating it if new and
  // merging `metadata` into it (new values win). Returns the new template ids, in the order of
  // `embeddings`, once committed. INVALID_ARGUMENT for bad ids, metadata or embeddings;
  // RESOURCE_EXHAUSTED when a limit would be passed.
  absl::StatusOr<std::vector<std::string>> Enroll(const std::string& identity_id,
                                                  const std::map<std::string, std::string>& metadata,
                                                  const std::vector<std::vector<float>>& embeddings);

  // Removes the identity and all its templates from the store (leaving no trace in the file) and from
  // memory. NOT_FOUND if unknown.
  absl::Status Delete(const std::string& identity_id);
  absl::StatusOr<IdentityInfo> Get(const std::string& identity_id) const;

  // Identities ordered by id. `page_token` is empty for the first page, else a previous page's
  // next_page_token; pages stay stable under concurrent enrolments and deletions (each identity present
  // for the whole walk is returned exactly once). page_size <= 0 means the default (100).
  absl::StatusOr<IdentityPage> List(int page_size, const std::string& page_token) const;

  // The `k` identities most similar to `query` (best template per identity), most similar first, ties
  // broken by identity id, keeping only those with similarity >= min_similarity. INVALID_ARGUMENT when
  // the query has the wrong size, is not finite or is not unit length, or k < 1.
  absl::StatusOr<std::vector<IdentityMatch>> Identify(const std::vector<float>& query, int k,
                                                      float min_similarity) const;

  // The best similarity between `query` and any template of the identity; NOT_FOUND if unknown.
  absl::StatusOr<IdentityMatch> Compare(const std::vector<float>& query, const std::string& identity_id) const;

  // The best similarity between any template of `identity_a` and any template of `identity_b` (the
  // same rule Compare applies to one side), with the pair that gave it; NOT_FOUND naming whichever is
  // unknown. An identity compared with itself gives its templates' self-similarity (1).
  absl::StatusOr<IdentityPairMatch> CompareIdentities(const std::string& identity_a,
                                                      const std::string& identity_b) const;

  // INVALID_ARGUMENT unless `id` is a usable identity id (non-empty, at most limits().max_id_length bytes,
  // UTF-8 without control characters); the message names it `field`. Enroll applies the same check.
  absl::Status CheckIdentityId(const std::string& id, const std::string& field) const;

  int64_t identity_count() const;
  int64_t template_count() const;
  const std::string& model_id() const { return model_id_; }
  int64_t embedding_dim() const { return embedding_dim_; }
  const GalleryLimits& limits() const { return limits_; }

 private:
  Gallery(std::unique_ptr<GalleryStore> store, std::string model_id, int64_t embedding_dim, GalleryLimits limits);

  absl::Status LoadSnapshot(GallerySnapshot snapshot);
  // Validates `embedding` and returns it scaled to exactly unit length.
  absl::StatusOr<std::vector<float>> NormalizedEmbedding(const std::vector<float>& embedding,
                                                         const std::string& what) const;
  std::string NewTemplateId();  // caller holds write_mutex_
  // Memory-only mutations; the caller holds write_mutex_ and mutex_ exclusively.
  void AppendRows(int32_t identity, const std::vector<std::vector<float>>& rows, const std::vector<std::string>& ids);
  void RemoveIdentity(int32_t identity);
  // The identity's template most similar to `query`; the caller holds mutex_.
  IdentityMatch BestTemplate(int32_t identity, const float* query) const;

  std::unique_ptr<GalleryStore> store_;
  const std::string model_id_;
  const int64_t embedding_dim_;
  const GalleryLimits limits_;

  // Writers are serialised by write_mutex_ and hold it across the store commit, so readers only wait
  // for the short in-memory update, under mutex_ held exclusively.
  std::mutex write_mutex_;
  std::mt19937_64 id_rng_;                         // guarded by write_mutex_
  mutable WriterPreferringMutex mutex_;            // writer-preferring, so Identify traffic cannot starve writers
  std::vector<float> matrix_;                      // template_count x embedding_dim, row-major
  std::vector<std::string> row_template_;          // row -> template id
  std::vector<int32_t> row_identity_;              // row -> index into identities_
  std::vector<IdentityInfo> identities_;           // dense; deleted slots are filled by the last
  std::map<std::string, int32_t> identity_index_;  // ordered, for List's stable pagination
  std::unordered_map<std::string, int64_t> template_row_;  // template id -> row
};

}  // namespace veriface
