#pragma once
// GalleryStore in a PostgreSQL database that several replicas share. Each write is one transaction that
// also appends to a change log and notifies the other replicas (LISTEN/NOTIFY); ChangesSince reads the
// log, so every replica converges on the database's contents.
//
// Why the change log is read by transaction id and not by its sequence number: a sequence number is
// taken before commit, so a slow transaction can commit number 10 after number 11 is already visible,
// and a reader that asks for "everything above 11" would skip it for ever. Instead each change records
// its transaction id, and a reader takes the oldest transaction still running in its snapshot (xmin) as
// the boundary: every transaction below it has finished, so its changes are either visible or never will
// be. The cursor is that boundary. Changes are reported as the current state of what they touched, so
// reading one twice is harmless: entries above the boundary that are already visible are applied at once
// and read again until the boundary passes them, so one long transaction delays nobody else's changes.
//
// What a delete leaves: the rows are gone for every reader at commit, and their bytes go when PostgreSQL
// (auto)vacuums the tables; the change log keeps the identity id for change_retention (1 hour) so that
// replicas away for a while learn of the delete. Operators who must erase at once run VACUUM.
//
// Schema changes are numbered migrations, applied at start-up under an advisory lock so that replicas
// starting together do not race. Acknowledged means committed: every call returns once PostgreSQL has
// committed (synchronous_commit as the server is configured), and UNAVAILABLE when it cannot be reached;
// the connection is re-established by the next call.

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/gallery_store.h"

namespace veriface {

namespace pg {
class Connection;
}

struct PostgresStoreOptions {
  std::string conninfo;  // libpq connection string, without the password
  std::string password;  // never logged
  int connect_timeout_s = 5;
  // A statement that runs longer fails (DEADLINE_EXCEEDED) rather than holding the gallery's writers.
  int statement_timeout_ms = 30000;
  // Change-log entries older than this are pruned; a replica that was away longer reloads everything.
  std::chrono::milliseconds change_retention{std::chrono::hours(1)};
  // More changed identities than this in one ChangesSince and it reloads everything instead.
  int max_changes_per_read = 20000;
};

class PostgresGalleryStore : public GalleryStore {
 public:
  // Connects, and creates or upgrades the schema. UNAVAILABLE when the database cannot be reached;
  // FAILED_PRECONDITION when its schema is newer than this build's.
  static absl::StatusOr<std::unique_ptr<PostgresGalleryStore>> Open(PostgresStoreOptions options);
  ~PostgresGalleryStore() override;
  PostgresGalleryStore(const PostgresGalleryStore&) = delete;
  PostgresGalleryStore& operator=(const PostgresGalleryStore&) = delete;

  std::string kind() const override { return "postgres"; }
  bool shared() const override { return true; }
  absl::StatusOr<StoreSnapshot> Load() override;
  absl::Status BindModel(const std::string& model_id, int64_t embedding_dim) override;
  absl::Status CreateGallery(const GalleryRecord& gallery) override;
  absl::StatusOr<int64_t> DeleteGallery(const std::string& name) override;
  absl::StatusOr<IdentityState> AddTemplates(const TemplateWrite& write) override;
  absl::StatusOr<int64_t> DeleteIdentity(const std::string& gallery, const std::string& identity_id,
                                         const std::string& request_id, const WriteReceipt& receipt) override;
  absl::StatusOr<std::optional<WriteReceipt>> FindReceipt(const std::string& request_id) override;
  absl::Status PruneReceipts(int64_t unix_ms) override;
  absl::StatusOr<ChangeSet> ChangesSince(const std::string& cursor) override;
  absl::Status WaitForChange(std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::vector<StoredFace>> FacesToReembed(const ModelTarget& target, int64_t limit) override;
  absl::Status PutReembedded(const ModelTarget& target, const std::vector<ReembeddedTemplate>& values) override;
  absl::StatusOr<MigrationProgress> Progress(const ModelTarget& target, int64_t max_listed) override;
  absl::StatusOr<int64_t> SwitchModel(const ModelTarget& target, bool drop_without_crop,
                                      const EmbedFaces& embed_rest) override;

  // Deletes change-log entries older than the retention. Run by ChangesSince now and then.
  absl::Status PruneChanges();
  // This store's tag in the change log: changes with another origin count towards replication lag.
  const std::string& origin() const { return origin_; }
  // 1: galleries, identities, templates, receipts, change log. 2: face crops and re-embedded values.
  static constexpr int kSchemaVersion = 2;

 private:
  explicit PostgresGalleryStore(PostgresStoreOptions options);
  // The connection for everything but LISTEN, (re)connected when needed; the caller holds mutex_.
  absl::StatusOr<pg::Connection*> Db();
  // Drops the connection after an UNAVAILABLE so that the next call reconnects; passes `status` on.
  absl::Status Checked(absl::Status status);
  absl::Status Migrate();

  const PostgresStoreOptions options_;
  const std::string origin_;
  std::mutex mutex_;  // one transaction at a time on db_
  std::unique_ptr<pg::Connection> db_;
  std::mutex listen_mutex_;  // the follower's thread only, but WaitForChange may race a destructor
  std::unique_ptr<pg::Connection> listener_;
  std::chrono::steady_clock::time_point last_prune_;
  // Change-log entries above the boundary whose lag was already reported (they are read again until the
  // boundary passes them); guarded by mutex_.
  std::set<int64_t> lag_counted_;
};

}  // namespace veriface
