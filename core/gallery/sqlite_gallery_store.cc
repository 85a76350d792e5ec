#include "core/gallery/sqlite_gallery_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iterator>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/status_macros.h"
#include "core/gallery/face_points.h"
#include "core/gallery/model_switch.h"
#include "core/gallery/receipt_fingerprint.h"
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
// Migration i takes the schema from version i - 1 to i; a new file runs them all, so an upgraded file
// and a new one have the same schema by construction.
constexpr const char* kMigrations[] = {
    // 1: one gallery.
    R"sql(
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO schema_version(version) VALUES(0);
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
)sql",
    // 2: named galleries (everything so far goes to the default one) and receipts of writes that carried a
    // request id. Tables gain a key column, so they are rebuilt; RENAME updates the foreign keys.
    R"sql(
CREATE TABLE galleries(
  name TEXT PRIMARY KEY NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  max_templates INTEGER NOT NULL);
INSERT INTO galleries(name, created_unix_ms, max_templates)
  SELECT 'default', coalesce(min(created_unix_ms), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)), 0
  FROM identities;
CREATE TABLE identities_2(
  gallery TEXT NOT NULL REFERENCES galleries(name),
  identity_id TEXT NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  updated_unix_ms INTEGER NOT NULL,
  PRIMARY KEY(gallery, identity_id));
INSERT INTO identities_2 SELECT 'default', identity_id, created_unix_ms, updated_unix_ms FROM identities;
CREATE TABLE identity_metadata_2(
  gallery TEXT NOT NULL,
  identity_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY(gallery, identity_id, key),
  FOREIGN KEY(gallery, identity_id) REFERENCES identities_2(gallery, identity_id));
INSERT INTO identity_metadata_2 SELECT 'default', identity_id, key, value FROM identity_metadata;
CREATE TABLE templates_2(
  seq INTEGER PRIMARY KEY,
  template_id TEXT NOT NULL UNIQUE,
  gallery TEXT NOT NULL,
  identity_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  embedding BLOB NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  FOREIGN KEY(gallery, identity_id) REFERENCES identities_2(gallery, identity_id));
INSERT INTO templates_2 SELECT seq, template_id, 'default', identity_id, model_id, embedding, created_unix_ms
  FROM templates;
DROP TABLE templates;
DROP TABLE identity_metadata;
DROP TABLE identities;
ALTER TABLE identities_2 RENAME TO identities;
ALTER TABLE identity_metadata_2 RENAME TO identity_metadata;
ALTER TABLE templates_2 RENAME TO templates;
CREATE INDEX templates_by_identity ON templates(gallery, identity_id);
CREATE TABLE receipts(
  request_id TEXT PRIMARY KEY NOT NULL,
  gallery TEXT NOT NULL,
  kind INTEGER NOT NULL,
  fingerprint TEXT NOT NULL,
  template_ids TEXT NOT NULL,
  templates_deleted INTEGER NOT NULL,
  created_unix_ms INTEGER NOT NULL);
CREATE INDEX receipts_by_age ON receipts(created_unix_ms);
CREATE INDEX receipts_by_fingerprint ON receipts(fingerprint);
CREATE INDEX receipts_by_gallery ON receipts(gallery);
)sql",
    // 3: the face crop another model re-embeds (NULL where none was kept), and the re-embedded values a
    // migration keeps until it switches the store over.
    R"sql(
ALTER TABLE templates ADD COLUMN face_crop BLOB;
ALTER TABLE templates ADD COLUMN face_points BLOB;
CREATE TABLE reembedded(
  template_id TEXT NOT NULL REFERENCES templates(template_id) ON DELETE CASCADE,
  model_id TEXT NOT NULL,
  embedding BLOB NOT NULL,
  PRIMARY KEY(model_id, template_id));
