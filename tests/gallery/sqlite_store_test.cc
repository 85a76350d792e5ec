// The SQLite store on its own: round trips, galleries and receipts, the file format's promises (WAL, no
// trace after delete), upgrading version-1 files, and refusing files it should not touch.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/gallery/gallery.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Every byte the gallery's files hold on disk: the database and, when present, its WAL.
std::string AllFileBytes(const std::string& db) {
  std::string bytes = ReadBytes(db);
  if (std::filesystem::exists(db + "-wal")) bytes += ReadBytes(db + "-wal");
  return bytes;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Runs `sql` on its own connection to `path` and returns the first column of the first row (0 when
// there is no row); a failure fails the calling test.
int64_t RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t value = 0;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK || sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr)) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

// Opening `path` must fail with `code`, and the message must name the file and say `what`.
void ExpectRefused(const std::string& path, absl::StatusCode code, const std::string& what) {
  auto store = SqliteGalleryStore::Open(path);
  ASSERT_FALSE(store.ok()) << path;
  EXPECT_EQ(store.status().code(), code) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(what));
}

// Like RawSql, for a text result ("" when there is no row).
std::string RawText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string value;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK || sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr)) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

std::unique_ptr<SqliteGalleryStore> MustOpen(const std::string& path) {
  auto store = SqliteGalleryStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

TemplateWrite Write(const std::string& gallery, const IdentityRecord& identity,
                    const std::vector<TemplateRecord>& templates) {
  TemplateWrite write;
  write.gallery = gallery;
  write.identity = identity;
  write.templates = templates;
  return write;
}

int64_t Identities(const StoreSnapshot& snapshot) {
  int64_t n = 0;
  for (const GalleryContents& g : snapshot.galleries) n += static_cast<int64_t>(g.identities.size());
  return n;
}

int64_t Templates(const StoreSnapshot& snapshot) {
  int64_t n = 0;
  for (const GalleryContents& g : snapshot.galleries) {
    for (const IdentityState& identity : g.identities) n += static_cast<int64_t>(identity.templates.size());
  }
  return n;
}

// The gallery of that name in the snapshot, or null.
const GalleryContents* FindGallery(const StoreSnapshot& snapshot, const std::string& name) {
  for (const GalleryContents& g : snapshot.galleries) {
    if (g.record.name == name) return &g;
  }
  return nullptr;
}

TEST(SqliteStoreTest, RoundTripsEverythingExactly) {
  TempDir dir;
  std::mt19937 rng(7);
  IdentityRecord alice{"alice", {{"name", "Alice"}, {"note", "line1\nline2 ünïcode"}}, 111, 222};
  std::vector<TemplateRecord> templates;
  for (int i = 0; i < 3; ++i) {
    templates.push_back(TemplateRecord{"t" + std::to_string(i), "alice", kModel, RandomUnit(rng), 1000 + i, {}, false});
  }
  {
    auto store = MustOpen(dir.File("g.db"));
    EXPECT_EQ(store->kind(), "sqlite");
    EXPECT_FALSE(store->shared());
    auto empty = store->Load();
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty->model_id.empty());
    // A new file has the default gallery, and nothing in it.
    ASSERT_EQ(empty->galleries.size(), 1u);
    EXPECT_EQ(empty->galleries[0].record.name, kDefaultGalleryName);
    EXPECT_EQ(empty->galleries[0].record.max_templates, 0);
    EXPECT_TRUE(empty->galleries[0].identities.empty());
    ASSERT_TRUE(store->BindModel(kModel, kDim).ok());
    auto committed = store->AddTemplates(Write(kDefaultGalleryName, alice, templates));
    ASSERT_TRUE(committed.ok()) << committed.status();
    // The identity as committed comes back from the call itself.
    EXPECT_EQ(committed->record.identity_id, "alice");
    EXPECT_EQ(committed->record.metadata, alice.metadata);
    ASSERT_EQ(committed->templates.size(), 3u);
    EXPECT_EQ(committed->templates[2].template_id, "t2");
  }
  auto store = MustOpen(dir.File("g.db"));
  auto snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->model_id, kModel);
  EXPECT_EQ(snapshot->embedding_dim, kDim);
  ASSERT_EQ(snapshot->galleries.size(), 1u);
  const auto& identities = snapshot->galleries[0].identities;
  ASSERT_EQ(identities.size(), 1u);
  EXPECT_EQ(identities[0].record.identity_id, "alice");
  EXPECT_EQ(identities[0].record.metadata, alice.metadata);
  EXPECT_EQ(identities[0].record.created_unix_ms, 111);
  EXPECT_EQ(identities[0].record.updated_unix_ms, 222);
  ASSERT_EQ(identities[0].templates.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const TemplateRecord& t = identities[0].templates[i];
    EXPECT_EQ(t.template_id, templates[i].template_id);
    EXPECT_EQ(t.identity_id, "alice");
    EXPECT_EQ(t.model_id, kModel);
    EXPECT_EQ(t.created_unix_ms, 1000 + i);
    EXPECT_EQ(FloatBytes(t.embedding), FloatBytes(templates[i].embedding));
  }
  EXPECT_EQ(store->DeleteIdentity(kDefaultGalleryName, "nobody", "", {}).status().code(), absl::StatusCode::kNotFound);
  auto deleted = store->DeleteIdentity(kDefaultGalleryName, "alice", "", {});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);
}

