#pragma once
// The gallery: named collections of enrolled people, held in memory for search and kept durable by a
// GalleryStore. Writes go to the store first and reach memory only once committed, as the store committed
// them. With a store that other replicas share, Sync applies what they wrote, so every replica converges
// on the store's contents while answering its own writes at once. Thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/collection.h"
#include "core/gallery/gallery_limits.h"
#include "core/gallery/gallery_store.h"
#include "core/gallery/gallery_types.h"
#include "core/gallery/index_options.h"

namespace veriface {

struct EnrollCommand {
  std::string gallery;  // "" for the default gallery
  std::string identity_id;
  std::map<std::string, std::string> metadata;  // merged into the identity's, new values win
  std::vector<std::vector<float>> embeddings;
  std::string request_id;  // "" for none; a retry with the same id returns the first result
  // Empty, or one per embedding: the face each came from, kept for re-embedding with another model.
  std::vector<FaceCrop> face_crops;
};

struct EnrollOutcome {
  std::string gallery;
  std::vector<std::string> template_ids;  // the new templates, in the order of the embeddings
  bool replayed = false;                  // the first result of an earlier request with this request id
};

struct DeleteOutcome {
  std::string gallery;
  int64_t templates_deleted = 0;
  bool replayed = false;
};

struct GallerySummary {
  GalleryRecord record;
  int64_t identities = 0;
  int64_t templates = 0;
  int64_t max_templates = 0;  // in force: the record's, or the deployment's
  SearchInfo index;           // what Identify searches it with
  int64_t index_memory_bytes = 0;
};

// What the last Sync did, for metrics.
struct SyncReport {
  int64_t changes = 0;              // identities and galleries replaced or removed
  std::vector<double> lag_seconds;  // per change another replica made
  bool full_reload = false;
};

class Gallery {
 public:
  // Loads everything from `store`. A store holding templates of another model is refused
  // (FAILED_PRECONDITION, naming both model ids); an empty store is bound to `model_id`. The default
  // gallery is created when missing.
  // Every gallery is searched with the index `index` describes (INVALID_ARGUMENT when it is malformed).
  static absl::StatusOr<std::unique_ptr<Gallery>> Open(std::unique_ptr<GalleryStore> store, std::string model_id,
                                                       int64_t embedding_dim, GalleryLimits limits = {},
                                                       IndexOptions index = {});
  Gallery(const Gallery&) = delete;
  Gallery& operator=(const Gallery&) = delete;

  // The named gallery ("" is the default); NOT_FOUND when there is none. The collection stays usable
  // by its holder even if the gallery is deleted meanwhile.
  absl::StatusOr<std::shared_ptr<const Collection>> Find(const std::string& name) const;
  std::vector<GallerySummary> ListGalleries() const;

  // Adds templates (unit-length embeddings of `embedding_dim`) to the identity, creating it if new.
  // Returns once committed. INVALID_ARGUMENT for bad ids, metadata or embeddings; NOT_FOUND for an
  // unknown gallery; RESOURCE_EXHAUSTED when a limit would be passed; FAILED_PRECONDITION when the
  // request id was used for another request; UNAVAILABLE when the store cannot be reached.
  absl::StatusOr<EnrollOutcome> Enroll(const EnrollCommand& command);

  // Removes the identity and all its templates from the store (leaving no trace in it) and from memory.
  // NOT_FOUND if unknown (unless `request_id` names an earlier delete of it, whose result is returned).
  absl::StatusOr<DeleteOutcome> Delete(const std::string& gallery, const std::string& identity_id,
                                       const std::string& request_id = "");

  // max_templates 0: the deployment's limit; more than it is refused. ALREADY_EXISTS when it exists.
  absl::StatusOr<GallerySummary> CreateGallery(const std::string& name, int64_t max_templates = 0);
  // Removes a gallery and everyone in it; the default gallery cannot be deleted.
  absl::StatusOr<GallerySummary> DeleteGallery(const std::string& name);

  // Applies what other writers of a shared store committed since the last Sync (a no-op otherwise).
  absl::StatusOr<SyncReport> Sync();
  // Returns when the store may hold news for Sync, or after `timeout`.
  absl::Status WaitForChange(std::chrono::milliseconds timeout);

  // INVALID_ARGUMENT unless `id` is a usable identity id (non-empty, at most limits().max_id_length bytes,
  // UTF-8 without control characters); the message names it `field`. Enroll applies the same check.
  absl::Status CheckIdentityId(const std::string& id, const std::string& field) const;
  // INVALID_ARGUMENT unless `name` is "" (the default) or a well-formed gallery name.
  absl::Status CheckGalleryName(const std::string& name, const std::string& field) const;

  // Totals over all galleries.
  int64_t identity_count() const;
  int64_t template_count() const;
  int64_t gallery_count() const;
  const std::string& model_id() const { return model_id_; }
  int64_t embedding_dim() const { return embedding_dim_; }
  const GalleryLimits& limits() const { return limits_; }
  std::string store_kind() const { return store_->kind(); }
  bool shared() const { return store_->shared(); }

 private:
  Gallery(std::unique_ptr<GalleryStore> store, std::string model_id, int64_t embedding_dim, GalleryLimits limits,
          IndexOptions index);
  std::shared_ptr<Collection> NewCollection(const GalleryRecord& record) const;

  // DATA_LOSS unless the stored state is one this gallery can hold (model, size, finite values).
  absl::Status CheckStored(const std::string& gallery, const IdentityState& state) const;
  absl::StatusOr<std::shared_ptr<Collection>> Build(GalleryContents contents) const;
  absl::Status LoadAll(StoreSnapshot snapshot);  // caller holds write_mutex_
  absl::StatusOr<std::shared_ptr<Collection>> FindMutable(const std::string& name) const;
  std::string NewTemplateId();                                   // caller holds write_mutex_
  std::vector<std::shared_ptr<Collection>> Collections() const;  // a snapshot of the map
  // The earlier result of `request_id` when there is one; FAILED_PRECONDITION when it was another request.
  absl::StatusOr<std::optional<WriteReceipt>> Receipt(const std::string& request_id, WriteReceipt::Kind kind,
                                                      const std::string& fingerprint);
  void NoteWrite();  // caller holds write_mutex_; prunes old receipts now and then

  const std::unique_ptr<GalleryStore> store_;
  const std::string model_id_;
  const int64_t embedding_dim_;
  const GalleryLimits limits_;
  const IndexOptions index_options_;

  // Writers and Sync are serialised by write_mutex_, held across the store's commit and the memory
  // update, so memory never goes back to an older state than a write already answered.
  std::mutex write_mutex_;
  std::mt19937_64 id_rng_;          // guarded by write_mutex_
  std::string cursor_;              // guarded by write_mutex_
  int64_t writes_since_prune_ = 0;  // guarded by write_mutex_
  // The name -> collection map changes only under write_mutex_ and map_mutex_ held exclusively.
  mutable std::shared_mutex map_mutex_;
  std::map<std::string, std::shared_ptr<Collection>> collections_;
};

}  // namespace veriface