CREATE INDEX reembedded_by_template ON reembedded(template_id);
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == SqliteGalleryStore::kSchemaVersion,
              "one migration per schema version");

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
  std::string path;
  std::mutex mutex;  // one transaction at a time on the connection
  sqlite::Statement gallery_exists;
  sqlite::Statement upsert_identity;
  sqlite::Statement upsert_metadata;
  sqlite::Statement insert_template;
  sqlite::Statement insert_receipt;
  sqlite::Statement find_receipt;

  absl::Status Configure(int busy_timeout_ms);
  absl::Status Migrate();
  absl::Status PrepareStatements();
  absl::StatusOr<std::string> Meta(const std::string& key);
  absl::Status SetMeta(const std::string& key, const std::string& value);
  absl::StatusOr<int64_t> TemplateCount();
  absl::StatusOr<bool> GalleryExists(const std::string& name);
  absl::StatusOr<std::optional<WriteReceipt>> FindReceiptLocked(const std::string& request_id);
  absl::Status InsertReceipt(const std::string& request_id, const std::string& gallery, const WriteReceipt& receipt);
  // Reads identities (with metadata and templates) of `gallery`, all of them or the one named.
  absl::StatusOr<std::vector<IdentityState>> ReadIdentities(const std::string& gallery, const std::string* only,
                                                            int64_t embedding_dim);
  absl::Status CheckpointLocked();
  // Removes the identity's rows and its enrolment receipts; the counts of templates and identities removed.
  absl::StatusOr<std::pair<int64_t, int64_t>> DeleteIdentityRows(const std::string& gallery,
                                                                 const std::string& identity_id);
  absl::StatusOr<std::vector<StoredFace>> FacesToReembed(const ModelTarget& target, int64_t limit);
  absl::Status PutReembedded(const ModelTarget& target, const std::vector<ReembeddedTemplate>& values);
  absl::StatusOr<MigrationProgress> Progress(const ModelTarget& target, int64_t max_listed);
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

absl::Status SqliteGalleryStore::Impl::Migrate() {
  sqlite::Transaction tx(db.get());
  VF_RETURN_IF_ERROR(tx.Begin());
  VF_ASSIGN_OR_RETURN(std::string tables, db->QueryText("SELECT count(*) FROM sqlite_schema WHERE type='table'"));
  int version = 0;
  if (tables != "0") {
    VF_ASSIGN_OR_RETURN(std::string has_version, db->QueryText("SELECT count(*) FROM sqlite_schema WHERE "
                                                               "type='table' AND name='schema_version'"));
    if (has_version == "0") {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", db->path(), "' is an SQLite database but not a Veriface gallery (it has no schema_version table)"));
    }
    VF_ASSIGN_OR_RETURN(std::string version_text, db->QueryText("SELECT max(version) FROM schema_version"));
    if (!absl::SimpleAtoi(version_text, &version) || version < 1 || version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("gallery database '", db->path(), "' has schema version '",
                                                        version_text, "'; this build reads versions 1 to ",
                                                        kSchemaVersion));
    }
  }
  for (int next = version + 1; next <= kSchemaVersion; ++next) {
    VF_RETURN_IF_ERROR(db->Exec(kMigrations[next - 1]));
    VF_RETURN_IF_ERROR(db->Exec(absl::StrCat("UPDATE schema_version SET version = ", next)));
  }
  // The whole upgrade commits or none of it does: a crash mid-way leaves the file at its old version.
  return tx.Commit();
}

