// The gallery over a real PostgreSQL server, as several replicas in one process (each with its own
// store and connections): following each other's writes, the change log's ordering trap, request ids,
// limits under concurrency, replicas starting together, and the database going away and coming back.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/gallery/gallery.h"
#include "core/gallery/gallery_follower.h"
#include "core/gallery/postgres_gallery_store.h"
#include "core/postgres/pg_connection.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/postgres_server.h"

namespace veriface::testing {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresInstalled()) GTEST_SKIP() << "PostgreSQL 15 is not installed (deploy/setup.sh installs it)";
    auto server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  PostgresStoreOptions StoreOptions() const {
    PostgresStoreOptions options;
    options.conninfo = server_->conninfo();
    options.password = server_->password();
    options.connect_timeout_s = 2;
    return options;
  }

  // One replica: its own store, its own connections, its own memory.
  std::unique_ptr<Gallery> Replica(const std::string& model = kModel, GalleryLimits limits = {}) {
    auto store = PostgresGalleryStore::Open(StoreOptions());
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    auto gallery = Gallery::Open(*std::move(store), model, kDim, limits);
    EXPECT_TRUE(gallery.ok()) << gallery.status();
    return gallery.ok() ? *std::move(gallery) : nullptr;
  }

  std::unique_ptr<pg::Connection> Connect() const {
    pg::ConnectOptions options;
    options.conninfo = server_->conninfo();
    options.password = server_->password();
    auto c = pg::Connection::Connect(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  std::vector<std::string> MustEnroll(Gallery& g, const std::string& id, int n, const std::string& gallery = "",
                                      const std::string& request_id = "") {
    std::vector<std::vector<float>> embeddings;
    for (int i = 0; i < n; ++i) embeddings.push_back(RandomUnit(rng_));
    auto out = g.Enroll(EnrollCommand{gallery, id, {{"name", id}}, embeddings, request_id, {}});
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->template_ids : std::vector<std::string>{};
  }

  static std::vector<std::string> Templates(const Gallery& g, const std::string& id, const std::string& gallery = "") {
    auto c = g.Find(gallery);
    if (!c.ok()) return {};
    auto info = (*c)->Get(id);
    return info.ok() ? info->template_ids : std::vector<std::string>{};
  }

  static void MustSync(Gallery& g) {
    auto report = g.Sync();
    ASSERT_TRUE(report.ok()) << report.status();
  }

  std::unique_ptr<PostgresServer> server_;
  std::mt19937 rng_{42};
};

TEST_F(PostgresStoreTest, ReplicasFollowEachOthersEnrolmentsAndDeletes) {
  auto a = Replica(), b = Replica(), c = Replica();
  ASSERT_TRUE(a && b && c);
  const auto alice = MustEnroll(*a, "alice", 2);
  const auto bob = MustEnroll(*b, "bob", 1);
  EXPECT_EQ(Templates(*a, "alice"), alice) << "a replica answers its own writes at once";
  EXPECT_TRUE(Templates(*c, "alice").empty()) << "before Sync, c has not seen a's write";
  for (Gallery* g : {a.get(), b.get(), c.get()}) MustSync(*g);
  for (Gallery* g : {a.get(), b.get(), c.get()}) {
    EXPECT_EQ(Templates(*g, "alice"), alice);
    EXPECT_EQ(Templates(*g, "bob"), bob);
    EXPECT_EQ(g->template_count(), 3);
  }
  auto deleted = c->Delete("", "alice");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->templates_deleted, 2);
  MustSync(*a);
  MustSync(*b);
  for (Gallery* g : {a.get(), b.get(), c.get()}) {
    EXPECT_TRUE(Templates(*g, "alice").empty());
    auto page = (*g->Find(""))->List(10, "");
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->identities.size(), 1u);
    EXPECT_EQ(page->identities[0].record.identity_id, "bob");
    EXPECT_EQ(page->identities[0].record.metadata.at("name"), "bob");
  }
  // A new replica starts from a consistent snapshot of all of it.
  auto d = Replica();
  ASSERT_TRUE(d);
  EXPECT_EQ(Templates(*d, "bob"), bob);
  EXPECT_EQ(d->template_count(), 1);
}