TEST(SqliteStoreTest, FileIsInWalModeAndADuplicateTemplateIdRollsBackTheWholeCall) {
  TempDir dir;
  std::mt19937 rng(8);
  auto store = MustOpen(dir.File("g.db"));
  ASSERT_TRUE(store->BindModel(kModel, kDim).ok());
  const std::string header = ReadBytes(dir.File("g.db")).substr(0, 20);
  ASSERT_EQ(header.substr(0, 16), std::string("SQLite format 3\0", 16));
  EXPECT_EQ(header[18], 2);  // file format read/write versions 2 = WAL
  EXPECT_EQ(header[19], 2);

  IdentityRecord bob{"bob", {}, 1, 1};
  ASSERT_TRUE(store
                  ->AddTemplates(Write(kDefaultGalleryName, bob,
                                       {TemplateRecord{"dup", "bob", kModel, RandomUnit(rng), 1, {}, false}}))
                  .ok());
  IdentityRecord carol{"carol", {{"k", "v"}}, 2, 2};
  TemplateWrite write = Write(kDefaultGalleryName, carol,
                              {TemplateRecord{"fresh", "carol", kModel, RandomUnit(rng), 2, {}, false},
                               TemplateRecord{"dup", "carol", kModel, RandomUnit(rng), 2, {}, false}});
  write.request_id = "req-carol";
  write.receipt = WriteReceipt{WriteReceipt::Kind::kEnroll, "fp", {"fresh", "dup"}, 0, 2};
  auto status = store->AddTemplates(write).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("UNIQUE"));
  // Template ids are unique across galleries too.
  ASSERT_TRUE(store->CreateGallery(GalleryRecord{"other", 3, 0}).ok());
  auto across =
      store->AddTemplates(Write("other", bob, {TemplateRecord{"dup", "bob", kModel, RandomUnit(rng), 1, {}, false}}));
  EXPECT_FALSE(across.ok());
  auto snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok());
  // carol's identity row, her metadata and the receipt were rolled back with the templates.
  EXPECT_EQ(Identities(*snapshot), 1);
  EXPECT_EQ(Templates(*snapshot), 1);
  auto receipt = store->FindReceipt("req-carol");
  ASSERT_TRUE(receipt.ok());
  EXPECT_FALSE(receipt->has_value());
  EXPECT_EQ(RawSql(dir.File("g.db"), "SELECT count(*) FROM identity_metadata"), 0);
}

// Delete must leave no trace: neither the identity id, its metadata, its template ids nor the
// embedding's bytes may remain anywhere in the database or WAL file.
TEST(SqliteStoreTest, DeleteLeavesNoTraceInTheFileBytes) {
  TempDir dir;
  std::mt19937 rng(9);
  const std::string path = dir.File("g.db");
  std::vector<std::vector<float>> victim_embeddings = {RandomUnit(rng), RandomUnit(rng)};
  std::vector<std::string> victim_templates;
  {
    auto gallery = OpenGallery(path);
    ASSERT_TRUE(gallery.ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(
          (*gallery)->Enroll(EnrollCommand{"", "keeper-" + std::to_string(i), {}, {RandomUnit(rng)}, "", {}}).ok());
    }
    auto out = (*gallery)->Enroll(
        EnrollCommand{"", "victim-Zq7Xw", {{"secret-key", "secret-value-8uJ2"}}, victim_embeddings, "", {}});
    ASSERT_TRUE(out.ok());
    victim_templates = out->template_ids;
    for (int i = 50; i < 100; ++i) {
      ASSERT_TRUE(
          (*gallery)->Enroll(EnrollCommand{"", "keeper-" + std::to_string(i), {}, {RandomUnit(rng)}, "", {}}).ok());
    }
  }
  // Gallery::Enroll renormalises, so look for the bytes the store actually holds.
  std::vector<std::string> needles = {"victim-Zq7Xw", "secret-key", "secret-value-8uJ2"};
  {
    auto store = MustOpen(path);
    auto snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok());
    for (const auto& identity : snapshot->galleries[0].identities) {
      for (const auto& t : identity.templates) {
        if (t.identity_id == "victim-Zq7Xw") needles.push_back(FloatBytes(t.embedding));
      }
    }
    ASSERT_TRUE(store->Checkpoint().ok());
  }
  ASSERT_EQ(needles.size(), 5u);
  for (const auto& id : victim_templates) needles.push_back(id);
  // The check can fail: before the delete every needle is in the file.
  const std::string before = AllFileBytes(path);
  for (const auto& needle : needles) ASSERT_TRUE(Contains(before, needle)) << "needle " << needles.size();

  {
    auto store = MustOpen(path);
    auto deleted = store->DeleteIdentity(kDefaultGalleryName, "victim-Zq7Xw", "", {});
    ASSERT_TRUE(deleted.ok()) << deleted.status();
    EXPECT_EQ(*deleted, 2);
    // Right after the acknowledged delete, while the store is still open.
    const std::string after = AllFileBytes(path);
    for (size_t i = 0; i < needles.size(); ++i) EXPECT_FALSE(Contains(after, needles[i])) << "needle " << i;
  }
  const std::string closed = AllFileBytes(path);
  for (size_t i = 0; i < needles.size(); ++i) EXPECT_FALSE(Contains(closed, needles[i])) << "needle " << i;
  auto gallery = OpenGallery(path);
  ASSERT_TRUE(gallery.ok());
  EXPECT_EQ((*gallery)->identity_count(), 100);
}

