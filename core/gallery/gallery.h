#pragma once
// The in-memory gallery: every template's unit-length embedding in one contiguous row-major matrix,
// so that Identify is one matrix-vector product plus an exact top-k. Writes go to the store first and
// reach memory only once committed. Thread-safe: many readers, one writer at a time.

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/gallery_store.h"
#include "core/gallery/gallery_types.h"

namespace veriface {

struct GalleryLimits {
  int64_t max_templates = 2'000'000;
  int64_t max_templates_per_identity = 1000;
  int64_t max_id_length = 256;
  int64_t max_metadata_entries = 32;
  int64_t max_metadata_bytes = 4096;
};

struct IdentityMatch {
  std::string identity_id;
  std::string best_template_id;  // the identity's template most similar to the query
  float similarity = 0;          // cosine similarity of that template
};

struct IdentityInfo {
  IdentityRecord record;
  std::vector<std::string> template_ids;
};

struct IdentityPage {
  std::vector<IdentityInfo> identities;
  std::string next_page_token;  // empty on the last page
};

class Gallery {
 public:
  // Loads everything from `store`. A store built with another model is refused (FAILED_PRECONDITION,
  // naming both model ids); an empty store is bound to `model_id`.
  static absl::StatusOr<std::unique_ptr<Gallery>> Open(std::unique_ptr<GalleryStore> store, std::string model_id,
                                                       int64_t embedding_dim, GalleryLimits limits = {});

  // Adds templates (unit-length embeddings of `embedding_dim`) to the identity, creating it if new and
  // merging `metadata` into it. Returns the new template ids once committed.
  absl::StatusOr<std::vector<std::string>> Enroll(const std::string& identity_id,
                                                  const std::map<std::string, std::string>& metadata,
                                                  const std::vector<std::vector<float>>& embeddings);

  absl::Status Delete(const std::string& identity_id);
  absl::StatusOr<IdentityInfo> Get(const std::string& identity_id) const;
  absl::StatusOr<IdentityPage> List(int page_size, const std::string& page_token) const;

  // The `k` identities most similar to `query` (best template per identity), most similar first,
  // keeping only those with similarity >= min_similarity.
  std::vector<IdentityMatch> Identify(const std::vector<float>& query, int k, float min_similarity) const;

  // The best similarity between `query` and any template of the identity; NOT_FOUND if unknown.
  absl::StatusOr<IdentityMatch> Compare(const std::vector<float>& query, const std::string& identity_id) const;

  int64_t identity_count() const;
  int64_t template_count() const;
  const std::string& model_id() const { return model_id_; }
  int64_t embedding_dim() const { return embedding_dim_; }

 private:
  Gallery(std::unique_ptr<GalleryStore> store, std::string model_id, int64_t embedding_dim, GalleryLimits limits);

  std::unique_ptr<GalleryStore> store_;
  const std::string model_id_;
  const int64_t embedding_dim_;
  const GalleryLimits limits_;

  mutable std::shared_mutex mutex_;
  std::vector<float> matrix_;                // template_count x embedding_dim, row-major
  std::vector<std::string> row_template_;    // row -> template id
  std::vector<int32_t> row_identity_;        // row -> index into identities_
  std::vector<IdentityInfo> identities_;     // dense; deleted slots are compacted away
  std::unordered_map<std::string, int32_t> identity_index_;
};

}  // namespace veriface
