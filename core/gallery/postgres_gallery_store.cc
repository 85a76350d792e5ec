#include "core/gallery/postgres_gallery_store.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/status_macros.h"
#include "core/gallery/face_points.h"
#include "core/gallery/model_switch.h"
#include "core/gallery/receipt_fingerprint.h"
#include "core/postgres/pg_connection.h"

namespace veriface {
namespace {

using pg::Params;
using pg::Result;
using pg::Transaction;

static_assert(sizeof(float) == 4, "embeddings are stored as float32");

// Every replica LISTENs here; the payload is the writer's origin.
constexpr char kChannel[] = "veriface_gallery";
// pg_advisory_xact_lock key of the schema migrations ("vfschema" in ASCII).
constexpr int64_t kMigrationLock = 0x7666736368656d61;
// How often ChangesSince prunes the change log.
constexpr std::chrono::minutes kPruneEvery{10};

// Migration i takes the schema from version i - 1 to i.
constexpr const char* kMigrations[] = {
    // 1: everything. template_count keeps each gallery's size in its row, so the limit is checked inside
    // the write's transaction without counting, and that row lock orders a gallery's writers.
    R"sql(
CREATE TABLE veriface_meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE galleries(
  name text PRIMARY KEY,
  created_unix_ms bigint NOT NULL,
  max_templates bigint NOT NULL,
  template_count bigint NOT NULL DEFAULT 0);
CREATE TABLE identities(
  gallery text NOT NULL REFERENCES galleries(name) ON DELETE CASCADE,
  identity_id text NOT NULL,
  created_unix_ms bigint NOT NULL,
  updated_unix_ms bigint NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY(gallery, identity_id));
CREATE TABLE templates(
  seq bigserial UNIQUE,
  template_id text PRIMARY KEY,
  gallery text NOT NULL,
  identity_id text NOT NULL,
  model_id text NOT NULL,
  embedding bytea NOT NULL,
  created_unix_ms bigint NOT NULL,
  FOREIGN KEY(gallery, identity_id) REFERENCES identities(gallery, identity_id) ON DELETE CASCADE);
CREATE INDEX templates_by_identity ON templates(gallery, identity_id, seq);
CREATE TABLE receipts(
  request_id text PRIMARY KEY,
  gallery text NOT NULL,
  kind smallint NOT NULL,
  fingerprint text NOT NULL,
  template_ids text NOT NULL,
  templates_deleted bigint NOT NULL,
  created_unix_ms bigint NOT NULL);
CREATE INDEX receipts_by_age ON receipts(created_unix_ms);
CREATE INDEX receipts_by_fingerprint ON receipts(fingerprint);
CREATE INDEX receipts_by_gallery ON receipts(gallery);
CREATE TABLE changes(
  seq bigserial PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  origin text NOT NULL,
  gallery text NOT NULL,
  identity_id text);
CREATE INDEX changes_by_txid ON changes(txid);
CREATE INDEX changes_by_age ON changes(at);
)sql",
    // 2: the face crop another model re-embeds (NULL where none was kept), and the re-embedded values a
    // migration keeps until it switches the store over.
    R"sql(
ALTER TABLE templates ADD COLUMN face_crop bytea;
ALTER TABLE templates ADD COLUMN face_points bytea;
CREATE TABLE reembedded(
  template_id text NOT NULL REFERENCES templates(template_id) ON DELETE CASCADE,
  model_id text NOT NULL,
  embedding bytea NOT NULL,
  PRIMARY KEY(model_id, template_id));
CREATE INDEX reembedded_by_template ON reembedded(template_id);
)sql",
};
static_assert(std::size(kMigrations) == PostgresGalleryStore::kSchemaVersion, "one migration per schema version");

std::string RandomOrigin() {
  std::random_device device;
  return absl::StrFormat("%08x%08x", device(), device());
}

// xid8 values are 64-bit counters; their text form is decimal.
uint64_t XidOf(const std::string& text) {
  uint64_t v = 0;
  return absl::SimpleAtoi(text, &v) ? v : 0;
}

std::string MetadataJson(const std::map<std::string, std::string>& metadata) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : metadata) j[key] = value;
  return j.dump();
}

absl::StatusOr<std::map<std::string, std::string>> MetadataFromJson(const std::string& text) {
  std::map<std::string, std::string> out;
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError(absl::StrCat("identity metadata is not a JSON object: ", text));
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) return absl::DataLossError(absl::StrCat("metadata value of '", key, "' is not text"));
    out[key] = value.get<std::string>();
  }
  return out;
}

WriteReceipt::Kind KindOf(int64_t n) { return n == 0 ? WriteReceipt::Kind::kEnroll : WriteReceipt::Kind::kDelete; }
int64_t KindNumber(WriteReceipt::Kind kind) { return kind == WriteReceipt::Kind::kEnroll ? 0 : 1; }

// The identities and templates of some galleries as one SQL source of (gallery, identity_id) pairs, in
// the order of `templates_sql` (which must select gallery, identity_id, template_id, model_id, embedding,
// created_unix_ms, whether it keeps a face crop) and `identities_sql` (gallery, identity_id, created_unix_ms,
// updated_unix_ms, metadata::text).
struct StateReader {
  pg::Connection* db;
  int64_t embedding_dim;
  // (gallery, identity) -> state, in identity order per gallery.
  std::map<std::pair<std::string, std::string>, IdentityState> states;