absl::Status SqliteGalleryStore::Impl::PrepareStatements() {
  VF_ASSIGN_OR_RETURN(gallery_exists, db->Prepare("SELECT 1 FROM galleries WHERE name = ?1", /*persistent=*/true));
  VF_ASSIGN_OR_RETURN(upsert_identity,
                      db->Prepare("INSERT INTO identities(gallery, identity_id, created_unix_ms, updated_unix_ms) "
                                  "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(gallery, identity_id) DO UPDATE SET "
                                  "updated_unix_ms = excluded.updated_unix_ms",
                                  true));
  VF_ASSIGN_OR_RETURN(upsert_metadata,
                      db->Prepare("INSERT INTO identity_metadata(gallery, identity_id, key, value) "
                                  "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(gallery, identity_id, key) DO UPDATE SET "
                                  "value = excluded.value",
                                  true));
  VF_ASSIGN_OR_RETURN(insert_template,
                      db->Prepare("INSERT INTO templates(template_id, gallery, identity_id, model_id, embedding, "
                                  "created_unix_ms, face_crop, face_points) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                  true));
  VF_ASSIGN_OR_RETURN(insert_receipt, db->Prepare("INSERT INTO receipts(request_id, kind, fingerprint, template_ids, "
                                                  "templates_deleted, created_unix_ms, gallery) "
                                                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                                  true));
  VF_ASSIGN_OR_RETURN(find_receipt,
                      db->Prepare("SELECT kind, fingerprint, template_ids, templates_deleted, created_unix_ms "
                                  "FROM receipts WHERE request_id = ?1",
                                  true));
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

absl::StatusOr<bool> SqliteGalleryStore::Impl::GalleryExists(const std::string& name) {
  gallery_exists.BindText(1, name);
  VF_ASSIGN_OR_RETURN(bool row, gallery_exists.Step());
  gallery_exists.Reset();
  return row;
}

absl::StatusOr<std::optional<WriteReceipt>> SqliteGalleryStore::Impl::FindReceiptLocked(const std::string& request_id) {
  find_receipt.BindText(1, request_id);
  VF_ASSIGN_OR_RETURN(bool row, find_receipt.Step());
  if (!row) {
    find_receipt.Reset();  // a persistent statement must be reset before it is bound again
    return std::nullopt;
  }
  WriteReceipt receipt;
  receipt.kind = find_receipt.ColumnInt64(0) == 0 ? WriteReceipt::Kind::kEnroll : WriteReceipt::Kind::kDelete;
  receipt.fingerprint = find_receipt.ColumnText(1);
  receipt.template_ids = absl::StrSplit(find_receipt.ColumnText(2), ' ', absl::SkipEmpty());
  receipt.templates_deleted = find_receipt.ColumnInt64(3);
  receipt.created_unix_ms = find_receipt.ColumnInt64(4);
  find_receipt.Reset();
  return receipt;
}

absl::Status SqliteGalleryStore::Impl::InsertReceipt(const std::string& request_id, const std::string& gallery,
                                                     const WriteReceipt& receipt) {
  insert_receipt.BindText(7, gallery);
  insert_receipt.BindText(1, request_id)
      .BindInt64(2, receipt.kind == WriteReceipt::Kind::kEnroll ? 0 : 1)
      .BindText(3, receipt.fingerprint)
      .BindText(4, absl::StrJoin(receipt.template_ids, " "))
      .BindInt64(5, receipt.templates_deleted)
      .BindInt64(6, receipt.created_unix_ms);
  return insert_receipt.Run();
}

absl::StatusOr<std::vector<IdentityState>> SqliteGalleryStore::Impl::ReadIdentities(const std::string& gallery,
                                                                                    const std::string* only,
                                                                                    int64_t embedding_dim) {
  const std::string filter = only == nullptr ? "gallery = ?1" : "gallery = ?1 AND identity_id = ?2";
  const auto bind = [&](sqlite::Statement& stmt) {
    stmt.BindText(1, gallery);
    if (only != nullptr) stmt.BindText(2, *only);
  };
  std::vector<IdentityState> out;
  std::unordered_map<std::string, size_t> at;
  VF_ASSIGN_OR_RETURN(sqlite::Statement identities,
                      db->Prepare(absl::StrCat("SELECT identity_id, created_unix_ms, updated_unix_ms FROM identities "
                                               "WHERE ",
                                               filter, " ORDER BY identity_id")));
  bind(identities);
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(identities, [&]() -> absl::Status {
    IdentityState state;
    state.record.identity_id = identities.ColumnText(0);
    state.record.created_unix_ms = identities.ColumnInt64(1);
    state.record.updated_unix_ms = identities.ColumnInt64(2);
    at[state.record.identity_id] = out.size();
    out.push_back(std::move(state));
    return absl::OkStatus();
  }));
  VF_ASSIGN_OR_RETURN(
      sqlite::Statement metadata,
      db->Prepare(absl::StrCat("SELECT identity_id, key, value FROM identity_metadata WHERE ", filter)));
  bind(metadata);
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(metadata, [&]() -> absl::Status {
    auto it = at.find(metadata.ColumnText(0));
    if (it == at.end()) {
      return absl::DataLossError(
          absl::StrCat("gallery database '", path, "': metadata for unknown identity '", metadata.ColumnText(0), "'"));
    }
    out[it->second].record.metadata[metadata.ColumnText(1)] = metadata.ColumnText(2);
    return absl::OkStatus();
  }));
  VF_ASSIGN_OR_RETURN(sqlite::Statement templates,
                      db->Prepare(absl::StrCat("SELECT template_id, identity_id, model_id, embedding, created_unix_ms, "
                                               "face_crop IS NOT NULL FROM templates WHERE ",
                                               filter, " ORDER BY seq")));
  bind(templates);
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(templates, [&]() -> absl::Status {
    TemplateRecord t;
    t.template_id = templates.ColumnText(0);
    t.identity_id = templates.ColumnText(1);
    t.model_id = templates.ColumnText(2);
    t.created_unix_ms = templates.ColumnInt64(4);
    t.has_face_crop = templates.ColumnInt64(5) != 0;
    const int bytes = templates.ColumnBytes(3);
    if (bytes <= 0 || bytes % sizeof(float) != 0 ||
        (embedding_dim > 0 && bytes != embedding_dim * static_cast<int64_t>(sizeof(float)))) {
      return absl::DataLossError(absl::StrCat("gallery database '", path, "': template '", t.template_id,
                                              "' has an embedding of ", bytes, " bytes; expected ", embedding_dim,
                                              " float32 values"));
    }
    auto it = at.find(t.identity_id);
    if (it == at.end()) {
      return absl::DataLossError(absl::StrCat("gallery database '", path, "': template '", t.template_id,
                                              "' belongs to unknown identity '", t.identity_id, "'"));
    }
    t.embedding.resize(bytes / sizeof(float));
    std::memcpy(t.embedding.data(), templates.ColumnBlob(3), bytes);
    out[it->second].templates.push_back(std::move(t));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::pair<int64_t, int64_t>> SqliteGalleryStore::Impl::DeleteIdentityRows(
    const std::string& gallery, const std::string& identity_id) {
  int64_t changes[3] = {0, 0, 0};
  int i = 0;
  for (const char* sql : {"DELETE FROM templates WHERE gallery = ?1 AND identity_id = ?2",
                          "DELETE FROM identity_metadata WHERE gallery = ?1 AND identity_id = ?2",
                          "DELETE FROM identities WHERE gallery = ?1 AND identity_id = ?2"}) {
    VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, db->Prepare(sql));
    stmt.BindText(1, gallery).BindText(2, identity_id);
    VF_RETURN_IF_ERROR(stmt.Run());
    changes[i++] = sqlite3_changes(db->get());
  }
  // Its enrolments' receipts list its template ids: they go with it.
  VF_ASSIGN_OR_RETURN(sqlite::Statement receipts, db->Prepare("DELETE FROM receipts WHERE fingerprint = ?1"));
  receipts.BindText(1, ReceiptFingerprint(WriteReceipt::Kind::kEnroll, gallery, identity_id));
  VF_RETURN_IF_ERROR(receipts.Run());
  return std::make_pair(changes[0], changes[2]);
}

absl::StatusOr<std::vector<StoredFace>> SqliteGalleryStore::Impl::FacesToReembed(const ModelTarget& target,
                                                                                 int64_t limit) {
  VF_ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db->Prepare("SELECT t.template_id, t.gallery, t.identity_id, t.face_crop, t.face_points FROM templates t "
                  "WHERE t.face_crop IS NOT NULL AND t.model_id <> ?1 AND NOT EXISTS (SELECT 1 FROM reembedded r "
                  "WHERE r.model_id = ?1 AND r.template_id = t.template_id) ORDER BY t.seq LIMIT ?2"));
  stmt.BindText(1, target.model_id).BindInt64(2, limit);
  std::vector<StoredFace> out;
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(stmt, [&]() -> absl::Status {
    StoredFace face{stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnText(2), {}};
    const auto blob = [&](int column) {
      const char* data = static_cast<const char*>(stmt.ColumnBlob(column));
      return data == nullptr ? std::string() : std::string(data, static_cast<size_t>(stmt.ColumnBytes(column)));
    };
    face.crop.jpeg = blob(3);
    const absl::Status points = ReadFacePoints(blob(4), &face.crop);
    if (!points.ok()) {
      return absl::DataLossError(
          absl::StrCat("gallery database '", path, "': template '", face.template_id, "': ", points.message()));
    }
    out.push_back(std::move(face));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status SqliteGalleryStore::Impl::PutReembedded(const ModelTarget& target,
                                                     const std::vector<ReembeddedTemplate>& values) {
  VF_ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db->Prepare("INSERT INTO reembedded(template_id, model_id, embedding) SELECT ?1, ?2, ?3 WHERE EXISTS "
                  "(SELECT 1 FROM templates WHERE template_id = ?1) ON CONFLICT(model_id, template_id) DO UPDATE "
                  "SET embedding = excluded.embedding"));
  VF_RETURN_IF_ERROR(CheckReembeddedSizes(target, values));
  for (const ReembeddedTemplate& value : values) {
    stmt.BindText(1, value.template_id)
        .BindText(2, target.model_id)
        .BindBlob(3, value.embedding.data(), value.embedding.size() * sizeof(float));
    VF_RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<MigrationProgress> SqliteGalleryStore::Impl::Progress(const ModelTarget& target, int64_t max_listed) {
  MigrationProgress progress;
  progress.to_model = target.model_id;
  VF_ASSIGN_OR_RETURN(progress.from_model, Meta("model_id"));
  const auto count = [&](const char* sql) -> absl::StatusOr<int64_t> {
    VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, db->Prepare(sql));
    stmt.BindText(1, target.model_id);
    VF_ASSIGN_OR_RETURN(bool row, stmt.Step());
    return row ? stmt.ColumnInt64(0) : 0;
  };
  VF_ASSIGN_OR_RETURN(progress.templates, TemplateCount());
  VF_ASSIGN_OR_RETURN(progress.reembedded, count("SELECT count(*) FROM reembedded WHERE model_id = ?1"));
  VF_ASSIGN_OR_RETURN(progress.without_crop,
                      count("SELECT count(*) FROM templates WHERE face_crop IS NULL AND model_id <> ?1"));
  VF_ASSIGN_OR_RETURN(progress.identities_without_crop_count,
                      count("SELECT count(*) FROM (SELECT DISTINCT gallery, identity_id FROM templates "
                            "WHERE face_crop IS NULL AND model_id <> ?1)"));
  VF_ASSIGN_OR_RETURN(sqlite::Statement listed,
                      db->Prepare("SELECT gallery, identity_id, count(*) FROM templates WHERE face_crop IS NULL AND "
                                  "model_id <> ?1 GROUP BY gallery, identity_id ORDER BY gallery, identity_id "
                                  "LIMIT ?2"));
  listed.BindText(1, target.model_id).BindInt64(2, max_listed);
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(listed, [&]() -> absl::Status {
    progress.identities_without_crop.push_back({listed.ColumnText(0), listed.ColumnText(1), listed.ColumnInt64(2)});
    return absl::OkStatus();
  }));
  return progress;
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
  impl->path = path;
  VF_RETURN_IF_ERROR(impl->Migrate());
  VF_RETURN_IF_ERROR(impl->PrepareStatements());
  if (!existed) SyncParentDirectory(path);
  return std::unique_ptr<SqliteGalleryStore>(new SqliteGalleryStore(path, std::move(impl)));
}

SqliteGalleryStore::SqliteGalleryStore(std::string path, std::unique_ptr<Impl> impl)
    : path_(std::move(path)), impl_(std::move(impl)) {}

SqliteGalleryStore::~SqliteGalleryStore() = default;

absl::StatusOr<StoreSnapshot> SqliteGalleryStore::Load() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  sqlite::Db& db = *impl_->db;
  StoreSnapshot snapshot;
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
  VF_ASSIGN_OR_RETURN(sqlite::Statement galleries,
                      db.Prepare("SELECT name, created_unix_ms, max_templates FROM galleries ORDER BY name"));
  VF_RETURN_IF_ERROR(sqlite::ForEachRow(galleries, [&]() -> absl::Status {
    GalleryContents contents;
    contents.record = GalleryRecord{galleries.ColumnText(0), galleries.ColumnInt64(1), galleries.ColumnInt64(2)};
    snapshot.galleries.push_back(std::move(contents));
    return absl::OkStatus();
  }));
  for (GalleryContents& g : snapshot.galleries) {
    VF_ASSIGN_OR_RETURN(g.identities, impl_->ReadIdentities(g.record.name, nullptr, snapshot.embedding_dim));
  }
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
    return absl::FailedPreconditionError(absl::StrCat(
        "gallery database '", path_, "' holds ", templates, " templates made with model '", stored_model, "' (",
        stored_dim, "-D); refusing to use it with model '", model_id, "' (", embedding_dim,
        "-D): move it to the new model with veriface-migrate or point the server at another gallery file"));
  }
  VF_RETURN_IF_ERROR(impl_->SetMeta("model_id", model_id));
  VF_RETURN_IF_ERROR(impl_->SetMeta("embedding_dim", dim_text));
  return tx.Commit();
}

absl::Status SqliteGalleryStore::CreateGallery(const GalleryRecord& gallery) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, impl_->db->Prepare("INSERT INTO galleries(name, created_unix_ms, "
                                                                 "max_templates) VALUES(?1, ?2, ?3)"));
  stmt.BindText(1, gallery.name).BindInt64(2, gallery.created_unix_ms).BindInt64(3, gallery.max_templates);
  const absl::Status inserted = stmt.Run();
  if (absl::IsAlreadyExists(inserted)) {
    return absl::AlreadyExistsError(absl::StrCat("gallery '", gallery.name, "' exists"));
  }
  return inserted;
}

