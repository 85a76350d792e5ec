#pragma once
// Durable storage behind the in-memory gallery. Every mutating call returns only once its change is
// committed to stable storage: that is what lets the service acknowledge an Enroll or Delete. Two kinds:
// a store only this process writes (SQLite) and one that several replicas share (PostgreSQL), which also
// reports the changes the others made (ChangesSince).

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/gallery_types.h"

namespace veriface {

// New templates for one identity, created if new.
struct TemplateWrite {
  std::string gallery;
  IdentityRecord identity;  // metadata: merged into what is stored, new values win
  std::vector<TemplateRecord> templates;
  int64_t max_templates_per_identity = 0;  // enforced inside the transaction when > 0
  int64_t max_gallery_templates = 0;       // likewise, for the whole gallery
  std::string request_id;                  // "" for none; else a receipt is written in the same transaction
  WriteReceipt receipt;                    // when request_id is set
};

class GalleryStore {
 public:
  virtual ~GalleryStore() = default;

  // "sqlite", "postgres": for logs, metrics and the service's info.
  virtual std::string kind() const = 0;
  // Whether other processes write to this store too, so that the gallery must follow ChangesSince.
  virtual bool shared() const { return false; }

  // Everything stored, consistent as of one moment.
  virtual absl::StatusOr<StoreSnapshot> Load() = 0;

  // Records the model id and embedding size of a new (empty) store. FAILED_PRECONDITION if the store
  // already holds templates of another model.
  virtual absl::Status BindModel(const std::string& model_id, int64_t embedding_dim) = 0;

  // ALREADY_EXISTS when a gallery of that name exists.
  virtual absl::Status CreateGallery(const GalleryRecord& gallery) = 0;
  // Removes the gallery with all its identities and templates; the number of templates removed.
  // NOT_FOUND if there is no such gallery.
  virtual absl::StatusOr<int64_t> DeleteGallery(const std::string& name) = 0;

  // Adds the templates, atomically; returns the identity as committed (for a shared store it may hold
  // templates another replica added meanwhile). NOT_FOUND for an unknown gallery; RESOURCE_EXHAUSTED when
  // a limit would be passed; ALREADY_EXISTS when write.request_id has a receipt already (nothing written).
  virtual absl::StatusOr<IdentityState> AddTemplates(const TemplateWrite& write) = 0;

  // Removes the identity and all its templates, leaving no trace of them in the store (its enrolment
  // receipts go too), and writes `receipt` under `request_id` when that is not empty: a digest of the
  // request, kept for the receipt's lifetime. Returns the number of templates removed.
  // NOT_FOUND if there is no such identity; ALREADY_EXISTS as for AddTemplates.
  virtual absl::StatusOr<int64_t> DeleteIdentity(const std::string& gallery, const std::string& identity_id,
                                                 const std::string& request_id, const WriteReceipt& receipt) = 0;

  // The receipt written under `request_id`, or nullopt.
  virtual absl::StatusOr<std::optional<WriteReceipt>> FindReceipt(const std::string& request_id) = 0;
  // Forgets receipts written before `unix_ms`: retries are expected within minutes, not forever.
  virtual absl::Status PruneReceipts(int64_t unix_ms) = 0;

  // Shared stores: what changed since `cursor` (from Load or the previous ChangesSince).
  virtual absl::StatusOr<ChangeSet> ChangesSince(const std::string& cursor) {
    ChangeSet none;
    none.cursor = cursor;
    return none;
  }
  // Shared stores: returns when another writer may have changed something, or after `timeout`.
  virtual absl::Status WaitForChange(std::chrono::milliseconds timeout) {
    std::this_thread::sleep_for(timeout);
    return absl::OkStatus();
  }
};

}  // namespace veriface
