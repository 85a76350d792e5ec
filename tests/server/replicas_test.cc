// Several real veriface-server processes on one real PostgreSQL server (started by the test on loopback):
// writes on one replica are read on the others, a replica killed mid-stream loses nothing acknowledged,
// the database going away and coming back under traffic, request ids retried on another replica, and
// replicas starting together on an empty database.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/server/server_process.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresInstalled()) GTEST_SKIP() << "PostgreSQL 15 is not installed (deploy/setup.sh installs it)";
    auto pg = PostgresServer::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = std::move(*pg);
  }

  ServerOptions ReplicaOptions() const {
    ServerOptions options;
    options.extra_args = {"--gallery-store", "postgres",
                          "--postgres-dsn",  pg_->conninfo(),
                          "--set",           "gallery.postgres.poll_interval_ms=200",
                          "--set",           "gallery.postgres.stale_after_ms=1000"};
    options.env = {{"VERIFACE_POSTGRES_PASSWORD", pg_->password()}};
    return options;
  }

  // Started together, as an orchestrator starts a Deployment's pods.
  std::vector<std::unique_ptr<ServerProcess>> StartReplicas(int n) {
    std::vector<absl::StatusOr<std::unique_ptr<ServerProcess>>> started(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] { started[i] = ServerProcess::Start(dir_.File("unused.db"), ReplicaOptions()); });
    }
    for (auto& t : threads) t.join();
    std::vector<std::unique_ptr<ServerProcess>> out;
    for (auto& s : started) {
      EXPECT_TRUE(s.ok()) << s.status();
      out.push_back(s.ok() ? *std::move(s) : nullptr);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<PostgresServer> pg_;
};

grpc::Status Enroll(ServerProcess& server, const std::string& id, const std::string& image,
                    v1::EnrollResponse* response, const std::string& request_id = "", const std::string& gallery = "") {
  v1::EnrollRequest request;
  request.set_identity_id(id);
  request.add_images(image);
  request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
  request.set_request_id(request_id);
  request.set_gallery(gallery);
  return server.stub()->Enroll(Context().get(), request, response);
}

absl::StatusOr<v1::Identity> Get(ServerProcess& server, const std::string& id, const std::string& gallery = "") {
  v1::GetIdentityRequest request;
  request.set_identity_id(id);
  request.set_gallery(gallery);
  v1::Identity identity;
  const grpc::Status s = server.stub()->GetIdentity(Context().get(), request, &identity);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return identity;
}

std::vector<std::string> ListIds(ServerProcess& server) {
  v1::ListIdentitiesRequest request;
  v1::ListIdentitiesResponse response;
  if (!server.stub()->ListIdentities(Context().get(), request, &response).ok()) return {"<error>"};
  std::vector<std::string> ids;
  for (const auto& i : response.identities()) ids.push_back(i.identity_id());
  return ids;
}

v1::ModelInfo Info(ServerProcess& server) {
  v1::ModelInfo info;
  EXPECT_TRUE(server.stub()->GetModelInfo(Context().get(), v1::GetModelInfoRequest(), &info).ok());
  return info;
}