  absl::Status Read(const std::string& identities_sql, const std::string& templates_sql, const Params& params) {
    VF_ASSIGN_OR_RETURN(const Result ids, db->Exec(identities_sql, params));
    for (int r = 0; r < ids.rows(); ++r) {
      IdentityState state;
      state.record.identity_id = ids.Text(r, 1);
      state.record.created_unix_ms = ids.Int64(r, 2);
      state.record.updated_unix_ms = ids.Int64(r, 3);
      VF_ASSIGN_OR_RETURN(state.record.metadata, MetadataFromJson(ids.Text(r, 4)));
      states[{ids.Text(r, 0), state.record.identity_id}] = std::move(state);
    }
    VF_ASSIGN_OR_RETURN(const Result ts, db->Exec(templates_sql, params, /*binary_results=*/true));
    for (int r = 0; r < ts.rows(); ++r) {
      TemplateRecord t;
      t.identity_id = ts.Text(r, 1);
      t.template_id = ts.Text(r, 2);
      t.model_id = ts.Text(r, 3);
      const std::string bytes = ts.Bytes(r, 4);
      t.created_unix_ms = ts.Int64(r, 5);
      t.has_face_crop = ts.Int64(r, 6) != 0;
      if (bytes.empty() || bytes.size() % sizeof(float) != 0 ||
          (embedding_dim > 0 && static_cast<int64_t>(bytes.size()) != embedding_dim * 4)) {
        return absl::DataLossError(absl::StrCat("template '", t.template_id, "' has an embedding of ", bytes.size(),
                                                " bytes; expected ", embedding_dim, " float32 values"));
      }
      t.embedding.resize(bytes.size() / sizeof(float));
      std::memcpy(t.embedding.data(), bytes.data(), bytes.size());
      auto it = states.find({ts.Text(r, 0), t.identity_id});
      if (it == states.end()) {
        return absl::DataLossError(
            absl::StrCat("template '", t.template_id, "' belongs to unknown identity '", t.identity_id, "'"));
      }
      it->second.templates.push_back(std::move(t));
    }
    return absl::OkStatus();
  }
};

constexpr char kIdentityColumns[] = "i.gallery, i.identity_id, i.created_unix_ms, i.updated_unix_ms, i.metadata::text";
constexpr char kTemplateColumns[] =
    "t.gallery, t.identity_id, t.template_id, t.model_id, t.embedding, t.created_unix_ms, t.face_crop IS NOT NULL";

// Everything, inside the caller's repeatable-read transaction.
absl::StatusOr<StoreSnapshot> ReadEverything(pg::Connection* db) {
  StoreSnapshot snapshot;
  VF_ASSIGN_OR_RETURN(const Result meta, db->Exec("SELECT key, value FROM veriface_meta"));
  for (int r = 0; r < meta.rows(); ++r) {
    if (meta.Text(r, 0) == "model_id") snapshot.model_id = meta.Text(r, 1);
    if (meta.Text(r, 0) == "embedding_dim" && !absl::SimpleAtoi(meta.Text(r, 1), &snapshot.embedding_dim)) {
      return absl::DataLossError(absl::StrCat("embedding_dim '", meta.Text(r, 1), "' is not a number"));
    }
  }
  VF_ASSIGN_OR_RETURN(const Result galleries,
                      db->Exec("SELECT name, created_unix_ms, max_templates FROM galleries ORDER BY name"));
  std::map<std::string, size_t> at;
  for (int r = 0; r < galleries.rows(); ++r) {
    GalleryContents g;
    g.record = GalleryRecord{galleries.Text(r, 0), galleries.Int64(r, 1), galleries.Int64(r, 2)};
    at[g.record.name] = snapshot.galleries.size();
    snapshot.galleries.push_back(std::move(g));
  }
  StateReader reader{db, snapshot.embedding_dim, {}};
  VF_RETURN_IF_ERROR(reader.Read(absl::StrCat("SELECT ", kIdentityColumns, " FROM identities i"),
                                 absl::StrCat("SELECT ", kTemplateColumns, " FROM templates t ORDER BY t.seq"), {}));
  for (auto& [key, state] : reader.states) {
    auto it = at.find(key.first);
    if (it == at.end()) return absl::DataLossError(absl::StrCat("identity of unknown gallery '", key.first, "'"));
    snapshot.galleries[it->second].identities.push_back(std::move(state));
  }
  return snapshot;
}

// The oldest transaction still running, as of the caller's snapshot: the change-log boundary.
absl::StatusOr<std::string> Horizon(pg::Connection* db) {
  VF_ASSIGN_OR_RETURN(const Result r, db->Exec("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"));
  return r.Text(0, 0);
}

// Appends to the change log and wakes the other replicas when the caller's transaction commits.
absl::Status LogChange(pg::Connection* db, const std::string& origin, const std::string& gallery,
                       const std::string* identity_id) {
  Params params;
  params.Text(origin).Text(gallery);
  if (identity_id == nullptr) {
    params.Null();
  } else {
    params.Text(*identity_id);
  }
  VF_RETURN_IF_ERROR(db->Exec("INSERT INTO changes(origin, gallery, identity_id) VALUES($1, $2, $3)", params).status());
  return db->Exec("SELECT pg_notify($1, $2)", Params().Text(kChannel).Text(origin)).status();
}

// Writes the receipt first, so that a retry on another replica waits on its row and then sees it.
// ALREADY_EXISTS when one is there.
absl::Status ClaimRequestId(pg::Connection* db, const std::string& request_id, const std::string& gallery,
                            const WriteReceipt& receipt) {
  VF_ASSIGN_OR_RETURN(const Result claimed,
                      db->Exec("INSERT INTO receipts(request_id, kind, fingerprint, template_ids, templates_deleted, "
                               "created_unix_ms, gallery) VALUES($1, $2, $3, $4, $5, $6, $7) "
                               "ON CONFLICT (request_id) DO NOTHING RETURNING 1",
                               Params()
                                   .Text(request_id)
                                   .Int64(KindNumber(receipt.kind))
                                   .Text(receipt.fingerprint)
                                   .Text(absl::StrJoin(receipt.template_ids, " "))
                                   .Int64(receipt.templates_deleted)
                                   .Int64(receipt.created_unix_ms)
                                   .Text(gallery)));
  if (claimed.rows() == 0) return absl::AlreadyExistsError(absl::StrCat("request id '", request_id, "' has a receipt"));
  return absl::OkStatus();
}

