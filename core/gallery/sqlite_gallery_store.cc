#include "core/gallery/sqlite_gallery_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/sqlite/sqlite_util.h"

namespace veriface {
namespace {

// Embeddings are stored as raw float32 in the machine's byte order; every target we build for is
// little-endian, and this keeps the BLOB a plain memcpy of the matrix row.
static_assert(sizeof(float) == 4, "embeddings are stored as float32");

// Why the schema looks like this:
// - identity and template ids are keys of true B-trees (SQLite index b-trees keep each key once, in a
//   leaf or an interior cell), so secure_delete zeroes every copy of a deleted id;
// - templates keep their model id, so a gallery is never silently compared across models;
// - seq keeps enrolment order, which Load returns.
constexpr const char* kSchema = R"sql(
CREATE TABLE schema_version(version INTEGER NOT NULL);
CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE identities(
  identity_id TEXT PRIMARY KEY NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  updated_unix_ms INTEGER NOT NULL);
CREATE TABLE identity_metadata(
  identity_id TEXT NOT NULL REFERENCES identities(identity_id),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY(identity_id, key));
CREATE TABLE templates(
  seq INTEGER PRIMARY KEY,
  template_id TEXT NOT NULL UNIQUE,
  identity_id TEXT NOT NULL REFERENCES identities(identity_id),
  model_id TEXT NOT NULL,
  embedding BLOB NOT NULL,
  created_unix_ms INTEGER NOT NULL);
CREATE INDEX templates_by_identity ON templates(identity_id);
)sql";

// fsyncs the directory holding `path`, so that a newly created database file's name is durable too.
void SyncParentDirectory(const std::string& path) {
  std::filesystem::path dir = std::filesystem::absolute(path).parent_path();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

struct SqliteGalleryStore::Impl {
  std::unique_ptr<sqlite::Db> db;
  std::mutex mutex;  // one transaction at a time on the connection
  sqlite::Statement upsert_identity;
  sqlite::Statement delete_metadata;
  sqlite::Statement insert_metadata;
  sqlite::Statement insert_template;
  sqlite::Statement delete_templates;
  sqlite::Statement delete_identity;

  absl::Status Configure(int busy_timeout_ms);
  absl::Status CreateOrCheckSchema();
  absl::Status PrepareStatements();
  absl::StatusOr<std::string> Meta(const std::string& key);
  absl::Status SetMeta(const std::string& key, const std::string& value);
  absl::StatusOr<int64_t> TemplateCount();
  absl::Status CheckpointLocked();
};

absl::Status SqliteGalleryStore::Impl::Configure(int busy_timeout_ms) {
  sqlite3_busy_timeout(db->get(), busy_timeout_ms);
  // Refuse to follow a corrupt file into undefined territory: check cell sizes as pages are read and
  // disallow writes that could corrupt the file through the SQL interface.
  sqlite3_db_config(db->get(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db->get(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  // The first read of the file: a non-database or badly damaged file fails here, with the file named.
  VF_ASSIGN_OR_RETURN(std::string mode, db->QueryText("PRAGMA journal_mode=WAL"));
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("gallery database '", db->path(), "': cannot switch to WAL mode (journal_mode is '", mode, "')"));
  }
  // FULL: each commit fsyncs the WAL, so an acknowledged write survives power loss, not just kill -9.
  // secure_delete: deleted rows are overwritten with zeros in the pages that held them.
  return db->Exec(
      "PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; PRAGMA foreign_keys=ON; PRAGMA cell_size_check=ON;");
}

absl::Status SqliteGalleryStore::Impl::CreateOrCheckSchema() {
  sqlite::Transaction tx(db.get());
  VF_RETURN_IF_ERROR(tx.Begin());
  VF_ASSIGN_OR_RETURN(std::string tables, db->QueryText("SELECT count(*) FROM sqlite_schema WHERE type='table'"));
  if (tables == "0") {
    VF_RETURN_IF_ERROR(db->Exec(kSchema));
    VF_RETURN_IF_ERROR(db->Exec(absl::StrCat("INSERT INTO schema_version(version) VALUES(", kSchemaVersion, ")")));
    return tx.Commit();
  }
  VF_ASSIGN_OR_RETURN(std::string has_version,
                      db->QueryText("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='schema_version'"));
  if (has_version == "0") {
    return absl::FailedPreconditionError(absl::StrCat("'", db->path(),
                                                      "' is an SQLite database but not a Veriface gallery "
                                                      "(it has no schema_version table)"));
  }
  VF_ASSIGN_OR_RETURN(std::string version_text, db->QueryText("SELECT max(version) FROM schema_version"));
  int version = 0;
  if (!absl::SimpleAtoi(version_text, &version) || version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("gallery database '", db->path(), "' has schema version '",
                                                      version_text, "'; this build reads version ", kSchemaVersion));
  }
  return tx.Commit();
}

absl::Status SqliteGalleryStore::Impl::PrepareStatements() {
  VF_ASSIGN_OR_RETURN(upsert_identity,
                      db->Prepare("INSERT INTO identities(identity_id, created_unix_ms, updated_unix_ms) "
                                  "VALUES(?1, ?2, ?3) ON CONFLICT(identity_id) DO UPDATE SET "
                                  "updated_unix_ms = excluded.updated_unix_ms",
                                  /*persistent=*/true));
  VF_ASSIGN_OR_RETURN(delete_metadata, db->Prepare("DELETE FROM identity_metadata WHERE identity_id = ?1", true));
  VF_ASSIGN_OR_RETURN(insert_metadata,
                      db->Prepare("INSERT INTO identity_metadata(identity_id, key, value) VALUES(?1, ?2, ?3)", true));
  VF_ASSIGN_OR_RETURN(insert_template,
                      db->Prepare("INSERT INTO templates(template_id, identity_id, model_id, embedding, "
                                  "created_unix_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
                                  true));
  VF_ASSIGN_OR_RETURN(delete_templates, db->Prepare("DELETE FROM templates WHERE identity_id = ?1", true));
  VF_ASSIGN_OR_RETURN(delete_identity, db->Prepare("DELETE FROM identities WHERE identity_id = ?1", true));
  return absl::OkStatus();
}

absl::StatusOr<std::string> SqliteGalleryStore::Impl::Meta(const std::string& key) {
  VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, db->Prepare("SELECT value FROM meta WHERE key = ?1"));
  stmt.BindText(1, key);
  VF_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnText(0) : std::string();
}

absl::Status SqliteGalleryStore::Impl::SetMeta(const std::string& key, const std::string& value) {
  VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, db->Prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) "
                                                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  stmt.BindText(1, key).BindText(2, value);
  return stmt.Run();
}

