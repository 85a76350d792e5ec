// The gallery across restarts and crashes, graceful shutdown, and start-up refusals (bad configuration,
// a gallery of another model). Each test starts its own real veriface-server.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "core/model/model_spec.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<ServerProcess> StartOrDie(const std::string& gallery, const std::vector<std::string>& args = {}) {
  auto server = ServerProcess::Start(gallery, args);
  EXPECT_TRUE(server.ok()) << server.status().message();
  return server.ok() ? *std::move(server) : nullptr;
}

grpc::Status Enroll(ServerProcess& server, const std::string& id, const std::string& image,
                    v1::EnrollResponse* response, const std::map<std::string, std::string>& metadata = {}) {
  v1::EnrollRequest request;
  request.set_identity_id(id);
  request.add_images(image);
  request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
  request.mutable_metadata()->insert(metadata.begin(), metadata.end());
  return server.stub()->Enroll(Context().get(), request, response);
}

absl::StatusOr<v1::Identity> Get(ServerProcess& server, const std::string& id) {
  v1::GetIdentityRequest request;
  request.set_identity_id(id);
  v1::Identity identity;
  const grpc::Status s = server.stub()->GetIdentity(Context().get(), request, &identity);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return identity;
}

TEST(DurabilityTest, ARestartKeepsTheGallery) {
  TempDir dir;
  const std::string gallery = dir.File("gallery.db");
  std::string laura, colin;
  {
    auto server = StartOrDie(gallery);
    ASSERT_NE(server, nullptr);
    v1::EnrollResponse r;
    ASSERT_TRUE(Enroll(*server, "Laura_Bush", LfwImage("Laura_Bush", 1), &r, {{"name", "Laura Bush"}}).ok());
    laura = r.template_ids(0);
    ASSERT_TRUE(Enroll(*server, "Colin_Powell", LfwImage("Colin_Powell", 1), &r).ok());
    colin = r.template_ids(0);
    EXPECT_EQ(server->Stop(), 0) << server->log();
    EXPECT_THAT(server->log(), HasSubstr("stopped"));
  }
  auto server = StartOrDie(gallery);
  ASSERT_NE(server, nullptr);
  auto identity = Get(*server, "Laura_Bush");
  ASSERT_TRUE(identity.ok()) << identity.status().message();
  ASSERT_EQ(identity->template_ids_size(), 1);
  EXPECT_EQ(identity->template_ids(0), laura);
  EXPECT_EQ(identity->metadata().at("name"), "Laura Bush");
  identity = Get(*server, "Colin_Powell");
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->template_ids(0), colin);

  v1::IdentifyRequest request;
  request.set_image(LfwImage("Colin_Powell", 2));
  request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
  v1::IdentifyResponse found;
  ASSERT_TRUE(server->stub()->Identify(Context().get(), request, &found).ok());
  ASSERT_GE(found.matches_size(), 1);
  EXPECT_EQ(found.matches(0).identity_id(), "Colin_Powell");
  EXPECT_EQ(server->Stop(), 0);
}

TEST(DurabilityTest, KillNineDuringAStreamLosesNoAcknowledgedEnrolment) {
  TempDir dir;
  const std::string gallery = dir.File("gallery.db");
  const std::vector<std::string> people = {"George_W_Bush",   "Colin_Powell",      "Tony_Blair",
                                           "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon"};
  std::vector<std::pair<std::string, std::string>> items;  // identity, image
  for (int n = 1; n <= 12; ++n) {
    for (const auto& p : people) items.emplace_back("kill-" + p, LfwImage(p, n));
  }
  auto server = StartOrDie(gallery);
  ASSERT_NE(server, nullptr);

  auto killed = EnrolStreamAndKill(*server, items, 10);
  ASSERT_TRUE(killed.ok()) << killed.status();
  const auto& acknowledged = *killed;

  server = StartOrDie(gallery);
  ASSERT_NE(server, nullptr);
  for (const auto& [id, template_id] : acknowledged) {
    auto identity = Get(*server, id);
    ASSERT_TRUE(identity.ok()) << id << ": " << identity.status().message();
    const auto& ids = identity->template_ids();
    EXPECT_NE(std::find(ids.begin(), ids.end(), template_id), ids.end()) << id << " lost " << template_id;
  }
  EXPECT_EQ(server->Stop(), 0);
}