// ---- Migration steps, on the caller's connection (and transaction, where it holds one).

absl::StatusOr<std::vector<StoredFace>> FacesToReembedOn(pg::Connection* db, const ModelTarget& target, int64_t limit) {
  VF_ASSIGN_OR_RETURN(
      const Result r,
      db->Exec("SELECT t.template_id, t.gallery, t.identity_id, t.face_crop, t.face_points FROM templates t "
               "WHERE t.face_crop IS NOT NULL AND t.model_id <> $1 AND NOT EXISTS (SELECT 1 FROM reembedded x "
               "WHERE x.model_id = $1 AND x.template_id = t.template_id) ORDER BY t.seq LIMIT $2",
               Params().Text(target.model_id).Int64(limit), /*binary_results=*/true));
  std::vector<StoredFace> out;
  for (int i = 0; i < r.rows(); ++i) {
    StoredFace face{r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), {}};
    face.crop.jpeg = r.Bytes(i, 3);
    const absl::Status points = ReadFacePoints(r.Bytes(i, 4), &face.crop);
    if (!points.ok()) return absl::DataLossError(absl::StrCat("template '", face.template_id, "': ", points.message()));
    out.push_back(std::move(face));
  }
  return out;
}

absl::Status PutReembeddedOn(pg::Connection* db, const ModelTarget& target,
                             const std::vector<ReembeddedTemplate>& values) {
  VF_RETURN_IF_ERROR(CheckReembeddedSizes(target, values));
  for (const ReembeddedTemplate& value : values) {
    // A template deleted meanwhile has no row to join: nothing is kept for it.
    VF_RETURN_IF_ERROR(db->Exec("INSERT INTO reembedded(template_id, model_id, embedding) SELECT template_id, $2, $3 "
                                "FROM templates WHERE template_id = $1 ON CONFLICT (model_id, template_id) DO UPDATE "
                                "SET embedding = excluded.embedding",
                                Params()
                                    .Text(value.template_id)
                                    .Text(target.model_id)
                                    .Bytes(value.embedding.data(), value.embedding.size() * sizeof(float)))
                           .status());
  }
  return absl::OkStatus();
}

absl::StatusOr<MigrationProgress> ProgressOn(pg::Connection* db, const ModelTarget& target, int64_t max_listed) {
  MigrationProgress progress;
  progress.to_model = target.model_id;
  const Params model = Params().Text(target.model_id);
  VF_ASSIGN_OR_RETURN(
      const Result counts,
      db->Exec("SELECT (SELECT value FROM veriface_meta WHERE key = 'model_id'), (SELECT count(*) FROM templates), "
               "(SELECT count(*) FROM reembedded WHERE model_id = $1), "
               "(SELECT count(*) FROM templates WHERE face_crop IS NULL AND model_id <> $1), "
               "(SELECT count(*) FROM (SELECT DISTINCT gallery, identity_id FROM templates "
               "WHERE face_crop IS NULL AND model_id <> $1) d)",
               model));
  progress.from_model = counts.Text(0, 0);
  progress.templates = counts.Int64(0, 1);
  progress.reembedded = counts.Int64(0, 2);
  progress.without_crop = counts.Int64(0, 3);
  progress.identities_without_crop_count = counts.Int64(0, 4);
  VF_ASSIGN_OR_RETURN(const Result listed,
                      db->Exec("SELECT gallery, identity_id, count(*) FROM templates WHERE face_crop IS NULL AND "
                               "model_id <> $1 GROUP BY gallery, identity_id ORDER BY gallery, identity_id LIMIT $2",
                               Params().Text(target.model_id).Int64(max_listed)));
  for (int i = 0; i < listed.rows(); ++i) {
    progress.identities_without_crop.push_back({listed.Text(i, 0), listed.Text(i, 1), listed.Int64(i, 2)});
  }
  return progress;
}

}  // namespace

PostgresGalleryStore::PostgresGalleryStore(PostgresStoreOptions options)
    : options_(std::move(options)), origin_(RandomOrigin()), last_prune_(std::chrono::steady_clock::now()) {}

PostgresGalleryStore::~PostgresGalleryStore() = default;

absl::StatusOr<std::unique_ptr<PostgresGalleryStore>> PostgresGalleryStore::Open(PostgresStoreOptions options) {
  if (options.conninfo.empty()) return absl::InvalidArgumentError("PostgreSQL connection string is empty");
  std::unique_ptr<PostgresGalleryStore> store(new PostgresGalleryStore(std::move(options)));
  {
    std::lock_guard<std::mutex> lock(store->mutex_);
    VF_RETURN_IF_ERROR(store->Migrate());
  }
  return store;
}

absl::StatusOr<pg::Connection*> PostgresGalleryStore::Db() {
  if (db_ != nullptr && db_->healthy()) return db_.get();
  db_.reset();
  pg::ConnectOptions connect;
  connect.conninfo = options_.conninfo;
  connect.password = options_.password;
  connect.connect_timeout_s = options_.connect_timeout_s;
  connect.statement_timeout_ms = options_.statement_timeout_ms;
  connect.application_name = "veriface-gallery";
  VF_ASSIGN_OR_RETURN(db_, pg::Connection::Connect(connect));
  return db_.get();
}