absl::StatusOr<int64_t> SqliteGalleryStore::Impl::TemplateCount() {
  VF_ASSIGN_OR_RETURN(std::string count, db->QueryText("SELECT count(*) FROM templates"));
  int64_t n = 0;
  if (!absl::SimpleAtoi(count, &n)) return absl::InternalError("count(*) of templates is not a number: " + count);
  return n;
}

absl::Status SqliteGalleryStore::Impl::CheckpointLocked() {
  VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, db->Prepare("PRAGMA wal_checkpoint(TRUNCATE)"));
  VF_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (row && stmt.ColumnInt64(0) != 0) {
    return absl::UnavailableError(absl::StrCat("gallery database '", db->path(),
                                               "': checkpoint could not finish because another connection is "
                                               "reading; the WAL keeps older pages until the next checkpoint"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SqliteGalleryStore>> SqliteGalleryStore::Open(const std::string& path,
                                                                             SqliteStoreOptions options) {
  if (path.empty()) return absl::InvalidArgumentError("gallery database path is empty");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("gallery database '", path, "' is a directory"));
  }
  const bool existed = std::filesystem::exists(path, ec);
  auto impl = std::make_unique<Impl>();
  VF_ASSIGN_OR_RETURN(
      impl->db,
      sqlite::Db::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
                       "gallery database"));
  VF_RETURN_IF_ERROR(impl->Configure(options.busy_timeout_ms));
  VF_RETURN_IF_ERROR(impl->CreateOrCheckSchema());
  VF_RETURN_IF_ERROR(impl->PrepareStatements());
  if (!existed) SyncParentDirectory(path);
  return std::unique_ptr<SqliteGalleryStore>(new SqliteGalleryStore(path, std::move(impl)));
}

