#pragma once
// GalleryStore in one SQLite file, in WAL mode with synchronous=FULL: a call returns only once its
// transaction is on stable storage, so an acknowledged Enroll or Delete survives kill -9 and power loss.
// Deletes leave no trace of the identity or its templates in the database or WAL file (secure_delete,
// then a truncating checkpoint). One process owns the file; a second opener waits up to busy_timeout.
// The schema is upgraded in place by numbered migrations, each in one transaction.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/gallery_store.h"

namespace veriface {

struct SqliteStoreOptions {
  int busy_timeout_ms = 5000;
};

class SqliteGalleryStore : public GalleryStore {
 public:
  // Opens (creating if missing) the gallery database at `path`. A file that is not an SQLite database,
  // is corrupt, or is an SQLite database of something else is refused with a message naming the file.
  static absl::StatusOr<std::unique_ptr<SqliteGalleryStore>> Open(const std::string& path,
                                                                  SqliteStoreOptions options = {});
  ~SqliteGalleryStore() override;
  SqliteGalleryStore(const SqliteGalleryStore&) = delete;
  SqliteGalleryStore& operator=(const SqliteGalleryStore&) = delete;

  std::string kind() const override { return "sqlite"; }
  absl::StatusOr<StoreSnapshot> Load() override;
  absl::Status BindModel(const std::string& model_id, int64_t embedding_dim) override;
  absl::Status CreateGallery(const GalleryRecord& gallery) override;
  absl::StatusOr<int64_t> DeleteGallery(const std::string& name) override;
  // One process writes the file, so the gallery's checks against memory are exact: the write's limits
  // are not checked again here.
  absl::StatusOr<IdentityState> AddTemplates(const TemplateWrite& write) override;
  absl::StatusOr<int64_t> DeleteIdentity(const std::string& gallery, const std::string& identity_id,
                                         const std::string& request_id, const WriteReceipt& receipt) override;
  absl::StatusOr<std::optional<WriteReceipt>> FindReceipt(const std::string& request_id) override;
  absl::Status PruneReceipts(int64_t unix_ms) override;
  absl::StatusOr<std::vector<StoredFace>> FacesToReembed(const ModelTarget& target, int64_t limit) override;
  absl::Status PutReembedded(const ModelTarget& target, const std::vector<ReembeddedTemplate>& values) override;
  absl::StatusOr<MigrationProgress> Progress(const ModelTarget& target, int64_t max_listed) override;
  absl::StatusOr<int64_t> SwitchModel(const ModelTarget& target, bool drop_without_crop,
                                      const EmbedFaces& embed_rest) override;

  // Copies every WAL frame into the database and truncates the WAL to zero bytes.
  absl::Status Checkpoint();

  const std::string& path() const { return path_; }
  // 1: one gallery. 2: named galleries and request receipts (a version-1 file is upgraded when opened).
  static constexpr int kSchemaVersion = 3;

 private:
  struct Impl;
  SqliteGalleryStore(std::string path, std::unique_ptr<Impl> impl);

  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace veriface