absl::Status PostgresGalleryStore::Checked(absl::Status status) {
  if (absl::IsUnavailable(status)) db_.reset();
  return status;
}

absl::Status PostgresGalleryStore::Migrate() {
  const auto run = [&]() -> absl::Status {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    // Replicas starting together queue here; the first one migrates, the others find it done.
    VF_RETURN_IF_ERROR(db->Exec("SELECT pg_advisory_xact_lock($1)", Params().Int64(kMigrationLock)).status());
    VF_RETURN_IF_ERROR(db->ExecScript("CREATE TABLE IF NOT EXISTS veriface_schema_version(version integer NOT NULL)"));
    VF_ASSIGN_OR_RETURN(const Result v, db->Exec("SELECT coalesce(max(version), 0) FROM veriface_schema_version"));
    const int64_t version = v.Int64(0, 0);
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("the gallery database ", db->describe(), " has schema version ",
                                                        version, "; this build knows versions up to ", kSchemaVersion,
                                                        ": upgrade this replica"));
    }
    for (int64_t next = version + 1; next <= kSchemaVersion; ++next) {
      VF_RETURN_IF_ERROR(db->ExecScript(kMigrations[next - 1]));
      VF_RETURN_IF_ERROR(
          db->Exec("INSERT INTO veriface_schema_version(version) VALUES($1)", Params().Int64(next)).status());
    }
    return tx.Commit();
  };
  return Checked(run());
}

absl::StatusOr<StoreSnapshot> PostgresGalleryStore::Load() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<StoreSnapshot> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin(Transaction::Isolation::kRepeatableRead, /*read_only=*/true));
    // First, so that the horizon belongs to the snapshot the reads below see.
    VF_ASSIGN_OR_RETURN(std::string cursor, Horizon(db));
    VF_ASSIGN_OR_RETURN(StoreSnapshot snapshot, ReadEverything(db));
    snapshot.cursor = std::move(cursor);
    VF_RETURN_IF_ERROR(tx.Commit());
    return snapshot;
  };
  auto snapshot = run();
  VF_RETURN_IF_ERROR(Checked(snapshot.status()));
  return snapshot;
}

absl::Status PostgresGalleryStore::BindModel(const std::string& model_id, int64_t embedding_dim) {
  if (model_id.empty()) return absl::InvalidArgumentError("model id is empty");
  if (embedding_dim <= 0) return absl::InvalidArgumentError(absl::StrCat("embedding_dim ", embedding_dim, " <= 0"));
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::Status {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    VF_RETURN_IF_ERROR(db->Exec("SELECT pg_advisory_xact_lock($1)", Params().Int64(kMigrationLock + 1)).status());
    VF_ASSIGN_OR_RETURN(const Result meta, db->Exec("SELECT key, value FROM veriface_meta WHERE key IN "
                                                    "('model_id', 'embedding_dim')"));
    std::string stored_model, stored_dim;
    for (int r = 0; r < meta.rows(); ++r) (meta.Text(r, 0) == "model_id" ? stored_model : stored_dim) = meta.Text(r, 1);
    const std::string dim_text = absl::StrCat(embedding_dim);
    if (stored_model == model_id && stored_dim == dim_text) return absl::OkStatus();
    VF_ASSIGN_OR_RETURN(const Result count, db->Exec("SELECT count(*) FROM templates"));
    if (count.Int64(0, 0) > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the gallery database ", db->describe(), " holds ", count.Int64(0, 0), " templates made with model '",
          stored_model, "' (", stored_dim, "-D); refusing to use it with model '", model_id, "' (", embedding_dim,
          "-D): every replica of one gallery must serve the same model (veriface-migrate moves a gallery to another)"));
    }
    for (const auto& [key, value] :
         {std::pair<std::string, std::string>{"model_id", model_id}, {"embedding_dim", dim_text}}) {
      VF_RETURN_IF_ERROR(db->Exec("INSERT INTO veriface_meta(key, value) VALUES($1, $2) "
                                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                  Params().Text(key).Text(value))
                             .status());
    }
    return tx.Commit();
  };
  return Checked(run());
}

absl::Status PostgresGalleryStore::CreateGallery(const GalleryRecord& gallery) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::Status {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    VF_ASSIGN_OR_RETURN(
        const Result created,
        db->Exec("INSERT INTO galleries(name, created_unix_ms, max_templates) VALUES($1, $2, $3) "
                 "ON CONFLICT (name) DO NOTHING RETURNING 1",
                 Params().Text(gallery.name).Int64(gallery.created_unix_ms).Int64(gallery.max_templates)));
    if (created.rows() == 0) return absl::AlreadyExistsError(absl::StrCat("gallery '", gallery.name, "' exists"));
    VF_RETURN_IF_ERROR(LogChange(db, origin_, gallery.name, nullptr));
    return tx.Commit();
  };
  return Checked(run());
}

absl::StatusOr<int64_t> PostgresGalleryStore::DeleteGallery(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<int64_t> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    VF_ASSIGN_OR_RETURN(const Result deleted, db->Exec("DELETE FROM galleries WHERE name = $1 RETURNING template_count",
                                                       Params().Text(name)));
    if (deleted.rows() == 0) return absl::NotFoundError(absl::StrCat("no gallery '", name, "'"));
    VF_RETURN_IF_ERROR(db->Exec("DELETE FROM receipts WHERE gallery = $1", Params().Text(name)).status());
    VF_RETURN_IF_ERROR(LogChange(db, origin_, name, nullptr));
    VF_RETURN_IF_ERROR(tx.Commit());
    return deleted.Int64(0, 0);
  };
  auto deleted = run();
  VF_RETURN_IF_ERROR(Checked(deleted.status()));
  return deleted;
}

