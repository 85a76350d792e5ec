// The SQLite store on its own: round trips, the file format's promises (WAL, no trace after delete),
// and refusing files it should not touch.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "core/gallery/gallery.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/test_env.h"

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

std::unique_ptr<SqliteGalleryStore> MustOpen(const std::string& path) {
  auto store = SqliteGalleryStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(SqliteStoreTest, RoundTripsEverythingExactly) {
  TempDir dir;
  std::mt19937 rng(7);
  IdentityRecord alice{"alice", {{"name", "Alice"}, {"note", "line1\nline2 ünïcode"}}, 111, 222};
  std::vector<TemplateRecord> templates;
  for (int i = 0; i < 3; ++i) {
    templates.push_back(TemplateRecord{"t" + std::to_string(i), "alice", kModel, RandomUnit(rng), 1000 + i});
  }
  {
    auto store = MustOpen(dir.File("g.db"));
    auto empty = store->Load();
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty->model_id.empty());
    EXPECT_TRUE(empty->templates.empty());
    ASSERT_TRUE(store->BindModel(kModel, kDim).ok());
    ASSERT_TRUE(store->AddTemplates(alice, templates).ok());
  }
  auto store = MustOpen(dir.File("g.db"));
  auto snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->model_id, kModel);
  EXPECT_EQ(snapshot->embedding_dim, kDim);
  ASSERT_EQ(snapshot->identities.size(), 1u);
  EXPECT_EQ(snapshot->identities[0].identity_id, "alice");
  EXPECT_EQ(snapshot->identities[0].metadata, alice.metadata);
  EXPECT_EQ(snapshot->identities[0].created_unix_ms, 111);
  EXPECT_EQ(snapshot->identities[0].updated_unix_ms, 222);
  ASSERT_EQ(snapshot->templates.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(snapshot->templates[i].template_id, templates[i].template_id);
    EXPECT_EQ(snapshot->templates[i].model_id, kModel);
    EXPECT_EQ(snapshot->templates[i].created_unix_ms, 1000 + i);
    EXPECT_EQ(FloatBytes(snapshot->templates[i].embedding), FloatBytes(templates[i].embedding));
  }
  EXPECT_EQ(store->DeleteIdentity("nobody").code(), absl::StatusCode::kNotFound);
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
  ASSERT_TRUE(store->AddTemplates(bob, {TemplateRecord{"dup", "bob", kModel, RandomUnit(rng), 1}}).ok());
  IdentityRecord carol{"carol", {{"k", "v"}}, 2, 2};
  auto status = store->AddTemplates(carol, {TemplateRecord{"fresh", "carol", kModel, RandomUnit(rng), 2},
                                            TemplateRecord{"dup", "carol", kModel, RandomUnit(rng), 2}});
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("UNIQUE"));
  auto snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot->identities.size(), 1u);  // carol's identity row was rolled back with the templates
  EXPECT_EQ(snapshot->templates.size(), 1u);
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
      ASSERT_TRUE((*gallery)->Enroll("keeper-" + std::to_string(i), {}, {RandomUnit(rng)}).ok());
    }
    auto ids = (*gallery)->Enroll("victim-Zq7Xw", {{"secret-key", "secret-value-8uJ2"}}, victim_embeddings);
    ASSERT_TRUE(ids.ok());
    victim_templates = *ids;
    for (int i = 50; i < 100; ++i) {
      ASSERT_TRUE((*gallery)->Enroll("keeper-" + std::to_string(i), {}, {RandomUnit(rng)}).ok());
    }
  }
  // Gallery::Enroll renormalises, so look for the bytes the store actually holds.
  std::vector<std::string> needles = {"victim-Zq7Xw", "secret-key", "secret-value-8uJ2"};
  {
    auto store = MustOpen(path);
    auto snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok());
    for (const auto& t : snapshot->templates) {
      if (t.identity_id == "victim-Zq7Xw") needles.push_back(FloatBytes(t.embedding));
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
    ASSERT_TRUE(store->DeleteIdentity("victim-Zq7Xw").ok());
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
      ASSERT_TRUE((*gallery)->Enroll(ids[i], {{"n", ids[i]}}, {RandomUnit(rng)}).ok());
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
    ASSERT_TRUE((*gallery)->Delete(ids[i]).ok());
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
      ASSERT_TRUE((*gallery)->Enroll("p" + std::to_string(i), {{"k", "v"}}, {RandomUnit(rng)}).ok());
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