absl::StatusOr<int64_t> SqliteGalleryStore::DeleteGallery(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  sqlite::Db& db = *impl_->db;
  int64_t deleted = 0;
  {
    sqlite::Transaction tx(&db);
    VF_RETURN_IF_ERROR(tx.Begin());
    VF_ASSIGN_OR_RETURN(bool exists, impl_->GalleryExists(name));
    if (!exists) return absl::NotFoundError(absl::StrCat("no gallery '", name, "'"));
    // Templates first, so that the count of the first statement is the number of templates removed.
    constexpr const char* kDeletes[] = {
        "DELETE FROM templates WHERE gallery = ?1", "DELETE FROM identity_metadata WHERE gallery = ?1",
        "DELETE FROM identities WHERE gallery = ?1", "DELETE FROM receipts WHERE gallery = ?1",
        "DELETE FROM galleries WHERE name = ?1"};
    for (size_t i = 0; i < std::size(kDeletes); ++i) {
      VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, db.Prepare(kDeletes[i]));
      stmt.BindText(1, name);
      VF_RETURN_IF_ERROR(stmt.Run());
      if (i == 0) deleted = sqlite3_changes(db.get());
    }
    VF_RETURN_IF_ERROR(tx.Commit());
  }
  (void)impl_->CheckpointLocked();  // as in DeleteIdentity
  return deleted;
}