absl::StatusOr<IdentityState> PostgresGalleryStore::AddTemplates(const TemplateWrite& write) {
  const IdentityRecord& identity = write.identity;
  if (identity.identity_id.empty()) return absl::InvalidArgumentError("identity id is empty");
  if (write.templates.empty()) return absl::InvalidArgumentError("no templates to add");
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<IdentityState> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    if (!write.request_id.empty())
      VF_RETURN_IF_ERROR(ClaimRequestId(db, write.request_id, write.gallery, write.receipt));
    // A replica of another model may have rebound an empty store since this one started.
    VF_ASSIGN_OR_RETURN(const Result model,
                        db->Exec("SELECT value FROM veriface_meta WHERE key = 'model_id' FOR SHARE"));
    const std::string& template_model = write.templates.front().model_id;
    if (model.rows() == 0 || model.Text(0, 0) != template_model) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the gallery database is bound to model '", model.rows() == 0 ? "" : model.Text(0, 0),
          "', not this replica's '", template_model, "': every replica of one gallery must serve the same model"));
    }
    const int64_t adding = static_cast<int64_t>(write.templates.size());
    // Locks the gallery's row until commit: one gallery's writers take turns here, whichever replica they
    // are on, so its count and limit are exact.
    VF_ASSIGN_OR_RETURN(const Result gallery,
                        db->Exec("UPDATE galleries SET template_count = template_count + $2 WHERE name = $1 "
                                 "RETURNING template_count",
                                 Params().Text(write.gallery).Int64(adding)));
    if (gallery.rows() == 0) return absl::NotFoundError(absl::StrCat("no gallery '", write.gallery, "'"));
    if (write.max_gallery_templates > 0 && gallery.Int64(0, 0) > write.max_gallery_templates) {
      return absl::ResourceExhaustedError(absl::StrCat("gallery '", write.gallery, "' holds ",
                                                       gallery.Int64(0, 0) - adding, " templates; adding ", adding,
                                                       " would pass its limit of ", write.max_gallery_templates));
    }
    VF_RETURN_IF_ERROR(db->Exec("INSERT INTO identities(gallery, identity_id, created_unix_ms, updated_unix_ms, "
                                "metadata) VALUES($1, $2, $3, $4, $5::jsonb) ON CONFLICT (gallery, identity_id) DO "
                                "UPDATE SET updated_unix_ms = excluded.updated_unix_ms, "
                                "metadata = identities.metadata || excluded.metadata",
                                Params()
                                    .Text(write.gallery)
                                    .Text(identity.identity_id)
                                    .Int64(identity.created_unix_ms)
                                    .Int64(identity.updated_unix_ms)
                                    .Text(MetadataJson(identity.metadata)))
                           .status());
    for (const TemplateRecord& t : write.templates) {
      if (t.identity_id != identity.identity_id) {
        return absl::InvalidArgumentError(absl::StrCat("template '", t.template_id, "' belongs to identity '",
                                                       t.identity_id, "', not '", identity.identity_id, "'"));
      }
      Params row = Params()
                       .Text(t.template_id)
                       .Text(write.gallery)
                       .Text(t.identity_id)
                       .Text(t.model_id)
                       .Bytes(t.embedding.data(), t.embedding.size() * sizeof(float))
                       .Int64(t.created_unix_ms);
      if (t.face_crop.jpeg.empty()) {
        row.Null().Null();
      } else {
        const std::string points = FacePointsBytes(t.face_crop);
        row.Bytes(t.face_crop.jpeg.data(), t.face_crop.jpeg.size()).Bytes(points.data(), points.size());
      }
      VF_RETURN_IF_ERROR(db->Exec("INSERT INTO templates(template_id, gallery, identity_id, model_id, embedding, "
                                  "created_unix_ms, face_crop, face_points) VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
                                  row)
                             .status());
    }
    const Params key = Params().Text(write.gallery).Text(identity.identity_id);
    StateReader reader{db, 0, {}};
    VF_RETURN_IF_ERROR(reader.Read(
        absl::StrCat("SELECT ", kIdentityColumns, " FROM identities i WHERE i.gallery = $1 AND i.identity_id = $2"),
        absl::StrCat("SELECT ", kTemplateColumns,
                     " FROM templates t WHERE t.gallery = $1 AND t.identity_id = $2 ORDER BY t.seq"),
        key));
    if (reader.states.size() != 1) return absl::InternalError("the identity just written cannot be read back");
    IdentityState state = std::move(reader.states.begin()->second);
    const int64_t have = static_cast<int64_t>(state.templates.size());
    if (write.max_templates_per_identity > 0 && have > write.max_templates_per_identity) {
      return absl::ResourceExhaustedError(absl::StrCat("identity '", identity.identity_id, "' has ", have - adding,
                                                       " templates; adding ", adding, " would pass the limit of ",
                                                       write.max_templates_per_identity, " per identity"));
    }
    VF_RETURN_IF_ERROR(LogChange(db, origin_, write.gallery, &identity.identity_id));
    VF_RETURN_IF_ERROR(tx.Commit());
    return state;
  };
  auto state = run();
  VF_RETURN_IF_ERROR(Checked(state.status()));
  return state;
}

