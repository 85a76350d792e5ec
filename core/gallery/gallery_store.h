#pragma once
// Durable storage behind the in-memory gallery. Every mutating call returns only once its change is
// committed to stable storage: that is what lets the service acknowledge an Enroll or Delete. Two kinds:
// a store only this process writes (SQLite) and one that several replicas share (PostgreSQL), which also
// reports the changes the others made (ChangesSince).

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
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

  // ---- Moving to another model. The model's templates stay in force (and are served) until SwitchModel;
  // re-embedded values wait beside them, so a migration interrupted at any point resumes where it was.
  // A store that cannot migrate answers UNIMPLEMENTED.

  // Up to `limit` templates, in enrolment order, that keep a face crop and have no re-embedded value for
  // `target` yet.
  virtual absl::StatusOr<std::vector<StoredFace>> FacesToReembed(const ModelTarget& target, int64_t limit) {
    return Unmigratable();
  }
  // Keeps the values for the switch to `target`, replacing earlier ones; a template deleted meanwhile is
  // skipped. INVALID_ARGUMENT when a value's size is not target.embedding_dim.
  virtual absl::Status PutReembedded(const ModelTarget& target, const std::vector<ReembeddedTemplate>& values) {
    return Unmigratable();
  }
  // Where a migration to `target` stands; lists at most `max_listed` identities needing re-enrolment.
  virtual absl::StatusOr<MigrationProgress> Progress(const ModelTarget& target, int64_t max_listed) {
    return Unmigratable();
  }
  // In one transaction that excludes writers: embeds the templates no pass reached (`embed_rest` is
  // called with them, as often as needed), replaces every template's embedding and model with its
  // re-embedded value and rebinds the store to `target`. Templates without a crop make it FAILED_PRECONDITION
  // unless `drop_without_crop`, which deletes them, and deletes as DeleteIdentity does the identities left
  // with none (Progress lists them first, for re-enrolment). FAILED_PRECONDITION too when the store is bound
  // to `target` already. Returns the number of templates dropped.
  using EmbedFaces = std::function<absl::StatusOr<std::vector<ReembeddedTemplate>>(const std::vector<StoredFace>&)>;
  virtual absl::StatusOr<int64_t> SwitchModel(const ModelTarget& target, bool drop_without_crop,
                                              const EmbedFaces& embed_rest) {
    return Unmigratable();
  }

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

 private:
  absl::Status Unmigratable() const {
    return absl::UnimplementedError(absl::StrCat("the ", kind(), " gallery store cannot move to another model"));
  }
};

}  // namespace veriface