// The same with a gallery large enough for multi-level B-trees (interior pages hold keys too) and many
// deletions, so that page merges and freelist pages are exercised.
TEST(SqliteStoreTest, ManyDeletesInAMultiLevelFileLeaveNoTrace) {
  TempDir dir;
  std::mt19937 rng(10);
  const std::string path = dir.File("g.db");
  auto gallery = OpenGallery(path);
  ASSERT_TRUE(gallery.ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 600; ++i) {
    // Long ids make the index B-trees several levels deep.
    ids.push_back("person-" + std::to_string(100000 + i) + "-" + std::string(120, 'a' + i % 26));
  }
  for (size_t start = 0; start < ids.size(); start += 100) {
    for (size_t i = start; i < start + 100; ++i) {
      ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", ids[i], {{"n", ids[i]}}, {RandomUnit(rng)}, "", {}}).ok());
    }
  }
  // The point of this test: the id indexes really have interior pages.
  for (const std::string index : {"sqlite_autoindex_identities_1", "templates_by_identity"}) {
    EXPECT_GT(RawSql(path, "SELECT count(*) FROM dbstat WHERE pagetype = 'internal' AND name = '" + index + "'"), 0)
        << index;
  }
  std::vector<std::string> deleted;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i % 3 != 0) continue;
    ASSERT_TRUE((*gallery)->Delete("", ids[i]).ok());
    deleted.push_back(ids[i]);
  }
  const std::string bytes = AllFileBytes(path);
  ASSERT_GT(bytes.size(), 1000000u);
  size_t traces = 0;
  for (const auto& id : deleted) traces += Contains(bytes, id.substr(0, 14)) ? 1 : 0;
  EXPECT_EQ(traces, 0u) << "of " << deleted.size() << " deleted identities";
  size_t kept_found = 0;
  for (size_t i = 1; i < ids.size(); i += 3) kept_found += Contains(bytes, ids[i].substr(0, 14)) ? 1 : 0;
  EXPECT_EQ(kept_found, (ids.size() + 1) / 3);
}

TEST(SqliteStoreTest, AFileThatIsNotADatabaseIsRefusedClearly) {
  TempDir dir;
  const std::string path = dir.File("not-a-db.db");
  std::string garbage = "this is a text file, not a gallery\n";
  std::mt19937 rng(11);
  for (int i = 0; i < 8192; ++i) garbage.push_back(static_cast<char>(rng()));
  WriteBytes(path, garbage);
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition, "not an SQLite database");
  EXPECT_EQ(ReadBytes(path), garbage);  // and the file was left alone
}

TEST(SqliteStoreTest, AnotherApplicationsDatabaseIsRefused) {
  TempDir dir;
  const std::string path = dir.File("other.db");
  RawSql(path, "CREATE TABLE invoices(id INTEGER)");
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition, "not a Veriface gallery");
}

TEST(SqliteStoreTest, ANewerSchemaVersionIsRefused) {
  TempDir dir;
  const std::string path = dir.File("g.db");
  ASSERT_NE(MustOpen(path), nullptr);
  RawSql(path, "UPDATE schema_version SET version = 99");
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition, "schema version '99'");
}

TEST(SqliteStoreTest, GalleriesKeepTheirOwnIdentitiesAndDeletingOneRemovesAllItHolds) {
  TempDir dir;
  std::mt19937 rng(13);
  const std::string path = dir.File("g.db");
  auto store = MustOpen(path);
  ASSERT_TRUE(store->BindModel(kModel, kDim).ok());
  ASSERT_TRUE(store->CreateGallery(GalleryRecord{"site-b", 5000, 7}).ok());
  EXPECT_EQ(store->CreateGallery(GalleryRecord{"site-b", 6000, 0}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->CreateGallery(GalleryRecord{kDefaultGalleryName, 6000, 0}).code(), absl::StatusCode::kAlreadyExists);
  IdentityRecord alice{"alice", {{"site", "a"}}, 10, 10};
  EXPECT_EQ(
      store
          ->AddTemplates(Write("site-c", alice, {TemplateRecord{"t0", "alice", kModel, RandomUnit(rng), 1, {}, false}}))
          .status()
          .code(),
      absl::StatusCode::kNotFound);
  // The same identity id in two galleries: two rows, two people.
  ASSERT_TRUE(store
                  ->AddTemplates(Write(kDefaultGalleryName, alice,
                                       {TemplateRecord{"ta", "alice", kModel, RandomUnit(rng), 1, {}, false}}))
                  .ok());
  IdentityRecord alice_b{"alice", {{"site", "b"}}, 20, 20};
  auto committed = store->AddTemplates(Write("site-b", alice_b,
                                             {TemplateRecord{"tb1", "alice", kModel, RandomUnit(rng), 2, {}, false},
                                              TemplateRecord{"tb2", "alice", kModel, RandomUnit(rng), 2, {}, false}}));
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->templates.size(), 2u) << "site-b's alice does not hold the default gallery's template";
  EXPECT_EQ(committed->record.metadata.at("site"), "b");

  {
    auto snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    ASSERT_EQ(snapshot->galleries.size(), 2u);
    const GalleryContents* b = FindGallery(*snapshot, "site-b");
    const GalleryContents* d = FindGallery(*snapshot, kDefaultGalleryName);
    ASSERT_TRUE(b != nullptr && d != nullptr);
    EXPECT_EQ(b->record.created_unix_ms, 5000);
    EXPECT_EQ(b->record.max_templates, 7);
    ASSERT_EQ(b->identities.size(), 1u);
    ASSERT_EQ(d->identities.size(), 1u);
    EXPECT_EQ(b->identities[0].record.metadata.at("site"), "b");
    EXPECT_EQ(d->identities[0].record.metadata.at("site"), "a");
    ASSERT_EQ(b->identities[0].templates.size(), 2u);
    ASSERT_EQ(d->identities[0].templates.size(), 1u);
    EXPECT_EQ(d->identities[0].templates[0].template_id, "ta");
  }
  // Deleting one gallery's alice leaves the other's.
  auto deleted = store->DeleteIdentity("site-b", "alice", "", {});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 2);
  EXPECT_EQ(store->DeleteIdentity("site-b", "alice", "", {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteIdentity("site-c", "alice", "", {}).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store
                  ->AddTemplates(
                      Write("site-b", alice_b, {TemplateRecord{"tb3", "alice", kModel, RandomUnit(rng), 3, {}, false}}))
                  .ok());
  IdentityRecord bob{"bob", {{"k", "v"}}, 30, 30};
  ASSERT_TRUE(
      store->AddTemplates(Write("site-b", bob, {TemplateRecord{"tb4", "bob", kModel, RandomUnit(rng), 3, {}, false}}))
          .ok());
  // Deleting the gallery removes everything it holds, and reports its templates.
  auto gone = store->DeleteGallery("site-b");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(*gone, 2);
  EXPECT_EQ(store->DeleteGallery("site-b").status().code(), absl::StatusCode::kNotFound);
  for (const std::string table : {"identities", "identity_metadata", "templates"}) {
    EXPECT_EQ(RawSql(path, "SELECT count(*) FROM " + table + " WHERE gallery = 'site-b'"), 0) << table;
  }
  auto snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->galleries.size(), 1u);
  EXPECT_EQ(snapshot->galleries[0].record.name, kDefaultGalleryName);
  EXPECT_EQ(Templates(*snapshot), 1);
  // A gallery of the same name made again starts empty.
  ASSERT_TRUE(store->CreateGallery(GalleryRecord{"site-b", 7000, 0}).ok());
  snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_NE(FindGallery(*snapshot, "site-b"), nullptr);
  EXPECT_TRUE(FindGallery(*snapshot, "site-b")->identities.empty());
}