absl::StatusOr<int64_t> PostgresGalleryStore::DeleteIdentity(const std::string& gallery, const std::string& identity_id,
                                                             const std::string& request_id,
                                                             const WriteReceipt& receipt) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<int64_t> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    if (!request_id.empty()) VF_RETURN_IF_ERROR(ClaimRequestId(db, request_id, gallery, receipt));
    // The gallery's row first, in the same order as AddTemplates, so that the two cannot deadlock.
    VF_ASSIGN_OR_RETURN(const Result locked,
                        db->Exec("SELECT 1 FROM galleries WHERE name = $1 FOR UPDATE", Params().Text(gallery)));
    if (locked.rows() == 0) return absl::NotFoundError(absl::StrCat("no gallery '", gallery, "'"));
    const Params key = Params().Text(gallery).Text(identity_id);
    VF_ASSIGN_OR_RETURN(const Result templates,
                        db->Exec("DELETE FROM templates WHERE gallery = $1 AND identity_id = $2", key));
    VF_ASSIGN_OR_RETURN(const Result identities,
                        db->Exec("DELETE FROM identities WHERE gallery = $1 AND identity_id = $2", key));
    if (identities.affected_rows() == 0) {
      return absl::NotFoundError(absl::StrCat("no identity '", identity_id, "' in gallery '", gallery, "'"));
    }
    const int64_t deleted = templates.affected_rows();
    // Its enrolments' receipts list its template ids: they go with it.
    VF_RETURN_IF_ERROR(db->Exec("DELETE FROM receipts WHERE fingerprint = $1",
                                Params().Text(ReceiptFingerprint(WriteReceipt::Kind::kEnroll, gallery, identity_id)))
                           .status());
    VF_RETURN_IF_ERROR(db->Exec("UPDATE galleries SET template_count = template_count - $2 WHERE name = $1",
                                Params().Text(gallery).Int64(deleted))
                           .status());
    if (!request_id.empty()) {
      VF_RETURN_IF_ERROR(db->Exec("UPDATE receipts SET templates_deleted = $2 WHERE request_id = $1",
                                  Params().Text(request_id).Int64(deleted))
                             .status());
    }
    VF_RETURN_IF_ERROR(LogChange(db, origin_, gallery, &identity_id));
    VF_RETURN_IF_ERROR(tx.Commit());
    return deleted;
  };
  auto deleted = run();
  VF_RETURN_IF_ERROR(Checked(deleted.status()));
  return deleted;
}

absl::StatusOr<std::optional<WriteReceipt>> PostgresGalleryStore::FindReceipt(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<std::optional<WriteReceipt>> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    VF_ASSIGN_OR_RETURN(const Result r,
                        db->Exec("SELECT kind, fingerprint, template_ids, templates_deleted, created_unix_ms "
                                 "FROM receipts WHERE request_id = $1",
                                 Params().Text(request_id)));
    if (r.rows() == 0) return std::nullopt;
    WriteReceipt receipt;
    receipt.kind = KindOf(r.Int64(0, 0));
    receipt.fingerprint = r.Text(0, 1);
    receipt.template_ids = absl::StrSplit(r.Text(0, 2), ' ', absl::SkipEmpty());
    receipt.templates_deleted = r.Int64(0, 3);
    receipt.created_unix_ms = r.Int64(0, 4);
    return receipt;
  };
  auto receipt = run();
  VF_RETURN_IF_ERROR(Checked(receipt.status()));
  return receipt;
}

absl::Status PostgresGalleryStore::PruneReceipts(int64_t unix_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::Status {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    return db->Exec("DELETE FROM receipts WHERE created_unix_ms < $1", Params().Int64(unix_ms)).status();
  };
  return Checked(run());
}

absl::Status PostgresGalleryStore::PruneChanges() {
  const auto run = [&]() -> absl::Status {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    // The watermark says below which transaction id the log is no longer complete; a replica whose
    // cursor is below it has missed entries and reloads everything.
    VF_ASSIGN_OR_RETURN(
        const Result pruned,
        db->Exec("WITH gone AS (DELETE FROM changes WHERE at < clock_timestamp() - "
                 "make_interval(secs => $1) RETURNING txid) "
                 "SELECT coalesce(max(txid::text::numeric) + 1, 0)::text FROM gone",
                 Params().Int64(std::chrono::duration_cast<std::chrono::seconds>(options_.change_retention).count())));
    const uint64_t below = XidOf(pruned.Text(0, 0));
    if (below > 0) {
      VF_RETURN_IF_ERROR(db->Exec("INSERT INTO veriface_meta(key, value) VALUES('changes_pruned_below', $1) "
                                  "ON CONFLICT (key) DO UPDATE SET value = greatest(veriface_meta.value::numeric, "
                                  "excluded.value::numeric)::text",
                                  Params().Text(absl::StrCat(below)))
                             .status());
    }
    return tx.Commit();
  };
  return Checked(run());
}