absl::StatusOr<IdentityState> SqliteGalleryStore::AddTemplates(const TemplateWrite& write) {
  const IdentityRecord& identity = write.identity;
  if (identity.identity_id.empty()) return absl::InvalidArgumentError("identity id is empty");
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl& impl = *impl_;
  sqlite::Transaction tx(impl.db.get());
  VF_RETURN_IF_ERROR(tx.Begin());
  VF_ASSIGN_OR_RETURN(bool exists, impl.GalleryExists(write.gallery));
  if (!exists) return absl::NotFoundError(absl::StrCat("no gallery '", write.gallery, "'"));
  if (!write.request_id.empty()) {
    VF_ASSIGN_OR_RETURN(auto earlier, impl.FindReceiptLocked(write.request_id));
    if (earlier.has_value()) {
      return absl::AlreadyExistsError(absl::StrCat("request id '", write.request_id, "' has a receipt"));
    }
  }
  // A migration may have switched the file to another model since this process opened it.
  VF_ASSIGN_OR_RETURN(const std::string bound_model, impl.Meta("model_id"));
  for (const TemplateRecord& t : write.templates) {
    if (!bound_model.empty() && t.model_id != bound_model) {
      return absl::FailedPreconditionError(absl::StrCat("gallery database '", path_, "' is bound to model '",
                                                        bound_model, "', not this server's '", t.model_id,
                                                        "' (a migration switched it): restart with that model"));
    }
  }
  impl.upsert_identity.BindText(1, write.gallery)
      .BindText(2, identity.identity_id)
      .BindInt64(3, identity.created_unix_ms)
      .BindInt64(4, identity.updated_unix_ms);
  VF_RETURN_IF_ERROR(impl.upsert_identity.Run());
  for (const auto& [key, value] : identity.metadata) {
    impl.upsert_metadata.BindText(1, write.gallery)
        .BindText(2, identity.identity_id)
        .BindText(3, key)
        .BindText(4, value);
    VF_RETURN_IF_ERROR(impl.upsert_metadata.Run());
  }
  for (const TemplateRecord& t : write.templates) {
    if (t.identity_id != identity.identity_id) {
      return absl::InvalidArgumentError(absl::StrCat("template '", t.template_id, "' belongs to identity '",
                                                     t.identity_id, "', not '", identity.identity_id, "'"));
    }
    impl.insert_template.BindText(1, t.template_id)
        .BindText(2, write.gallery)
        .BindText(3, t.identity_id)
        .BindText(4, t.model_id)
        .BindBlob(5, t.embedding.data(), t.embedding.size() * sizeof(float))
        .BindInt64(6, t.created_unix_ms);
    if (t.face_crop.jpeg.empty()) {
      impl.insert_template.BindNull(7).BindNull(8);
    } else {
      const std::string points = FacePointsBytes(t.face_crop);
      impl.insert_template.BindBlob(7, t.face_crop.jpeg.data(), t.face_crop.jpeg.size())
          .BindBlob(8, points.data(), points.size());
    }
    VF_RETURN_IF_ERROR(impl.insert_template.Run());
  }
  if (!write.request_id.empty()) VF_RETURN_IF_ERROR(impl.InsertReceipt(write.request_id, write.gallery, write.receipt));
  VF_ASSIGN_OR_RETURN(std::vector<IdentityState> states, impl.ReadIdentities(write.gallery, &identity.identity_id, 0));
  if (states.size() != 1) return absl::InternalError("the identity just written cannot be read back");
  VF_RETURN_IF_ERROR(tx.Commit());
  return std::move(states[0]);
}