TEST(SqliteStoreTest, ReceiptsAreWrittenWithTheirWriteSurviveReopeningAndArePruned) {
  TempDir dir;
  std::mt19937 rng(14);
  const std::string path = dir.File("g.db");
  const WriteReceipt enrol{WriteReceipt::Kind::kEnroll, "fingerprint-enrol", {"t1", "t2"}, 0, 1000};
  {
    auto store = MustOpen(path);
    ASSERT_TRUE(store->BindModel(kModel, kDim).ok());
    TemplateWrite write = Write(kDefaultGalleryName, IdentityRecord{"alice", {}, 1, 1},
                                {TemplateRecord{"t1", "alice", kModel, RandomUnit(rng), 1, {}, false},
                                 TemplateRecord{"t2", "alice", kModel, RandomUnit(rng), 1, {}, false}});
    write.request_id = "req-1";
    write.receipt = enrol;
    ASSERT_TRUE(store->AddTemplates(write).ok());
    // The same request id again: refused as a whole, nothing written.
    write.templates = {TemplateRecord{"t3", "alice", kModel, RandomUnit(rng), 2, {}, false}};
    EXPECT_EQ(store->AddTemplates(write).status().code(), absl::StatusCode::kAlreadyExists);
    EXPECT_EQ(RawSql(path, "SELECT count(*) FROM templates"), 2);
    // A delete under a request id that has a receipt deletes nothing.
    EXPECT_EQ(store->DeleteIdentity(kDefaultGalleryName, "alice", "req-1", {}).status().code(),
              absl::StatusCode::kAlreadyExists);
    EXPECT_EQ(RawSql(path, "SELECT count(*) FROM templates"), 2);
    // A delete that finds nothing writes no receipt.
    const WriteReceipt del{WriteReceipt::Kind::kDelete, "fingerprint-delete", {}, 0, 3000};
    EXPECT_EQ(store->DeleteIdentity(kDefaultGalleryName, "nobody", "req-nobody", del).status().code(),
              absl::StatusCode::kNotFound);
    auto none = store->FindReceipt("req-nobody");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
    TemplateWrite bob = Write(kDefaultGalleryName, IdentityRecord{"bob", {}, 1, 1},
                              {TemplateRecord{"t4", "bob", kModel, RandomUnit(rng), 1, {}, false}});
    ASSERT_TRUE(store->AddTemplates(bob).ok());
    // The delete's receipt records how many templates it removed, whatever the caller put there.
    auto deleted = store->DeleteIdentity(kDefaultGalleryName, "bob", "req-2", del);
    ASSERT_TRUE(deleted.ok()) << deleted.status();
    EXPECT_EQ(*deleted, 1);
  }
  auto store = MustOpen(path);
  auto first = store->FindReceipt("req-1");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->kind, WriteReceipt::Kind::kEnroll);
  EXPECT_EQ((*first)->fingerprint, "fingerprint-enrol");
  EXPECT_EQ((*first)->template_ids, enrol.template_ids);
  EXPECT_EQ((*first)->created_unix_ms, 1000);
  auto second = store->FindReceipt("req-2");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->kind, WriteReceipt::Kind::kDelete);
  EXPECT_EQ((*second)->fingerprint, "fingerprint-delete");
  EXPECT_TRUE((*second)->template_ids.empty());
  EXPECT_EQ((*second)->templates_deleted, 1);
  EXPECT_EQ((*second)->created_unix_ms, 3000);
  auto unknown = store->FindReceipt("req-never");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());

  // Pruning forgets receipts written before the moment, and only those.
  ASSERT_TRUE(store->PruneReceipts(2000).ok());
  first = store->FindReceipt("req-1");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  second = store->FindReceipt("req-2");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->has_value());
  ASSERT_TRUE(store->PruneReceipts(3001).ok());
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM receipts"), 0);
  // What the pruned receipts answered is still there: pruning touches receipts only.
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM templates"), 2);
}