// The classic trap: a transaction that took its change-log sequence number first commits last. A follower
// that read "everything above the last number seen" would skip it for ever.
TEST_F(PostgresStoreTest, ASlowTransactionWithAnEarlierSequenceNumberIsNotSkipped) {
  auto writer = Replica(), follower = Replica();
  ASSERT_TRUE(writer && follower);
  // The slow transaction: it writes an identity through the same tables the store uses, logs its change,
  // and stays open.
  auto slow = Connect();
  ASSERT_NE(slow, nullptr);
  const std::vector<float> e = RandomUnit(rng_);
  ASSERT_TRUE(slow->ExecScript("BEGIN").ok());
  ASSERT_TRUE(slow->Exec("UPDATE galleries SET template_count = template_count + 1 WHERE name = 'default'").ok());
  ASSERT_TRUE(slow->Exec("INSERT INTO identities(gallery, identity_id, created_unix_ms, updated_unix_ms) "
                         "VALUES('default', 'slow', 1, 1)")
                  .ok());
  ASSERT_TRUE(slow->Exec("INSERT INTO templates(template_id, gallery, identity_id, model_id, embedding, "
                         "created_unix_ms) VALUES('slow-t', 'default', 'slow', $1, $2, 1)",
                         pg::Params().Text(kModel).Bytes(e.data(), e.size() * sizeof(float)))
                  .ok());
  auto slow_seq = slow->Exec(
      "INSERT INTO changes(origin, gallery, identity_id) VALUES('test', 'default', 'slow') "
      "RETURNING seq");
  ASSERT_TRUE(slow_seq.ok()) << slow_seq.status();
  // Meanwhile another replica's enrolment commits with a later number. (It waits for no lock of the
  // slow transaction: that one holds the default gallery's row, so use another gallery.)
  ASSERT_TRUE(writer->CreateGallery("fast").ok());
  MustEnroll(*writer, "fast-one", 1, "fast");
  auto fast_seq = Connect()->Exec("SELECT max(seq) FROM changes WHERE identity_id = 'fast-one'");
  ASSERT_TRUE(fast_seq.ok());
  ASSERT_GT(fast_seq->Int64(0, 0), slow_seq->Int64(0, 0)) << "the interleaving this test needs did not happen";

  MustSync(*follower);
  EXPECT_EQ(Templates(*follower, "fast-one", "fast").size(), 1u) << "the committed change is applied";
  EXPECT_TRUE(Templates(*follower, "slow").empty()) << "the open transaction is not visible yet";
  MustSync(*follower);  // and polling again while it is open changes nothing

  ASSERT_TRUE(slow->ExecScript("COMMIT").ok());
  MustSync(*follower);
  EXPECT_THAT(Templates(*follower, "slow"), ElementsAreArray({"slow-t"}))
      << "the slow transaction's change, numbered before one already applied, must still arrive";
  // The writer follows it too: it never saw it.
  MustSync(*writer);
  EXPECT_THAT(Templates(*writer, "slow"), ElementsAreArray({"slow-t"}));
}

TEST_F(PostgresStoreTest, ARetriedRequestIdOnAnotherReplicaReturnsTheFirstResult) {
  auto a = Replica(), b = Replica();
  ASSERT_TRUE(a && b);
  const auto first = MustEnroll(*a, "carol", 2, "", "req-123");
  ASSERT_EQ(first.size(), 2u);
  // The client lost the answer and retries on another replica, which has not synced yet.
  std::vector<std::vector<float>> again = {RandomUnit(rng_), RandomUnit(rng_)};
  auto retry = b->Enroll(EnrollCommand{"", "carol", {}, again, "req-123", {}});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->template_ids, first);
  MustSync(*b);
  EXPECT_EQ(Templates(*b, "carol"), first) << "the retry added nothing";
  // The same id for another identity is a client bug, refused by name.
  auto misuse = b->Enroll(EnrollCommand{"", "dave", {}, {RandomUnit(rng_)}, "req-123", {}});
  EXPECT_EQ(misuse.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(misuse.status().message(), HasSubstr("already used for another request"));
  // Deletes too: the retry of a delete that succeeded is answered, not NOT_FOUND.
  auto del = a->Delete("", "carol", "del-1");
  ASSERT_TRUE(del.ok()) << del.status();
  auto del_retry = b->Delete("", "carol", "del-1");
  ASSERT_TRUE(del_retry.ok()) << del_retry.status();
  EXPECT_TRUE(del_retry->replayed);
  EXPECT_EQ(del_retry->templates_deleted, 2);
}