SqliteGalleryStore::SqliteGalleryStore(std::string path, std::unique_ptr<Impl> impl)
    : path_(std::move(path)), impl_(std::move(impl)) {}

SqliteGalleryStore::~SqliteGalleryStore() = default;

absl::StatusOr<GallerySnapshot> SqliteGalleryStore::Load() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  sqlite::Db& db = *impl_->db;
  GallerySnapshot snapshot;
  // One read transaction, so the snapshot is consistent even if another process wrote meanwhile.
  VF_RETURN_IF_ERROR(db.Exec("BEGIN"));
  struct EndRead {
    sqlite::Db& db;
    ~EndRead() { sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db};

  VF_ASSIGN_OR_RETURN(snapshot.model_id, impl_->Meta("model_id"));
  VF_ASSIGN_OR_RETURN(std::string dim_text, impl_->Meta("embedding_dim"));
  if (!dim_text.empty() && (!absl::SimpleAtoi(dim_text, &snapshot.embedding_dim) || snapshot.embedding_dim <= 0)) {
    return absl::DataLossError(
        absl::StrCat("gallery database '", path_, "': embedding_dim '", dim_text, "' is not a positive number"));
  }

  std::unordered_map<std::string, size_t> identity_at;
  VF_ASSIGN_OR_RETURN(
      sqlite::Statement identities,
      db.Prepare("SELECT identity_id, created_unix_ms, updated_unix_ms FROM identities ORDER BY identity_id"));
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(identities, [&]() -> absl::Status {
    IdentityRecord record;
    record.identity_id = identities.ColumnText(0);
    record.created_unix_ms = identities.ColumnInt64(1);
    record.updated_unix_ms = identities.ColumnInt64(2);
    identity_at[record.identity_id] = snapshot.identities.size();
    snapshot.identities.push_back(std::move(record));
    return absl::OkStatus();
  }));

  VF_ASSIGN_OR_RETURN(sqlite::Statement metadata, db.Prepare("SELECT identity_id, key, value FROM identity_metadata"));
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(metadata, [&]() -> absl::Status {
    auto it = identity_at.find(metadata.ColumnText(0));
    if (it == identity_at.end()) {
      return absl::DataLossError(
          absl::StrCat("gallery database '", path_, "': metadata for unknown identity '", metadata.ColumnText(0), "'"));
    }
    snapshot.identities[it->second].metadata[metadata.ColumnText(1)] = metadata.ColumnText(2);
    return absl::OkStatus();
  }));

  VF_ASSIGN_OR_RETURN(sqlite::Statement templates,
                      db.Prepare("SELECT template_id, identity_id, model_id, embedding, created_unix_ms "
                                 "FROM templates ORDER BY seq"));
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(templates, [&]() -> absl::Status {
    TemplateRecord t;
    t.template_id = templates.ColumnText(0);
    t.identity_id = templates.ColumnText(1);
    t.model_id = templates.ColumnText(2);
    t.created_unix_ms = templates.ColumnInt64(4);
    const int bytes = templates.ColumnBytes(3);
    if (bytes <= 0 || bytes % sizeof(float) != 0 ||
        (snapshot.embedding_dim > 0 && bytes != snapshot.embedding_dim * static_cast<int64_t>(sizeof(float)))) {
      return absl::DataLossError(absl::StrCat("gallery database '", path_, "': template '", t.template_id,
                                              "' has an embedding of ", bytes, " bytes; expected ",
                                              snapshot.embedding_dim, " float32 values"));
    }
    if (identity_at.count(t.identity_id) == 0) {
      return absl::DataLossError(absl::StrCat("gallery database '", path_, "': template '", t.template_id,
                                              "' belongs to unknown identity '", t.identity_id, "'"));
    }
    t.embedding.resize(bytes / sizeof(float));
    std::memcpy(t.embedding.data(), templates.ColumnBlob(3), bytes);
    snapshot.templates.push_back(std::move(t));
    return absl::OkStatus();
  }));
  return snapshot;
}