absl::StatusOr<int64_t> SqliteGalleryStore::DeleteIdentity(const std::string& gallery, const std::string& identity_id,
                                                           const std::string& request_id, const WriteReceipt& receipt) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl& impl = *impl_;
  int64_t deleted = 0;
  {
    sqlite::Transaction tx(impl.db.get());
    VF_RETURN_IF_ERROR(tx.Begin());
    if (!request_id.empty()) {
      VF_ASSIGN_OR_RETURN(auto earlier, impl.FindReceiptLocked(request_id));
      if (earlier.has_value())
        return absl::AlreadyExistsError(absl::StrCat("request id '", request_id, "' has a receipt"));
    }
    VF_ASSIGN_OR_RETURN(const auto removed, impl.DeleteIdentityRows(gallery, identity_id));
    if (removed.second == 0) {
      return absl::NotFoundError(absl::StrCat("no identity '", identity_id, "' in gallery '", gallery, "'"));
    }
    deleted = removed.first;
    if (!request_id.empty()) {
      WriteReceipt done = receipt;
      done.templates_deleted = deleted;
      VF_RETURN_IF_ERROR(impl.InsertReceipt(request_id, gallery, done));
    }
    VF_RETURN_IF_ERROR(tx.Commit());
  }
  // secure_delete zeroed the rows in the new page images, but older WAL frames still hold the pages as
  // they were; copying the WAL into the database and truncating it removes those copies. The delete is
  // committed either way, so a checkpoint blocked by a reader is not an error of the delete: the next
  // Delete or Checkpoint finishes the job.
  (void)impl.CheckpointLocked();
  return deleted;
}