// DeleteGallery keeps the promise of DeleteIdentity for everyone in the gallery: neither its name, its
// identity ids, their metadata, their template ids nor the embeddings' bytes remain anywhere in the
// database or WAL file, while the other galleries' people stay.
TEST(SqliteStoreTest, DeleteGalleryLeavesNoTraceInTheFileBytes) {
  TempDir dir;
  std::mt19937 rng(15);
  const std::string path = dir.File("g.db");
  std::vector<std::string> needles = {"tenant-Hq4Vb"};
  std::vector<std::string> kept_needles;
  {
    auto gallery = OpenGallery(path);
    ASSERT_TRUE(gallery.ok());
    ASSERT_TRUE((*gallery)->CreateGallery("tenant-Hq4Vb").ok());
    ASSERT_TRUE((*gallery)->CreateGallery("tenant-keep").ok());
    for (int i = 0; i < 60; ++i) {
      const std::string suffix = std::to_string(1000 + i);
      // Ids that only the deleted gallery uses, and one ("shared-...") that the kept galleries use too.
      const std::string victim = "victim-Mx3" + suffix;
      auto out = (*gallery)->Enroll(EnrollCommand{
          "tenant-Hq4Vb", victim, {{"secret-" + suffix, "value-Rk8" + suffix}}, RandomUnits(rng, 2), "", {}});
      ASSERT_TRUE(out.ok()) << out.status();
      needles.push_back(victim);
      needles.push_back("secret-" + suffix);
      needles.push_back("value-Rk8" + suffix);
      for (const auto& id : out->template_ids) needles.push_back(id);
      for (const std::string g : {"", "tenant-keep"}) {
        auto kept = (*gallery)->Enroll(EnrollCommand{g, "keeper-" + g + suffix, {}, RandomUnits(rng, 1), "", {}});
        ASSERT_TRUE(kept.ok());
        kept_needles.push_back("keeper-" + g + suffix);
        kept_needles.push_back(kept->template_ids[0]);
      }
    }
    ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", "shared-id-Wq2", {}, RandomUnits(rng, 1), "", {}}).ok());
    auto shared = (*gallery)->Enroll(EnrollCommand{"tenant-Hq4Vb", "shared-id-Wq2", {}, RandomUnits(rng, 1), "", {}});
    ASSERT_TRUE(shared.ok());
    needles.push_back(shared->template_ids[0]);
    kept_needles.push_back("shared-id-Wq2");
  }
  // The bytes of the embeddings as stored.
  {
    auto store = MustOpen(path);
    auto snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok());
    const GalleryContents* victim = FindGallery(*snapshot, "tenant-Hq4Vb");
    ASSERT_NE(victim, nullptr);
    for (const auto& identity : victim->identities) {
      for (const auto& t : identity.templates) needles.push_back(FloatBytes(t.embedding));
    }
    ASSERT_TRUE(store->Checkpoint().ok());
  }
  const std::string before = AllFileBytes(path);
  for (size_t i = 0; i < needles.size(); ++i) ASSERT_TRUE(Contains(before, needles[i])) << "needle " << i;

  auto gallery = OpenGallery(path);
  ASSERT_TRUE(gallery.ok());
  auto summary = (*gallery)->DeleteGallery("tenant-Hq4Vb");
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->record.name, "tenant-Hq4Vb");
  EXPECT_EQ(summary->identities, 61);
  EXPECT_EQ(summary->templates, 121);
  // Right after the acknowledged delete, while the gallery is still open.
  const std::string after = AllFileBytes(path);
  size_t traces = 0;
  for (size_t i = 0; i < needles.size(); ++i) {
    if (Contains(after, needles[i])) {
      ++traces;
      ADD_FAILURE() << "needle " << i << " (" << (needles[i].size() < 40 ? needles[i] : "embedding bytes")
                    << ") is still in the file";
      if (traces > 5) break;
    }
  }
  for (const auto& kept : kept_needles) EXPECT_TRUE(Contains(after, kept)) << kept;
  gallery->reset();
  const std::string closed = AllFileBytes(path);
  for (size_t i = 0; i < needles.size(); ++i) EXPECT_FALSE(Contains(closed, needles[i])) << "needle " << i;
  auto reopened = OpenGallery(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->gallery_count(), 2);
  EXPECT_EQ((*reopened)->identity_count(), 121);
  EXPECT_EQ((*reopened)->Find("tenant-Hq4Vb").status().code(), absl::StatusCode::kNotFound);
}

// Writes that carried a request id leave a receipt (kept for retries). Deleting the identity, or its
// gallery, must still leave none of its template ids in the file: the receipts may not keep them either.
TEST(SqliteStoreTest, ReceiptsKeepNoTraceOfDeletedTemplates) {
  TempDir dir;
  std::mt19937 rng(16);
  const std::string path = dir.File("g.db");
  std::vector<std::string> needles;
  {
    auto gallery = OpenGallery(path);
    ASSERT_TRUE(gallery.ok());
    ASSERT_TRUE((*gallery)->CreateGallery("tenant").ok());
    for (int i = 0; i < 10; ++i) {
      const std::string n = std::to_string(i);
      auto in_default = (*gallery)->Enroll(EnrollCommand{"", "victim-" + n, {}, RandomUnits(rng, 2), "req-d" + n, {}});
      auto in_tenant =
          (*gallery)->Enroll(EnrollCommand{"tenant", "victim-" + n, {}, RandomUnits(rng, 2), "req-t" + n, {}});
      ASSERT_TRUE(in_default.ok() && in_tenant.ok());
      for (const auto& id : in_default->template_ids) needles.push_back(id);
      for (const auto& id : in_tenant->template_ids) needles.push_back(id);
      ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", "keeper-" + n, {}, RandomUnits(rng, 1), "req-k" + n, {}}).ok());
    }
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE((*gallery)->Delete("", "victim-" + std::to_string(i), "req-del" + std::to_string(i)).ok());
    }
    ASSERT_TRUE((*gallery)->DeleteGallery("tenant").ok());
  }
  const std::string bytes = AllFileBytes(path);
  size_t traces = 0;
  for (const auto& needle : needles) traces += Contains(bytes, needle) ? 1 : 0;
  EXPECT_EQ(traces, 0u) << "of " << needles.size() << " deleted template ids are still in the file ("
                        << RawSql(path, "SELECT count(*) FROM receipts WHERE template_ids != ''")
                        << " enrolment receipts list template ids)";
}

// The version-1 schema, as the first migration in core/gallery/sqlite_gallery_store.cc creates it and as
// builds before named galleries wrote it (they stored their version, 1, with it).
constexpr char kVersion1Schema[] = R"sql(
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO schema_version(version) VALUES(1);
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

struct Version1Identity {
  IdentityRecord record;
  std::vector<TemplateRecord> templates;  // in enrolment order
};