absl::StatusOr<ChangeSet> PostgresGalleryStore::ChangesSince(const std::string& cursor) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::chrono::steady_clock::now() - last_prune_ > kPruneEvery) {
    last_prune_ = std::chrono::steady_clock::now();
    (void)PruneChanges();  // housekeeping; the read below does not depend on it
  }
  const auto run = [&]() -> absl::StatusOr<ChangeSet> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin(Transaction::Isolation::kRepeatableRead, /*read_only=*/true));
    ChangeSet changes;
    VF_ASSIGN_OR_RETURN(changes.cursor, Horizon(db));
    VF_ASSIGN_OR_RETURN(const Result watermark,
                        db->Exec("SELECT value FROM veriface_meta WHERE key = 'changes_pruned_below'"));
    if (cursor.empty()) {
      changes.full_reload = true;
      VF_ASSIGN_OR_RETURN(changes.snapshot, ReadEverything(db));
      VF_RETURN_IF_ERROR(tx.Commit());
      return changes;
    }
    // Everything from the old boundary on, not only up to the new one: what committed above the boundary
    // is visible already and is applied now, so that one long transaction does not hold back the others'
    // changes. Those entries come again next time (the boundary stays below them), which is harmless.
    const Params window = Params().Text(cursor);
    VF_ASSIGN_OR_RETURN(
        const Result touched,
        db->Exec("SELECT count(DISTINCT (gallery, identity_id)) FROM changes WHERE txid >= $1::xid8", window));
    const bool behind = watermark.rows() > 0 && XidOf(cursor) < XidOf(watermark.Text(0, 0));
    if (behind || touched.Int64(0, 0) > options_.max_changes_per_read) {
      // Away longer than the log keeps, or so much changed that one snapshot is cheaper than the states.
      changes.full_reload = true;
      VF_ASSIGN_OR_RETURN(changes.snapshot, ReadEverything(db));
      VF_RETURN_IF_ERROR(tx.Commit());
      return changes;
    }
    if (touched.Int64(0, 0) == 0) {
      VF_RETURN_IF_ERROR(tx.Commit());
      return changes;
    }
    VF_ASSIGN_OR_RETURN(const Result log, db->Exec("SELECT gallery, identity_id, origin, "
                                                   "extract(epoch FROM clock_timestamp() - at)::text, seq, txid::text "
                                                   "FROM changes WHERE txid >= $1::xid8 ORDER BY seq",
                                                   window));
    const uint64_t horizon = XidOf(changes.cursor);
    std::set<std::string> galleries;
    std::set<std::pair<std::string, std::string>> identities;
    for (int r = 0; r < log.rows(); ++r) {
      if (log.IsNull(r, 1)) {
        galleries.insert(log.Text(r, 0));
      } else {
        identities.insert({log.Text(r, 0), log.Text(r, 1)});
      }
      // Each change's lag is counted once, when first seen, though an entry above the boundary is read
      // again until the boundary passes it.
      const int64_t seq = log.Int64(r, 4);
      const bool final = XidOf(log.Text(r, 5)) < horizon;
      const bool counted = final ? lag_counted_.erase(seq) > 0 : !lag_counted_.insert(seq).second;
      double lag = 0;
      if (!counted && log.Text(r, 2) != origin_ && absl::SimpleAtod(log.Text(r, 3), &lag)) {
        changes.lag_seconds.push_back(lag);
      }
    }
    // The current state of everything the window touched, read in two statements however many it is.
    const std::string touched_ids =
        "(SELECT DISTINCT gallery, identity_id FROM changes WHERE txid >= $1::xid8 AND identity_id IS NOT NULL) c";
    StateReader reader{db, 0, {}};
    VF_RETURN_IF_ERROR(
        reader.Read(absl::StrCat("SELECT ", kIdentityColumns, " FROM identities i JOIN ", touched_ids,
                                 " ON i.gallery = c.gallery AND i.identity_id = c.identity_id"),
                    absl::StrCat("SELECT ", kTemplateColumns, " FROM templates t JOIN ", touched_ids,
                                 " ON t.gallery = c.gallery AND t.identity_id = c.identity_id ORDER BY t.seq"),
                    window));
    for (const std::string& name : galleries) {
      ChangeSet::GalleryChange change{name, std::nullopt};
      VF_ASSIGN_OR_RETURN(const Result g, db->Exec("SELECT name, created_unix_ms, max_templates FROM galleries "
                                                   "WHERE name = $1",
                                                   Params().Text(name)));
      if (g.rows() == 1) {
        GalleryContents contents;
        contents.record = GalleryRecord{g.Text(0, 0), g.Int64(0, 1), g.Int64(0, 2)};
        StateReader all{db, 0, {}};
        VF_RETURN_IF_ERROR(
            all.Read(absl::StrCat("SELECT ", kIdentityColumns, " FROM identities i WHERE i.gallery = $1"),
                     absl::StrCat("SELECT ", kTemplateColumns, " FROM templates t WHERE t.gallery = $1 ORDER BY t.seq"),
                     Params().Text(name)));
        for (auto& [key, state] : all.states) contents.identities.push_back(std::move(state));
        change.contents = std::move(contents);
      }
      changes.galleries.push_back(std::move(change));
    }
    for (const auto& [gallery, identity_id] : identities) {
      if (galleries.count(gallery) != 0) continue;  // the gallery's whole contents are in already
      ChangeSet::IdentityChange change{gallery, identity_id, std::nullopt};
      auto it = reader.states.find({gallery, identity_id});
      if (it != reader.states.end()) change.state = std::move(it->second);
      changes.identities.push_back(std::move(change));
    }
    VF_RETURN_IF_ERROR(tx.Commit());
    return changes;
  };
  auto changes = run();
  VF_RETURN_IF_ERROR(Checked(changes.status()));
  return changes;
}

absl::StatusOr<std::vector<StoredFace>> PostgresGalleryStore::FacesToReembed(const ModelTarget& target, int64_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<std::vector<StoredFace>> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    return FacesToReembedOn(db, target, limit);
  };
  auto faces = run();
  VF_RETURN_IF_ERROR(Checked(faces.status()));
  return faces;
}

absl::Status PostgresGalleryStore::PutReembedded(const ModelTarget& target,
                                                 const std::vector<ReembeddedTemplate>& values) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::Status {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    VF_RETURN_IF_ERROR(PutReembeddedOn(db, target, values));
    return tx.Commit();
  };
  return Checked(run());
}

absl::StatusOr<MigrationProgress> PostgresGalleryStore::Progress(const ModelTarget& target, int64_t max_listed) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<MigrationProgress> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin(Transaction::Isolation::kRepeatableRead, /*read_only=*/true));
    VF_ASSIGN_OR_RETURN(MigrationProgress progress, ProgressOn(db, target, max_listed));
    VF_RETURN_IF_ERROR(tx.Commit());
    return progress;
  };
  auto progress = run();
  VF_RETURN_IF_ERROR(Checked(progress.status()));
  return progress;
}