absl::StatusOr<std::optional<WriteReceipt>> SqliteGalleryStore::FindReceipt(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->FindReceiptLocked(request_id);
}

absl::Status SqliteGalleryStore::PruneReceipts(int64_t unix_ms) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  VF_ASSIGN_OR_RETURN(sqlite::Statement stmt, impl_->db->Prepare("DELETE FROM receipts WHERE created_unix_ms < ?1"));
  stmt.BindInt64(1, unix_ms);
  VF_RETURN_IF_ERROR(stmt.Run());
  (void)impl_->CheckpointLocked();  // as in DeleteIdentity: no copy of a pruned receipt stays in the WAL
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StoredFace>> SqliteGalleryStore::FacesToReembed(const ModelTarget& target, int64_t limit) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->FacesToReembed(target, limit);
}

absl::Status SqliteGalleryStore::PutReembedded(const ModelTarget& target,
                                               const std::vector<ReembeddedTemplate>& values) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  sqlite::Transaction tx(impl_->db.get());
  VF_RETURN_IF_ERROR(tx.Begin());
  VF_RETURN_IF_ERROR(impl_->PutReembedded(target, values));
  return tx.Commit();
}

absl::StatusOr<MigrationProgress> SqliteGalleryStore::Progress(const ModelTarget& target, int64_t max_listed) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  sqlite::Transaction tx(impl_->db.get());  // one consistent view of the counts
  VF_RETURN_IF_ERROR(tx.Begin());
  VF_ASSIGN_OR_RETURN(MigrationProgress progress, impl_->Progress(target, max_listed));
  VF_RETURN_IF_ERROR(tx.Commit());
  return progress;
}

