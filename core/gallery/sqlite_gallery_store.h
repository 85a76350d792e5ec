#pragma once
// GalleryStore in one SQLite file, in WAL mode with synchronous=FULL: a call returns only once its
// transaction is on stable storage, so an acknowledged Enroll or Delete survives kill -9 and power loss.
// Deletes leave no trace of the identity or its templates in the database or WAL file (secure_delete,
// then a truncating checkpoint). One process owns the file; a second opener waits up to busy_timeout.

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

  absl::StatusOr<GallerySnapshot> Load() override;
  absl::Status BindModel(const std::string& model_id, int64_t embedding_dim) override;
  absl::Status AddTemplates(const IdentityRecord& identity, const std::vector<TemplateRecord>& templates) override;
  absl::Status DeleteIdentity(const std::string& identity_id) override;

  // Copies every WAL frame into the database and truncates the WAL to zero bytes.
  absl::Status Checkpoint();

  const std::string& path() const { return path_; }
  static constexpr int kSchemaVersion = 1;

 private:
  struct Impl;
  SqliteGalleryStore(std::string path, std::unique_ptr<Impl> impl);

  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace veriface