TEST(DurabilityTest, DeleteRemovesTheIdentityFromMemoryAndFromTheFile) {
  TempDir dir;
  const std::string gallery = dir.File("gallery.db");
  auto server = StartOrDie(gallery);
  ASSERT_NE(server, nullptr);
  v1::EnrollResponse r;
  ASSERT_TRUE(
      Enroll(*server, "delete-me-7f3a9c", LfwImage("Jennifer_Aniston", 1), &r, {{"note", "marker-9b1e44d2"}}).ok());
  const std::string template_id = r.template_ids(0);
  ASSERT_TRUE(Enroll(*server, "keep-me", LfwImage("Serena_Williams", 1), &r).ok());
  v1::DeleteIdentityRequest del;
  del.set_identity_id("delete-me-7f3a9c");
  v1::DeleteIdentityResponse deleted;
  ASSERT_TRUE(server->stub()->DeleteIdentity(Context().get(), del, &deleted).ok());
  EXPECT_EQ(Get(*server, "delete-me-7f3a9c").status().code(), absl::StatusCode::kNotFound);

  v1::IdentifyRequest identify;
  identify.set_image(LfwImage("Jennifer_Aniston", 1));
  identify.set_face_selection(v1::FACE_SELECTION_CENTRAL);
  identify.set_include_below_threshold(true);
  identify.set_top_k(10);
  v1::IdentifyResponse found;
  ASSERT_TRUE(server->stub()->Identify(Context().get(), identify, &found).ok());
  ASSERT_EQ(found.matches_size(), 1);
  EXPECT_EQ(found.matches(0).identity_id(), "keep-me");
  EXPECT_EQ(server->Stop(), 0);

  // No trace in the database file or its write-ahead log.
  for (const std::string& path : {gallery, gallery + "-wal"}) {
    if (!std::filesystem::exists(path)) continue;
    const std::string bytes = ReadBytes(path);
    EXPECT_EQ(bytes.find("delete-me-7f3a9c"), std::string::npos) << path;
    EXPECT_EQ(bytes.find("marker-9b1e44d2"), std::string::npos) << path;
    EXPECT_EQ(bytes.find(template_id), std::string::npos) << path;
  }
  server = StartOrDie(gallery);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Get(*server, "delete-me-7f3a9c").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Get(*server, "keep-me").ok());
}

TEST(DurabilityTest, SigtermDrainsCallsInProgressAndExitsZero) {
  TempDir dir;
  auto server = StartOrDie(dir.File("gallery.db"), {"--set", "server.shutdown_grace_seconds=120"});
  ASSERT_NE(server, nullptr);
  constexpr int kCalls = 6;
  std::vector<grpc::Status> results(kCalls);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      v1::VerifyRequest request;
      request.mutable_a()->set_image(LfwImage("Tony_Blair", i + 1));
      request.mutable_b()->set_image(LfwImage("Tony_Blair", i + 2));
      v1::VerifyResponse response;
      results[static_cast<size_t>(i)] = server->stub()->Verify(Context(120).get(), request, &response);
    });
  }
  // Signal once the detection stage has started on the calls, so that they are surely in progress.
  while (true) {
    auto metrics = HttpGet(server->metrics_port(), "/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status().message();
    if (MetricValue(*metrics, "veriface_batch_queue_wait_seconds_count", {{"stage", "detect"}}) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const int code = server->Stop();
  for (auto& t : threads) t.join();
  EXPECT_EQ(code, 0) << server->log();
  int ok = 0;
  for (const grpc::Status& s : results) {
    // A call that had not reached the server before it stopped accepting is refused, never broken.
    EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::UNAVAILABLE) << s.error_message();
    ok += s.ok() ? 1 : 0;
  }
  EXPECT_GE(ok, 1);
  EXPECT_THAT(server->log(), HasSubstr("SIGTERM"));
}

TEST(DurabilityTest, AGalleryOfAnotherModelIsRefused) {
  TempDir dir;
  const std::string gallery = dir.File("gallery.db");
  {
    auto store = SqliteGalleryStore::Open(gallery);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->BindModel("some-other-model-123", 128).ok());
    TemplateRecord t;
    t.template_id = "t1";
    t.identity_id = "someone";
    t.model_id = "some-other-model-123";
    t.embedding.assign(128, 0.0F);
    t.embedding[0] = 1.0F;
    TemplateWrite write;
    write.gallery = kDefaultGalleryName;
    write.identity.identity_id = "someone";
    write.templates = {t};
    ASSERT_TRUE((*store)->AddTemplates(write).ok());
  }
  auto spec = ReadModelSpec(DefaultModelDir());
  ASSERT_TRUE(spec.ok());
  auto server = ServerProcess::Start(gallery);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("some-other-model-123"));
  EXPECT_THAT(std::string(server.status().message()), HasSubstr(spec->model_id));
}