absl::StatusOr<int64_t> SqliteGalleryStore::SwitchModel(const ModelTarget& target, bool drop_without_crop,
                                                        const EmbedFaces& embed_rest) {
  VF_RETURN_IF_ERROR(CheckModelTarget(target));
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl& impl = *impl_;
  sqlite::Db& db = *impl.db;
  int64_t dropped = 0;
  {
    // BEGIN IMMEDIATE: the server's writes wait (busy timeout) or fail until this commits, and then find
    // the file bound to the new model.
    sqlite::Transaction tx(&db);
    VF_RETURN_IF_ERROR(tx.Begin());
    VF_ASSIGN_OR_RETURN(const std::string bound, impl.Meta("model_id"));
    if (bound == target.model_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("gallery database '", path_, "' is bound to model '", target.model_id, "' already"));
    }
    // What the server enrolled since the last pass.
    VF_RETURN_IF_ERROR(EmbedRemaining(
        [&](int64_t limit) { return impl.FacesToReembed(target, limit); }, embed_rest,
        [&](const std::vector<ReembeddedTemplate>& values) { return impl.PutReembedded(target, values); }));
    VF_ASSIGN_OR_RETURN(const MigrationProgress progress, impl.Progress(target, 0));
    if (progress.without_crop > 0) {
      if (!drop_without_crop) return CroplessTemplatesError(absl::StrCat("gallery database '", path_, "'"), progress);
      // Identities left with no template go as DeleteIdentity removes them.
      VF_ASSIGN_OR_RETURN(sqlite::Statement emptied,
                          db.Prepare("SELECT gallery, identity_id FROM identities i WHERE NOT EXISTS (SELECT 1 FROM "
                                     "templates t WHERE t.gallery = i.gallery AND t.identity_id = i.identity_id "
                                     "AND t.face_crop IS NOT NULL)"));
      std::vector<std::pair<std::string, std::string>> gone;
      VF_RETURN_IF_ERROR(sqlite::ForEachRow(emptied, [&]() -> absl::Status {
        gone.emplace_back(emptied.ColumnText(0), emptied.ColumnText(1));
        return absl::OkStatus();
      }));
      for (const auto& [gallery, identity_id] : gone) {
        VF_ASSIGN_OR_RETURN(const auto removed, impl.DeleteIdentityRows(gallery, identity_id));
        dropped += removed.first;
      }
      VF_RETURN_IF_ERROR(db.Exec("DELETE FROM templates WHERE face_crop IS NULL"));
      dropped += sqlite3_changes(db.get());
    }
    VF_ASSIGN_OR_RETURN(sqlite::Statement missing,
                        db.Prepare("SELECT count(*) FROM templates t WHERE NOT EXISTS (SELECT 1 FROM reembedded r "
                                   "WHERE r.model_id = ?1 AND r.template_id = t.template_id)"));
    missing.BindText(1, target.model_id);
    VF_ASSIGN_OR_RETURN(bool row, missing.Step());
    if (row && missing.ColumnInt64(0) > 0) {
      return absl::InternalError(
          absl::StrCat(missing.ColumnInt64(0), " templates have no re-embedding after the last pass"));
    }
    missing.Reset();
    VF_ASSIGN_OR_RETURN(sqlite::Statement swap,
                        db.Prepare("UPDATE templates SET model_id = ?1, embedding = (SELECT r.embedding FROM "
                                   "reembedded r WHERE r.model_id = ?1 AND r.template_id = templates.template_id)"));
    swap.BindText(1, target.model_id);
    VF_RETURN_IF_ERROR(swap.Run());
    VF_RETURN_IF_ERROR(db.Exec("DELETE FROM reembedded"));
    VF_RETURN_IF_ERROR(impl.SetMeta("model_id", target.model_id));
    VF_RETURN_IF_ERROR(impl.SetMeta("embedding_dim", absl::StrCat(target.embedding_dim)));
    VF_RETURN_IF_ERROR(tx.Commit());
  }
  (void)impl.CheckpointLocked();  // as in DeleteIdentity: the old embeddings and dropped rows leave the WAL
  return dropped;
}

absl::Status SqliteGalleryStore::Checkpoint() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->CheckpointLocked();
}

}  // namespace veriface