// Writes a version-1 gallery file by hand, in WAL mode like the builds that wrote them. Templates are
// inserted with explicit seq values interleaved across identities (`seqs` lists, per template in
// `identities` order, its seq), so that enrolment order is not simply insertion order.
void WriteVersion1File(const std::string& path, const std::vector<Version1Identity>& identities,
                       const std::vector<int64_t>& seqs, int64_t dim = kDim) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto exec = [&](const std::string& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << sql << ": " << error;
    sqlite3_free(error);
  };
  exec("PRAGMA journal_mode=WAL");
  exec("BEGIN");
  exec(kVersion1Schema);
  exec(std::string("INSERT INTO meta(key, value) VALUES('model_id', '") + kModel + "'), ('embedding_dim', '" +
       std::to_string(dim) + "')");
  size_t next_seq = 0;
  for (const Version1Identity& identity : identities) {
    const IdentityRecord& r = identity.record;
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO identities VALUES(?1, ?2, ?3)", -1, &stmt, nullptr), SQLITE_OK);
    sqlite3_bind_text(stmt, 1, r.identity_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, r.created_unix_ms);
    sqlite3_bind_int64(stmt, 3, r.updated_unix_ms);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    for (const auto& [key, value] : r.metadata) {
      ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO identity_metadata VALUES(?1, ?2, ?3)", -1, &stmt, nullptr),
                SQLITE_OK);
      sqlite3_bind_text(stmt, 1, r.identity_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 2, key.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 3, value.c_str(), -1, SQLITE_TRANSIENT);
      EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
      sqlite3_finalize(stmt);
    }
    for (const TemplateRecord& t : identity.templates) {
      ASSERT_LT(next_seq, seqs.size());
      ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO templates VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1, &stmt, nullptr),
                SQLITE_OK);
      sqlite3_bind_int64(stmt, 1, seqs[next_seq++]);
      sqlite3_bind_text(stmt, 2, t.template_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 3, t.identity_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 4, t.model_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(stmt, 5, t.embedding.data(), static_cast<int>(t.embedding.size() * sizeof(float)),
                        SQLITE_TRANSIENT);
      sqlite3_bind_int64(stmt, 6, t.created_unix_ms);
      EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
      sqlite3_finalize(stmt);
    }
  }
  exec("COMMIT");
  ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
}

// Three identities as a version-1 build left them: alice (two templates, metadata), bob (one template,
// metadata with a newline and non-ASCII text) and carol (no metadata), with bob's template enrolled
// between alice's two.
std::vector<Version1Identity> Version1People(std::mt19937& rng, std::vector<int64_t>* seqs) {
  std::vector<Version1Identity> people = {
      {IdentityRecord{"alice-v1", {{"name", "Alice"}, {"team", "red"}}, 1111, 2222},
       {TemplateRecord{"tmpl-a1-v1", "alice-v1", kModel, RandomUnit(rng), 1111, {}, false},
        TemplateRecord{"tmpl-a2-v1", "alice-v1", kModel, RandomUnit(rng), 2222, {}, false}}},
      {IdentityRecord{"bob-v1", {{"note", "line1\nline2 ünïcode"}}, 1500, 1500},
       {TemplateRecord{"tmpl-b1-v1", "bob-v1", kModel, RandomUnit(rng), 1500, {}, false}}},
      {IdentityRecord{"carol-v1", {}, 3000, 3000},
       {TemplateRecord{"tmpl-c1-v1", "carol-v1", kModel, RandomUnit(rng), 3000, {}, false}}},
  };
  *seqs = {1, 3, 2, 4};  // alice's first, bob's, alice's second, carol's
  return people;
}