TEST_F(PostgresStoreTest, TheSameRequestIdOnTwoReplicasAtOnceEnrolsOnce) {
  auto a = Replica(), b = Replica();
  ASSERT_TRUE(a && b);
  std::vector<std::vector<float>> ea = {RandomUnit(rng_)}, eb = {RandomUnit(rng_)};
  absl::StatusOr<EnrollOutcome> ra, rb;
  std::thread ta([&] { ra = a->Enroll(EnrollCommand{"", "erin", {}, ea, "same-req", {}}); });
  std::thread tb([&] { rb = b->Enroll(EnrollCommand{"", "erin", {}, eb, "same-req", {}}); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(ra->template_ids, rb->template_ids);
  EXPECT_NE(ra->replayed, rb->replayed) << "exactly one of them wrote";
  MustSync(*a);
  EXPECT_EQ(Templates(*a, "erin").size(), 1u);
}

TEST_F(PostgresStoreTest, ConcurrentEnrolmentsIntoOneIdentityFromTwoReplicasAllLandWithinTheLimit) {
  GalleryLimits limits;
  limits.max_templates_per_identity = 30;
  auto a = Replica(kModel, limits), b = Replica(kModel, limits);
  ASSERT_TRUE(a && b);
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  const auto enrol = [&](Gallery* g, int seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < 20; ++i) {
      auto r = g->Enroll(EnrollCommand{"", "frank", {{absl::StrCat("k", seed), "v"}}, {RandomUnit(rng)}, "", {}});
      if (r.ok()) {
        ++ok;
      } else if (absl::IsResourceExhausted(r.status())) {
        ++exhausted;
      } else {
        ++other;
        ADD_FAILURE() << r.status();
      }
    }
  };
  std::thread ta(enrol, a.get(), 1), tb(enrol, b.get(), 2);
  ta.join();
  tb.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), 30) << "the per-identity limit holds across replicas, checked inside the transaction";
  EXPECT_EQ(exhausted.load(), 10);
  MustSync(*a);
  MustSync(*b);
  EXPECT_EQ(Templates(*a, "frank").size(), 30u);
  EXPECT_EQ(Templates(*a, "frank"), Templates(*b, "frank"));
  auto info = (*b->Find(""))->Get("frank");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->record.metadata.size(), 2u) << "both replicas' metadata merged, neither overwrote the other";
}

TEST_F(PostgresStoreTest, ReplicasStartingTogetherOnAnEmptyDatabaseBothComeUp) {
  constexpr int kReplicas = 4;
  std::vector<std::unique_ptr<Gallery>> replicas(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) threads.emplace_back([&, i] { replicas[i] = Replica(); });
  for (auto& t : threads) t.join();
  for (const auto& r : replicas) {
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->gallery_count(), 1) << "one default gallery, however many created it at once";
  }
  auto versions = Connect()->Exec("SELECT count(*) FROM veriface_schema_version");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->Int64(0, 0), PostgresGalleryStore::kSchemaVersion) << "each migration applied once";
}