absl::Status SqliteGalleryStore::BindModel(const std::string& model_id, int64_t embedding_dim) {
  if (model_id.empty()) return absl::InvalidArgumentError("model id is empty");
  if (embedding_dim <= 0) return absl::InvalidArgumentError(absl::StrCat("embedding_dim ", embedding_dim, " <= 0"));
  std::lock_guard<std::mutex> lock(impl_->mutex);
  sqlite::Transaction tx(impl_->db.get());
  VF_RETURN_IF_ERROR(tx.Begin());
  VF_ASSIGN_OR_RETURN(std::string stored_model, impl_->Meta("model_id"));
  VF_ASSIGN_OR_RETURN(std::string stored_dim, impl_->Meta("embedding_dim"));
  const std::string dim_text = absl::StrCat(embedding_dim);
  if (stored_model == model_id && stored_dim == dim_text) return absl::OkStatus();
  VF_ASSIGN_OR_RETURN(int64_t templates, impl_->TemplateCount());
  if (templates > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("gallery database '", path_, "' holds ", templates, " templates made with model '", stored_model,
                     "' (", stored_dim, "-D); refusing to use it with model '", model_id, "' (", embedding_dim,
                     "-D): re-embed the gallery or point the server at another gallery file"));
  }
  VF_RETURN_IF_ERROR(impl_->SetMeta("model_id", model_id));
  VF_RETURN_IF_ERROR(impl_->SetMeta("embedding_dim", dim_text));
  return tx.Commit();
}

absl::Status SqliteGalleryStore::AddTemplates(const IdentityRecord& identity,
                                              const std::vector<TemplateRecord>& templates) {
  if (identity.identity_id.empty()) return absl::InvalidArgumentError("identity id is empty");
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl& impl = *impl_;
  sqlite::Transaction tx(impl.db.get());
  VF_RETURN_IF_ERROR(tx.Begin());
  impl.upsert_identity.BindText(1, identity.identity_id)
      .BindInt64(2, identity.created_unix_ms)
      .BindInt64(3, identity.updated_unix_ms);
  VF_RETURN_IF_ERROR(impl.upsert_identity.Run());
  // The record carries the identity's whole (merged) metadata, so replace what was stored.
  impl.delete_metadata.BindText(1, identity.identity_id);
  VF_RETURN_IF_ERROR(impl.delete_metadata.Run());
  for (const auto& [key, value] : identity.metadata) {
    impl.insert_metadata.BindText(1, identity.identity_id).BindText(2, key).BindText(3, value);
    VF_RETURN_IF_ERROR(impl.insert_metadata.Run());
  }
  for (const TemplateRecord& t : templates) {
    if (t.identity_id != identity.identity_id) {
      return absl::InvalidArgumentError(absl::StrCat("template '", t.template_id, "' belongs to identity '",
                                                     t.identity_id, "', not '", identity.identity_id, "'"));
    }
    impl.insert_template.BindText(1, t.template_id)
        .BindText(2, t.identity_id)
        .BindText(3, t.model_id)
        .BindBlob(4, t.embedding.data(), t.embedding.size() * sizeof(float))
        .BindInt64(5, t.created_unix_ms);
    VF_RETURN_IF_ERROR(impl.insert_template.Run());
  }
  return tx.Commit();
}

absl::Status SqliteGalleryStore::DeleteIdentity(const std::string& identity_id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl& impl = *impl_;
  {
    sqlite::Transaction tx(impl.db.get());
    VF_RETURN_IF_ERROR(tx.Begin());
    impl.delete_templates.BindText(1, identity_id);
    VF_RETURN_IF_ERROR(impl.delete_templates.Run());
    impl.delete_metadata.BindText(1, identity_id);
    VF_RETURN_IF_ERROR(impl.delete_metadata.Run());
    impl.delete_identity.BindText(1, identity_id);
    VF_RETURN_IF_ERROR(impl.delete_identity.Run());
    if (sqlite3_changes(impl.db->get()) == 0) {
      return absl::NotFoundError(absl::StrCat("no identity '", identity_id, "' in the gallery"));
    }
    VF_RETURN_IF_ERROR(tx.Commit());
  }
  // secure_delete zeroed the rows in the new page images, but older WAL frames still hold the pages as
  // they were; copying the WAL into the database and truncating it removes those copies. The delete is
  // committed either way, so a checkpoint blocked by a reader is not an error of the delete: the next
  // Delete or Checkpoint finishes the job.
  (void)impl.CheckpointLocked();
  return absl::OkStatus();
}

absl::Status SqliteGalleryStore::Checkpoint() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->CheckpointLocked();
}

}  // namespace veriface