TEST(SqliteStoreTest, AVersion1FileIsUpgradedInPlaceIntoTheDefaultGallery) {
  TempDir dir;
  std::mt19937 rng(17);
  const std::string path = dir.File("v1.db");
  std::vector<int64_t> seqs;
  const std::vector<Version1Identity> people = Version1People(rng, &seqs);
  WriteVersion1File(path, people, seqs);
  ASSERT_EQ(RawSql(path, "SELECT version FROM schema_version"), 1);

  {
    auto store = MustOpen(path);
    ASSERT_NE(store, nullptr);
    auto snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    EXPECT_EQ(snapshot->model_id, kModel);
    EXPECT_EQ(snapshot->embedding_dim, kDim);
    ASSERT_EQ(snapshot->galleries.size(), 1u);
    const GalleryContents& g = snapshot->galleries[0];
    EXPECT_EQ(g.record.name, kDefaultGalleryName);
    EXPECT_EQ(g.record.max_templates, 0);
    EXPECT_EQ(g.record.created_unix_ms, 1111) << "the default gallery dates from its first identity";
    ASSERT_EQ(g.identities.size(), people.size());
    for (size_t i = 0; i < people.size(); ++i) {
      const IdentityState& got = g.identities[i];
      const Version1Identity& want = people[i];
      EXPECT_EQ(got.record.identity_id, want.record.identity_id);
      EXPECT_EQ(got.record.metadata, want.record.metadata) << want.record.identity_id;
      EXPECT_EQ(got.record.created_unix_ms, want.record.created_unix_ms);
      EXPECT_EQ(got.record.updated_unix_ms, want.record.updated_unix_ms);
      ASSERT_EQ(got.templates.size(), want.templates.size()) << want.record.identity_id;
      for (size_t t = 0; t < want.templates.size(); ++t) {
        EXPECT_EQ(got.templates[t].template_id, want.templates[t].template_id);
        EXPECT_EQ(got.templates[t].identity_id, want.record.identity_id);
        EXPECT_EQ(got.templates[t].model_id, kModel);
        EXPECT_EQ(got.templates[t].created_unix_ms, want.templates[t].created_unix_ms);
        EXPECT_EQ(FloatBytes(got.templates[t].embedding), FloatBytes(want.templates[t].embedding));
      }
    }
  }
  // The file itself now has the version-2 schema, whole and consistent.
  EXPECT_EQ(RawSql(path, "SELECT version FROM schema_version"), SqliteGalleryStore::kSchemaVersion);
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM schema_version"), 1);
  EXPECT_EQ(RawText(path, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(RawText(path, "PRAGMA foreign_key_check"), "") << "no row breaks a foreign key";
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%\\_2%' ESCAPE '\\'"), 0)
      << "the migration's temporary tables and their indexes were renamed";
  // The same schema as a new file's, object for object.
  const std::string fresh = dir.File("fresh.db");
  ASSERT_NE(MustOpen(fresh), nullptr);
  const std::string kSchemaSql =
      "SELECT group_concat(type || ' ' || name || ' ' || tbl_name || ': ' || coalesce(sql, ''), '\n') FROM "
      "(SELECT * FROM sqlite_schema ORDER BY name)";
  EXPECT_EQ(RawText(path, kSchemaSql), RawText(fresh, kSchemaSql));
  EXPECT_EQ(
      RawText(path, "SELECT group_concat(template_id, ' ') FROM (SELECT template_id FROM templates ORDER BY seq)"),
      "tmpl-a1-v1 tmpl-b1-v1 tmpl-a2-v1 tmpl-c1-v1");
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM templates WHERE gallery = 'default'"), 4);

  // Through the gallery: the same people, found by their templates, in the default gallery.
  auto gallery = OpenGallery(path);
  ASSERT_TRUE(gallery.ok()) << gallery.status();
  EXPECT_EQ((*gallery)->gallery_count(), 1);
  EXPECT_EQ((*gallery)->identity_count(), 3);
  EXPECT_EQ((*gallery)->template_count(), 4);
  const auto collection = CollectionOrEmpty(**gallery);
  EXPECT_EQ(collection->name(), kDefaultGalleryName);
  auto alice = collection->Get("alice-v1");
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->gallery, kDefaultGalleryName);
  EXPECT_EQ(alice->template_ids, (std::vector<std::string>{"tmpl-a1-v1", "tmpl-a2-v1"}));
  EXPECT_EQ(alice->record.metadata, people[0].record.metadata);
  for (const Version1Identity& person : people) {
    for (const TemplateRecord& t : person.templates) {
      auto top = collection->Identify(t.embedding, 1, 0.9f);
      ASSERT_TRUE(top.ok());
      ASSERT_EQ(top->size(), 1u);
      EXPECT_EQ((*top)[0].identity_id, person.record.identity_id);
      EXPECT_EQ((*top)[0].best_template_id, t.template_id);
    }
  }
}

// After the upgrade the file is an ordinary version-2 gallery: it takes new people and galleries, is not
// migrated a second time, and a delete of an upgraded identity leaves no trace of it (the tables the
// migration dropped held copies of every row).
TEST(SqliteStoreTest, AnUpgradedFileWorksLikeANewOne) {
  TempDir dir;
  std::mt19937 rng(18);
  const std::string path = dir.File("v1.db");
  std::vector<int64_t> seqs;
  std::vector<Version1Identity> people = Version1People(rng, &seqs);
  people[1].record.metadata["secret-v1"] = "secret-value-Jk5";
  WriteVersion1File(path, people, seqs);
  std::vector<std::string> new_ids;
  {
    auto gallery = OpenGallery(path);
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    auto more = (*gallery)->Enroll(EnrollCommand{"", "alice-v1", {{"team", "blue"}}, RandomUnits(rng, 1), "req-1", {}});
    ASSERT_TRUE(more.ok()) << more.status();
    new_ids = more->template_ids;
    ASSERT_TRUE((*gallery)->CreateGallery("after-upgrade", 10).ok());
    ASSERT_TRUE(
        (*gallery)->Enroll(EnrollCommand{"after-upgrade", "alice-v1", {}, RandomUnits(rng, 1), "req-2", {}}).ok());
  }
  std::vector<std::string> needles = {"bob-v1", "tmpl-b1-v1", "secret-v1", "secret-value-Jk5",
                                      FloatBytes(people[1].templates[0].embedding)};
  const std::string before = AllFileBytes(path);
  for (size_t i = 0; i < needles.size(); ++i) ASSERT_TRUE(Contains(before, needles[i])) << "needle " << i;
  {
    auto gallery = OpenGallery(path);
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    EXPECT_EQ((*gallery)->gallery_count(), 2);
    auto alice = CollectionOrEmpty(**gallery)->Get("alice-v1");
    ASSERT_TRUE(alice.ok());
    EXPECT_EQ(alice->template_ids, (std::vector<std::string>{"tmpl-a1-v1", "tmpl-a2-v1", new_ids[0]}));
    EXPECT_EQ(alice->record.metadata.at("team"), "blue");
    EXPECT_EQ(alice->record.metadata.at("name"), "Alice");
    EXPECT_EQ(alice->record.created_unix_ms, 1111);
    auto retry = (*gallery)->Enroll(EnrollCommand{"", "alice-v1", {}, RandomUnits(rng, 1), "req-1", {}});
    ASSERT_TRUE(retry.ok());
    EXPECT_TRUE(retry->replayed);
    EXPECT_EQ(retry->template_ids, new_ids);
    auto deleted = (*gallery)->Delete("", "bob-v1");
    ASSERT_TRUE(deleted.ok()) << deleted.status();
    EXPECT_EQ(deleted->templates_deleted, 1);
  }
  EXPECT_EQ(RawSql(path, "SELECT version FROM schema_version"), SqliteGalleryStore::kSchemaVersion);
  const std::string after = AllFileBytes(path);
  for (size_t i = 0; i < needles.size(); ++i) EXPECT_FALSE(Contains(after, needles[i])) << "needle " << i;
  for (const std::string kept : {"alice-v1", "tmpl-a1-v1", "carol-v1", "tmpl-c1-v1"}) {
    EXPECT_TRUE(Contains(after, kept)) << kept;
  }
}

// An upgrade is one transaction: when a step fails half-way (here the file already has a table that
// migration 2 creates after its first statements), the file is left exactly at version 1.
TEST(SqliteStoreTest, AFailedUpgradeLeavesTheVersion1FileAsItWas) {
  TempDir dir;
  std::mt19937 rng(20);
  const std::string path = dir.File("v1.db");
  std::vector<int64_t> seqs;
  const std::vector<Version1Identity> people = Version1People(rng, &seqs);
  WriteVersion1File(path, people, seqs);
  RawSql(path, "CREATE TABLE identity_metadata_2(x INTEGER)");
  const std::string kSchemaSql = "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema ORDER BY name)";
  const std::string schema_before = RawText(path, kSchemaSql);

  auto store = SqliteGalleryStore::Open(path);
  ASSERT_FALSE(store.ok()) << "the upgrade should have failed on the table in its way";
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
  EXPECT_EQ(RawSql(path, "SELECT version FROM schema_version"), 1);
  EXPECT_EQ(RawText(path, kSchemaSql), schema_before) << "no table of the upgrade was left behind";
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM identities"), 3);
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM templates"), 4);
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM identity_metadata"), 3);

  // With the obstacle gone the same file upgrades.
  RawSql(path, "DROP TABLE identity_metadata_2");
  auto gallery = OpenGallery(path);
  ASSERT_TRUE(gallery.ok()) << gallery.status();
  EXPECT_EQ((*gallery)->template_count(), 4);
  EXPECT_EQ(RawSql(path, "SELECT version FROM schema_version"), SqliteGalleryStore::kSchemaVersion);
}

TEST(SqliteStoreTest, AFutureSchemaVersionIsRefusedNamingIt) {
  TempDir dir;
  // A file written by a later build: a version this one has no migration back from.
  const std::string path = dir.File("future.db");
  {
    auto gallery = OpenGallery(path);
    ASSERT_TRUE(gallery.ok());
    ASSERT_TRUE((*gallery)->CreateGallery("kept").ok());
  }
  const int future = SqliteGalleryStore::kSchemaVersion + 1;
  RawSql(path, absl::StrCat("UPDATE schema_version SET version = ", future));
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition, absl::StrCat("schema version '", future, "'"));
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition,
                absl::StrCat("versions 1 to ", SqliteGalleryStore::kSchemaVersion));
  EXPECT_EQ(OpenGallery(path).status().code(), absl::StatusCode::kFailedPrecondition);
  // Refusing changed nothing.
  EXPECT_EQ(RawSql(path, "SELECT version FROM schema_version"), future);
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM galleries"), 2);

  // The same for a version-1 file stamped with a future version: it is not half-migrated either.
  std::mt19937 rng(19);
  const std::string v1 = dir.File("v1-future.db");
  std::vector<int64_t> seqs;
  WriteVersion1File(v1, Version1People(rng, &seqs), seqs);
  RawSql(v1, absl::StrCat("UPDATE schema_version SET version = ", future));
  ExpectRefused(v1, absl::StatusCode::kFailedPrecondition, absl::StrCat("schema version '", future, "'"));
  EXPECT_EQ(RawSql(v1, "SELECT count(*) FROM sqlite_schema WHERE name = 'galleries'"), 0);
  EXPECT_EQ(RawSql(v1, "SELECT count(*) FROM identities"), 3);
}