TEST_F(PostgresStoreTest, NamedGalleriesAreSeparateAndTheirCreationAndDeletionFollow) {
  auto a = Replica(), b = Replica();
  ASSERT_TRUE(a && b);
  auto created = a->CreateGallery("shop-2", 5);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->max_templates, 5);
  EXPECT_EQ(a->CreateGallery("shop-2").status().code(), absl::StatusCode::kAlreadyExists);
  MustEnroll(*a, "gina", 1, "shop-2");
  MustEnroll(*a, "gina", 1);  // the same id in the default gallery is another person
  MustSync(*b);
  EXPECT_EQ(Templates(*b, "gina", "shop-2").size(), 1u);
  EXPECT_EQ(Templates(*b, "gina").size(), 1u);
  EXPECT_NE(Templates(*b, "gina", "shop-2"), Templates(*b, "gina"));
  // The gallery's own limit holds on the other replica too.
  auto full = b->Enroll(
      EnrollCommand{"shop-2",
                    "hank",
                    {},
                    {RandomUnit(rng_), RandomUnit(rng_), RandomUnit(rng_), RandomUnit(rng_), RandomUnit(rng_)},
                    "",
                    {}});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  auto gone = b->DeleteGallery("shop-2");
  ASSERT_TRUE(gone.ok()) << gone.status();
  MustSync(*a);
  EXPECT_EQ(a->Find("shop-2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Templates(*a, "gina").size(), 1u) << "the default gallery's gina stays";
  EXPECT_EQ(a->DeleteGallery("default").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(PostgresStoreTest, AReplicaOfAnotherModelIsRefused) {
  auto a = Replica();
  ASSERT_TRUE(a);
  MustEnroll(*a, "ivy", 1);
  auto store = PostgresGalleryStore::Open(StoreOptions());
  ASSERT_TRUE(store.ok());
  auto other = Gallery::Open(*std::move(store), "another-model", kDim);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("another-model"));
}

TEST_F(PostgresStoreTest, WhileTheDatabaseIsDownWritesFailReadsServeAndItRecoversByItself) {
  auto a = Replica(), b = Replica();
  ASSERT_TRUE(a && b);
  const auto before = MustEnroll(*a, "jack", 1);
  MustSync(*b);
  FollowOptions follow;
  follow.poll_interval = std::chrono::milliseconds(100);
  follow.stale_after = std::chrono::milliseconds(500);
  follow.max_backoff = std::chrono::milliseconds(200);
  GalleryFollower follower(b.get(), follow, nullptr);

  ASSERT_TRUE(server_->Stop().ok());
  auto refused = a->Enroll(EnrollCommand{"", "kate", {}, {RandomUnit(rng_)}, "down-1", {}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(a->Delete("", "jack").status().code(), absl::StatusCode::kUnavailable);
  // Reads are served from memory.
  EXPECT_EQ(Templates(*a, "jack"), before);
  auto found = (*b->Find(""))->Identify(RandomUnit(rng_), 5, -2);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->size(), 1u);
  // And the follower says the memory may be stale.
  const auto stale_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!follower.freshness().may_be_stale && std::chrono::steady_clock::now() < stale_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(follower.freshness().may_be_stale);
  EXPECT_FALSE(follower.freshness().store_up);
  EXPECT_FALSE(follower.freshness().last_error.empty());

  ASSERT_TRUE(server_->Resume().ok());
  // The same retry now goes through, on the same Gallery objects: nothing was reopened.
  auto retried = a->Enroll(EnrollCommand{"", "kate", {}, {RandomUnit(rng_)}, "down-1", {}});
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_FALSE(retried->replayed) << "the refused attempt wrote nothing";
  const auto converge_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((Templates(*b, "kate").empty() || follower.freshness().may_be_stale) &&
         std::chrono::steady_clock::now() < converge_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Templates(*b, "kate"), retried->template_ids) << "the follower recovered and caught up by itself";
  EXPECT_TRUE(follower.freshness().store_up);
  EXPECT_FALSE(follower.freshness().may_be_stale);
}

TEST_F(PostgresStoreTest, AReplicaAwayLongerThanTheChangeLogKeepsReloadsEverything) {
  auto a = Replica();
  ASSERT_TRUE(a);
  PostgresStoreOptions options = StoreOptions();
  options.change_retention = std::chrono::milliseconds(0);
  auto pruner = PostgresGalleryStore::Open(options);
  ASSERT_TRUE(pruner.ok());
  auto b = Replica();
  ASSERT_TRUE(b);
  MustEnroll(*a, "leo", 1);
  const auto mia = MustEnroll(*a, "mia", 1);
  ASSERT_TRUE(a->Delete("", "leo").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE((*pruner)->PruneChanges().ok());  // b's cursor now points into a pruned stretch
  auto report = b->Sync();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->full_reload);
  EXPECT_TRUE(Templates(*b, "leo").empty());
  EXPECT_EQ(Templates(*b, "mia"), mia);
}

TEST_F(PostgresStoreTest, ThePasswordIsNeededAndNeverShown) {
  PostgresStoreOptions options = StoreOptions();
  options.password = "wrong-" + server_->password();
  auto store = PostgresGalleryStore::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), ::testing::Not(HasSubstr(options.password)));
}

}  // namespace
}  // namespace veriface::testing