// Replicas follow each other within about a poll interval; give them far longer on a loaded machine.
bool Eventually(const std::function<bool()>& probe, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (probe()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return probe();
}

TEST_F(ReplicasTest, ThreeReplicasServeOneGallery) {
  auto replicas = StartReplicas(3);
  ASSERT_EQ(replicas.size(), 3u);
  for (const auto& r : replicas) ASSERT_NE(r, nullptr);
  ServerProcess& a = *replicas[0];
  ServerProcess& b = *replicas[1];
  ServerProcess& c = *replicas[2];
  EXPECT_EQ(Info(a).gallery_store(), "postgres");

  // Enrol on A; identify on B and C.
  v1::EnrollResponse enrolled;
  ASSERT_TRUE(Enroll(a, "colin", LfwImage("Colin_Powell", 1), &enrolled).ok());
  EXPECT_TRUE(Get(a, "colin").ok()) << "a replica reads its own write at once";
  for (ServerProcess* other : {&b, &c}) {
    EXPECT_TRUE(Eventually([&] {
      v1::IdentifyRequest request;
      request.set_image(LfwImage("Colin_Powell", 2));
      request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
      v1::IdentifyResponse found;
      return other->stub()->Identify(Context().get(), request, &found).ok() && found.matches_size() > 0 &&
             found.matches(0).identity_id() == "colin" && found.matches(0).template_id() == enrolled.template_ids(0);
    })) << "replica on port "
        << other->grpc_port() << " never found A's enrolment";
  }
  // A gallery made on B is there on C, with what B put in it.
  v1::CreateGalleryRequest create;
  create.set_name("lobby");
  v1::GalleryInfo made;
  ASSERT_TRUE(b.stub()->CreateGallery(Context().get(), create, &made).ok());
  ASSERT_TRUE(Enroll(b, "laura", LfwImage("Laura_Bush", 1), &enrolled, "", "lobby").ok());
  EXPECT_TRUE(Eventually([&] { return Get(c, "laura", "lobby").ok(); }));
  EXPECT_EQ(Get(c, "laura").status().code(), absl::StatusCode::kNotFound) << "not in the default gallery";

  // Delete on C; gone on A. List and Get agree everywhere.
  v1::DeleteIdentityRequest del;
  del.set_identity_id("colin");
  v1::DeleteIdentityResponse deleted;
  ASSERT_TRUE(c.stub()->DeleteIdentity(Context().get(), del, &deleted).ok());
  EXPECT_TRUE(Eventually([&] { return absl::IsNotFound(Get(a, "colin").status()); }));
  ASSERT_TRUE(Enroll(a, "tony", LfwImage("Tony_Blair", 1), &enrolled).ok());
  for (ServerProcess* r : {&a, &b, &c}) {
    EXPECT_TRUE(Eventually([&] { return ListIds(*r) == std::vector<std::string>{"tony"}; })) << r->grpc_port();
    auto tony = Get(*r, "tony");
    ASSERT_TRUE(tony.ok());
    EXPECT_EQ(tony->template_ids(0), enrolled.template_ids(0));
  }
  // Lag is measured where the changes arrived.
  auto metrics = HttpGet(b.metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_GT(MetricValue(*metrics, "veriface_gallery_replication_lag_seconds_count", {}), 0);
  EXPECT_EQ(MetricValue(*metrics, "veriface_gallery_store_up", {}), 1);
  EXPECT_EQ(MetricValue(*metrics, "veriface_galleries", {}), 2);
}

TEST_F(ReplicasTest, ARequestIdRetriedOnAnotherReplicaEnrolsOnce) {
  auto replicas = StartReplicas(2);
  ASSERT_TRUE(replicas[0] && replicas[1]);
  v1::EnrollResponse first, retry;
  ASSERT_TRUE(Enroll(*replicas[0], "gerhard", LfwImage("Gerhard_Schroeder", 1), &first, "client-req-7").ok());
  EXPECT_FALSE(first.replayed());
  // The client never saw the answer and retries elsewhere, at once.
  ASSERT_TRUE(Enroll(*replicas[1], "gerhard", LfwImage("Gerhard_Schroeder", 1), &retry, "client-req-7").ok());
  EXPECT_TRUE(retry.replayed());
  EXPECT_EQ(retry.template_ids(0), first.template_ids(0));
  EXPECT_TRUE(Eventually([&] {
    auto g = Get(*replicas[1], "gerhard");
    return g.ok() && g->template_ids_size() == 1;
  }));
  auto g = Get(*replicas[0], "gerhard");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->template_ids_size(), 1) << "the retry added nothing";
}

TEST_F(ReplicasTest, KillNineOfAReplicaMidStreamLosesNoAcknowledgedEnrolment) {
  auto replicas = StartReplicas(2);
  ASSERT_TRUE(replicas[0] && replicas[1]);
  ServerProcess& victim = *replicas[0];
  const std::vector<std::string> people = {"George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld"};
  std::vector<std::pair<std::string, std::string>> items;
  for (int n = 1; n <= 10; ++n) {
    for (const auto& p : people) items.emplace_back("kill-" + p, LfwImage(p, n));
  }
  auto killed = EnrolStreamAndKill(victim, items, 6);
  ASSERT_TRUE(killed.ok()) << killed.status();
  const auto& acknowledged = *killed;

  const auto all_there = [&](ServerProcess& server) {
    for (const auto& [id, template_id] : acknowledged) {
      auto identity = Get(server, id);
      if (!identity.ok()) return false;
      const auto& ids = identity->template_ids();
      if (std::find(ids.begin(), ids.end(), template_id) == ids.end()) return false;
    }
    return true;
  };
  EXPECT_TRUE(Eventually([&] { return all_there(*replicas[1]); })) << "the other replica misses an acknowledged one";
  auto restarted = ServerProcess::Start(dir_.File("unused.db"), ReplicaOptions());
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_TRUE(all_there(**restarted)) << "the restarted replica misses an acknowledged one";
}

TEST_F(ReplicasTest, WhenTheDatabaseStopsWritesAreRefusedReadsServedAndItRecoversWithoutRestart) {
  auto replicas = StartReplicas(2);
  ASSERT_TRUE(replicas[0] && replicas[1]);
  ServerProcess& a = *replicas[0];
  ServerProcess& b = *replicas[1];
  v1::EnrollResponse enrolled;
  ASSERT_TRUE(Enroll(a, "ariel", LfwImage("Ariel_Sharon", 1), &enrolled).ok());
  ASSERT_TRUE(Eventually([&] { return Get(b, "ariel").ok(); }));

  // Traffic keeps coming while the database goes away.
  std::atomic<bool> stop{false};
  std::atomic<int> reads_ok{0}, reads_failed{0};
  std::thread traffic([&] {
    while (!stop) {
      v1::IdentifyRequest request;
      request.set_image(LfwImage("Ariel_Sharon", 2));
      request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
      v1::IdentifyResponse found;
      const bool ok = b.stub()->Identify(Context().get(), request, &found).ok() && found.matches_size() == 1;
      (ok ? reads_ok : reads_failed)++;
    }
  });
  ASSERT_TRUE(pg_->Stop().ok());
  const grpc::Status refused = Enroll(a, "donald", LfwImage("Donald_Rumsfeld", 1), &enrolled, "outage-1");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("PostgreSQL"));
  EXPECT_TRUE(Get(a, "ariel").ok()) << "reads are served from memory";
  EXPECT_TRUE(Eventually([&] { return Info(b).gallery_may_be_stale(); })) << "the staleness is visible";
  EXPECT_EQ(a.Health(), "SERVING") << "readiness does not pull a replica that can still answer reads";
  auto metrics = HttpGet(b.metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(MetricValue(*metrics, "veriface_gallery_store_up", {}), 0);
  EXPECT_GT(MetricValue(*metrics, "veriface_gallery_stale_seconds", {}), 0);

  ASSERT_TRUE(pg_->Resume().ok());
  // The client's retry (same request id) goes through once the database is back, with no restart.
  grpc::Status resumed;
  EXPECT_TRUE(Eventually([&] {
    resumed = Enroll(a, "donald", LfwImage("Donald_Rumsfeld", 1), &enrolled, "outage-1");
    return resumed.ok();
  })) << resumed.error_message();
  EXPECT_TRUE(Eventually([&] { return Get(b, "donald").ok() && !Info(b).gallery_may_be_stale(); }));
  stop = true;
  traffic.join();
  EXPECT_GT(reads_ok.load(), 0);
  EXPECT_EQ(reads_failed.load(), 0) << "every read during the outage was answered";
  EXPECT_EQ(ListIds(a), ListIds(b));
  EXPECT_EQ(a.Stop(), 0) << a.log();
  EXPECT_THAT(a.log(), HasSubstr("gallery store unreachable"));
}

}  // namespace
}  // namespace veriface::testing