TEST(SqliteStoreTest, ADirectoryOrMissingParentIsRefused) {
  TempDir dir;
  ExpectRefused(dir.path(), absl::StatusCode::kFailedPrecondition, "is a directory");
  ExpectRefused(dir.File("no/such/dir/g.db"), absl::StatusCode::kFailedPrecondition, "unable to open");
  EXPECT_EQ(SqliteGalleryStore::Open("").status().code(), absl::StatusCode::kInvalidArgument);
}

// Damage a real gallery in several ways; every way must end in a status (or, where SQLite cannot see
// the damage, a gallery that still opens), never a crash.
TEST(SqliteStoreTest, CorruptFilesGiveAStatusNotACrash) {
  TempDir dir;
  std::mt19937 rng(12);
  const std::string good = dir.File("good.db");
  {
    auto gallery = OpenGallery(good);
    ASSERT_TRUE(gallery.ok());
    for (int i = 0; i < 400; ++i) {
      ASSERT_TRUE(
          (*gallery)->Enroll(EnrollCommand{"", "p" + std::to_string(i), {{"k", "v"}}, {RandomUnit(rng)}, "", {}}).ok());
    }
  }
  {
    auto store = MustOpen(good);
    ASSERT_TRUE(store->Checkpoint().ok());
  }
  const std::string bytes = ReadBytes(good);
  ASSERT_GT(bytes.size(), 40000u);
  int refused = 0;
  for (int variant = 0; variant < 12; ++variant) {
    std::string damaged = bytes;
    if (variant == 0) {
      damaged.resize(bytes.size() / 2);  // truncated
    } else if (variant == 1) {
      damaged.resize(100);  // only a header
    } else {
      // Overwrite a few whole pages (never page 1, whose damage is the not-a-database case).
      std::uniform_int_distribution<size_t> page(1, bytes.size() / 4096 - 1);
      for (int k = 0; k < 3; ++k) {
        const size_t at = page(rng) * 4096;
        for (size_t j = 0; j < 4096; ++j) damaged[at + j] = static_cast<char>(rng());
      }
    }
    const std::string path = dir.File("damaged-" + std::to_string(variant) + ".db");
    WriteBytes(path, damaged);
    auto gallery = OpenGallery(path);
    if (!gallery.ok()) {
      ++refused;
      EXPECT_THAT(gallery.status().code(), AnyOf(absl::StatusCode::kDataLoss, absl::StatusCode::kFailedPrecondition,
                                                 absl::StatusCode::kInternal))
          << gallery.status();
      EXPECT_FALSE(gallery.status().message().empty());
    }
  }
  EXPECT_GE(refused, 8);
}

}  // namespace
}  // namespace veriface::testing