TEST(ConfigurationTest, BadConfigurationStopsTheServerWithAClearMessage) {
  auto r = RunCommand({ServerBinary(), "--set", "inference.embed.max_batch=0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("inference.embed.max_batch"));
  EXPECT_THAT(r.err, HasSubstr("out of range"));

  r = RunCommand({ServerBinary(), "--set", "inference.embed.max_bach=8"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown configuration key 'inference.embed.max_bach'"));

  r = RunCommand({ServerBinary(), "--set", "metrics.enabled=perhaps"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("metrics.enabled"));

  r = RunCommand({ServerBinary(), "--set", "quality.enroll_min_level=best"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("'best' is not one of low, medium, high"));
  r = RunCommand({ServerBinary(), "--set", "quality.sharpness.low=0.9", "--set", "quality.sharpness.medium=0.5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("quality.sharpness.low (0.9) must be at most quality.sharpness.medium (0.5)"));
  r = RunCommand({ServerBinary(), "--set", "thresholds.gallery_calibration.operating_point=best_accuracy"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is not a far_<rate> operating point"));

  TempDir dir;
  {
    std::ofstream bad(dir.File("bad.yaml"));
    bad << "server:\n  listen: [unclosed\n";
  }
  r = RunCommand({ServerBinary(), "--config", dir.File("bad.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.yaml"));

  r = RunCommand({ServerBinary(), "--config", dir.File("missing.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("missing.yaml"));

  // A model bundle that is not there: the server says so and exits non-zero.
  r = RunCommand({ServerBinary(), "--model", dir.File("no-model"), "--gallery", dir.File("g.db"), "--listen",
                  "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no-model"));

  // Index options that only make sense together are checked when the gallery opens, before serving.
  std::vector<std::string> argv = ServerCommandLine(dir.File("g.db"));
  for (const char* set : {"gallery.index.type=ivf-int8", "gallery.index.ivf_lists=64", "gallery.index.ivf_nprobe=65"}) {
    argv.insert(argv.end(), {"--set", set});
  }
  r = RunCommand(argv);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("gallery.index.ivf_nprobe 65 is not in [1, gallery.index.ivf_lists = 64]"));
}

// gRPC's SO_REUSEPORT default would let a second server share the port and the kernel split the calls
// between two servers with two different galleries.
TEST(ConfigurationTest, ASecondServerOnATakenPortFailsClearly) {
  TempDir dir;
  auto first = ServerProcess::Start(dir.File("a.db"));
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<std::string> argv = ServerCommandLine(dir.File("b.db"));
  const auto listen = std::find(argv.begin(), argv.end(), "--listen");
  ASSERT_NE(listen, argv.end());
  *std::next(listen) = (*first)->address();
  const CommandResult r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot listen on '" + (*first)->address() + "'"));
  EXPECT_EQ((*first)->Health(), "SERVING");
}

TEST(ConfigurationTest, TheShippedFileDocumentsEveryKeyWithItsDefault) {
  const auto defaults = RunCommand({ServerBinary(), "--print-config"});
  ASSERT_EQ(defaults.exit_code, 0) << defaults.err;
  const std::string file = SourceDir() + "/config/veriface.yaml";
  const auto shipped = RunCommand({ServerBinary(), "--config", file, "--print-config"});
  ASSERT_EQ(shipped.exit_code, 0) << shipped.err;
  EXPECT_EQ(shipped.out, defaults.out);
  // Every key appears in the file itself (not only through the defaults).
  const std::string text = ReadBytes(file);
  std::istringstream lines(defaults.out);
  std::string line;
  int keys = 0;
  while (std::getline(lines, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(line.find_first_not_of(' '), colon - line.find_first_not_of(' '));
    EXPECT_NE(text.find(key + ":"), std::string::npos) << key;
    ++keys;
  }
  EXPECT_GT(keys, 30);

  // Command-line flags override the file.
  const auto overridden = RunCommand(
      {ServerBinary(), "--config", file, "--device", "auto", "--set", "inference.embed.max_batch=8", "--print-config"});
  ASSERT_EQ(overridden.exit_code, 0) << overridden.err;
  EXPECT_THAT(overridden.out, HasSubstr("device: \"auto\""));
  EXPECT_THAT(overridden.out, HasSubstr("max_batch: 8"));
}

}  // namespace
}  // namespace veriface::testing