absl::StatusOr<int64_t> PostgresGalleryStore::SwitchModel(const ModelTarget& target, bool drop_without_crop,
                                                          const EmbedFaces& embed_rest) {
  VF_RETURN_IF_ERROR(CheckModelTarget(target));
  std::lock_guard<std::mutex> lock(mutex_);
  const auto run = [&]() -> absl::StatusOr<int64_t> {
    VF_ASSIGN_OR_RETURN(pg::Connection * db, Db());
    Transaction tx(db);
    VF_RETURN_IF_ERROR(tx.Begin());
    // Embedding the stragglers may take longer than one write is allowed to.
    VF_RETURN_IF_ERROR(db->Exec("SET LOCAL statement_timeout = 0").status());
    // Every replica's AddTemplates reads this row FOR SHARE: their enrolments wait here, then find the new
    // model and are refused. Then the galleries' rows, in the order DeleteIdentity takes one, so that a
    // concurrent delete either finishes first or waits for the switch.
    VF_ASSIGN_OR_RETURN(const Result bound,
                        db->Exec("SELECT value FROM veriface_meta WHERE key = 'model_id' FOR UPDATE"));
    if (bound.rows() == 1 && bound.Text(0, 0) == target.model_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("the gallery database ", db->describe(), " is bound to model '", target.model_id, "' already"));
    }
    VF_ASSIGN_OR_RETURN(const Result galleries, db->Exec("SELECT name FROM galleries ORDER BY name FOR UPDATE"));
    VF_RETURN_IF_ERROR(EmbedRemaining(
        [&](int64_t limit) { return FacesToReembedOn(db, target, limit); }, embed_rest,
        [&](const std::vector<ReembeddedTemplate>& values) { return PutReembeddedOn(db, target, values); }));
    VF_ASSIGN_OR_RETURN(const MigrationProgress progress, ProgressOn(db, target, 0));
    int64_t dropped = 0;
    if (progress.without_crop > 0) {
      if (!drop_without_crop)
        return CroplessTemplatesError(absl::StrCat("the gallery database ", db->describe()), progress);
      // Identities left with no template go as DeleteIdentity removes them, receipts too.
      VF_ASSIGN_OR_RETURN(const Result emptied,
                          db->Exec("DELETE FROM identities i WHERE NOT EXISTS (SELECT 1 FROM templates t WHERE "
                                   "t.gallery = i.gallery AND t.identity_id = i.identity_id AND t.face_crop IS NOT "
                                   "NULL) RETURNING gallery, identity_id"));
      for (int i = 0; i < emptied.rows(); ++i) {
        VF_RETURN_IF_ERROR(db->Exec("DELETE FROM receipts WHERE fingerprint = $1",
                                    Params().Text(ReceiptFingerprint(WriteReceipt::Kind::kEnroll, emptied.Text(i, 0),
                                                                     emptied.Text(i, 1))))
                               .status());
      }
      VF_RETURN_IF_ERROR(db->Exec("DELETE FROM templates WHERE face_crop IS NULL").status());
      dropped = progress.without_crop;  // the identities' templates went with them (ON DELETE CASCADE)
      VF_RETURN_IF_ERROR(db->Exec("UPDATE galleries g SET template_count = (SELECT count(*) FROM templates t "
                                  "WHERE t.gallery = g.name)")
                             .status());
    }
    VF_ASSIGN_OR_RETURN(const Result swapped,
                        db->Exec("UPDATE templates t SET model_id = $1, embedding = x.embedding FROM reembedded x "
                                 "WHERE x.model_id = $1 AND x.template_id = t.template_id",
                                 Params().Text(target.model_id)));
    VF_ASSIGN_OR_RETURN(const Result total, db->Exec("SELECT count(*) FROM templates"));
    if (swapped.affected_rows() != total.Int64(0, 0)) {
      return absl::InternalError(absl::StrCat(total.Int64(0, 0) - swapped.affected_rows(),
                                              " templates have no re-embedding after the last pass"));
    }
    VF_RETURN_IF_ERROR(db->Exec("DELETE FROM reembedded").status());
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"model_id", target.model_id},
                                     {"embedding_dim", absl::StrCat(target.embedding_dim)}}) {
      VF_RETURN_IF_ERROR(db->Exec("INSERT INTO veriface_meta(key, value) VALUES($1, $2) "
                                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                  Params().Text(key).Text(value))
                             .status());
    }
    // Every gallery changed: followers reload each and find it is another model's.
    for (int i = 0; i < galleries.rows(); ++i)
      VF_RETURN_IF_ERROR(LogChange(db, origin_, galleries.Text(i, 0), nullptr));
    VF_RETURN_IF_ERROR(tx.Commit());
    return dropped;
  };
  auto dropped = run();
  VF_RETURN_IF_ERROR(Checked(dropped.status()));
  return dropped;
}

absl::Status PostgresGalleryStore::WaitForChange(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(listen_mutex_);
  if (listener_ == nullptr || !listener_->healthy()) {
    listener_.reset();
    pg::ConnectOptions connect;
    connect.conninfo = options_.conninfo;
    connect.password = options_.password;
    connect.connect_timeout_s = options_.connect_timeout_s;
    connect.application_name = "veriface-follower";
    VF_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> listener, pg::Connection::Connect(connect));
    VF_RETURN_IF_ERROR(listener->Listen(kChannel));
    listener_ = std::move(listener);
    // Changes made before LISTEN took effect sent no notification to this connection: look now.
    return absl::OkStatus();
  }
  const auto notified = listener_->WaitForNotifications(timeout);
  if (!notified.ok()) {
    listener_.reset();
    return notified.status();
  }
  return absl::OkStatus();
}

}  // namespace veriface
