// The controls around callers, against the real veriface-server: the audit line of every write (and of
// every refused one), per-key rate limits answered with RESOURCE_EXHAUSTED and a retry hint, and SIGHUP
// reloading the API keys (and reopening the audit file) without dropping a stream in progress. Plus the
// token bucket and the audit line on their own, and the start-up refusals of bad settings.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/numbers.h"
#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "server/audit_log.h"
#include "server/rate_limiter.h"
#include "tests/security/test_keys.h"
#include "tests/server/server_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using server::RateLimiter;
using server::RateLimits;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = RateLimiter::Clock;
using std::chrono::milliseconds;
using json = nlohmann::json;

// ---- the token bucket ----------------------------------------------------------------------------------

TEST(RateLimiterUnitTest, ABucketAdmitsItsBurstThenRefillsAtItsRate) {
  RateLimits limits;
  limits.all = {2, 3};  // 2 calls/s, 3 at once
  RateLimiter limiter(limits);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("a", t0).admitted) << i;
  const RateLimiter::Decision refused = limiter.Take("a", t0);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after, milliseconds(500));
  EXPECT_FALSE(limiter.Take("a", t0 + milliseconds(490)).admitted);
  EXPECT_TRUE(limiter.Take("a", t0 + milliseconds(500)).admitted);
  EXPECT_TRUE(limiter.Take("b", t0).admitted) << "each key has its own bucket";
  // A long pause refills to the burst, not beyond it.
  const Clock::time_point later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("a", later).admitted) << i;
  EXPECT_FALSE(limiter.Take("a", later).admitted);
}

TEST(RateLimiterUnitTest, NamedKeysOverrideTheDefaultAndZeroIsUnlimited) {
  RateLimits limits;
  limits.keys = {{"slow", {1, 0}}};  // burst 0: as many as the rate, at least 1
  RateLimiter limiter(limits);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Take("fast", t0).admitted) << i;
  EXPECT_TRUE(limiter.Take("slow", t0).admitted);
  const RateLimiter::Decision refused = limiter.Take("slow", t0);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after, milliseconds(1000));
  EXPECT_EQ(refused.limit.per_second, 1);
}

TEST(RateLimiterUnitTest, KeyLimitsParseAndBadOnesAreNamed) {
  const auto parsed = server::ParseKeyRateLimits(" ingest=50:100, board=0.5 ");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ(parsed->at("ingest").per_second, 50);
  EXPECT_EQ(parsed->at("ingest").burst, 100);
  EXPECT_EQ(parsed->at("board").per_second, 0.5);
  EXPECT_TRUE(server::ParseKeyRateLimits("").ok());
  for (const char* bad : {"ingest", "=5", "a=0", "a=-1", "a=x", "a=5:0", "a=5:2:3", "a=1,a=2"}) {
    const auto refused = server::ParseKeyRateLimits(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("rate_limits.keys entry")) << bad;
  }
}

TEST(AuditLineUnitTest, HoldsTheFactsAndOmitsWhatIsEmpty) {
  server::AuditEvent event;
  event.method = "Enroll";
  event.key_name = "ingest";
  event.peer = "ipv4:127.0.0.1:5000";
  event.gallery = "shop";
  event.identity = "al\"ice";
  event.template_ids = {"t1", "t2"};
  event.code = grpc::StatusCode::OK;
  const json line = json::parse(server::AuditLine(event, "2026-12-02T10:00:00.000Z"));
  EXPECT_EQ(line["time"], "2026-12-02T10:00:00.000Z");
  EXPECT_EQ(line["method"], "Enroll");
  EXPECT_EQ(line["key"], "ingest");
  EXPECT_EQ(line["identity"], "al\"ice");
  EXPECT_EQ(line["template_ids"], json::array({"t1", "t2"}));
  EXPECT_EQ(line["code"], "OK");
  EXPECT_FALSE(line.contains("request_id"));
  EXPECT_FALSE(line.contains("stream_index"));
  EXPECT_FALSE(line.contains("error"));
}

// ---- through the real server ---------------------------------------------------------------------------

std::unique_ptr<grpc::ClientContext> WithKey(const std::string& key, double seconds = 60) {
  auto context = Context(seconds);
  if (!key.empty()) context->AddMetadata("authorization", "Bearer " + key);
  return context;
}

v1::EnrollRequest EnrollOf(const std::string& identity, const std::string& image, const std::string& gallery = "") {
  v1::EnrollRequest request;
  request.set_identity_id(identity);
  request.add_images(image);
  request.set_gallery(gallery);
  request.set_min_quality(v1::QUALITY_LEVEL_LOW);
  return request;
}

// Every line of the audit file, parsed.
std::vector<json> AuditLines(const std::string& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

// The lines of `method` (and `identity`, when given).
std::vector<json> LinesOf(const std::vector<json>& lines, const std::string& method, const std::string& identity = "") {
  std::vector<json> out;
  for (const json& l : lines) {
    if (l["method"] == method && (identity.empty() || l.value("identity", "") == identity)) out.push_back(l);
  }
  return out;
}

// One server with three keys (a writer, a reader, a rate-limited reader) and the audit in a file.
class WriteControlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    keys_ = new Keys{RandomKey("vf-ingest"), RandomKey("vf-board"), RandomKey("vf-slow")};
    std::ofstream(dir_->File("keys.txt"))
        << KeyLine("ingest", "writer", keys_->writer) << KeyLine("board", "reader", keys_->reader)
        << KeyLine("slow", "reader", keys_->slow);
    ServerOptions options;
    options.extra_args = {"--set", "auth.mode=api_keys",       "--set", "auth.api_keys_file=" + dir_->File("keys.txt"),
                          "--set", "audit.sink=file",          "--set", "audit.file=" + dir_->File("audit.log"),
                          "--set", "rate_limits.keys=slow=1:2"};
    auto server = ServerProcess::Start(dir_->File("gallery.db"), options);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0) << server_->log();
    }
    delete server_;
    server_ = nullptr;
    delete keys_;
    keys_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the suite's server did not start"; }

  struct Keys {
    std::string writer, reader, slow;
  };
  static TempDir* dir_;
  static Keys* keys_;
  static ServerProcess* server_;
};

TempDir* WriteControlsTest::dir_ = nullptr;
WriteControlsTest::Keys* WriteControlsTest::keys_ = nullptr;
ServerProcess* WriteControlsTest::server_ = nullptr;

TEST_F(WriteControlsTest, EveryWriteLeavesAnAuditLineWithTheKeyNameAndNeverTheKey) {
  auto stub = server_->stub();
  v1::GalleryInfo gallery;
  v1::CreateGalleryRequest create;
  create.set_name("audited");
  ASSERT_TRUE(stub->CreateGallery(WithKey(keys_->writer).get(), create, &gallery).ok());

  v1::EnrollRequest alice = EnrollOf("alice", LfwImage("Colin_Powell", 1), "audited");
  alice.set_request_id("req-alice");
  v1::EnrollResponse enrolled;
  const grpc::Status enrol = stub->Enroll(WithKey(keys_->writer).get(), alice, &enrolled);
  ASSERT_TRUE(enrol.ok()) << enrol.error_message();
  ASSERT_EQ(enrolled.template_ids_size(), 1);

  {  // a stream of two items, the second not an image
    auto context = WithKey(keys_->writer);
    auto stream = stub->EnrollStream(context.get());
    ASSERT_TRUE(stream->Write(EnrollOf("bob", LfwImage("Colin_Powell", 2), "audited")));
    ASSERT_TRUE(stream->Write(EnrollOf("carol", "not an image", "audited")));
    stream->WritesDone();
    v1::EnrollStreamResponse response;
    while (stream->Read(&response)) {
    }
    ASSERT_TRUE(stream->Finish().ok());
  }

  v1::DeleteIdentityRequest remove;
  remove.set_identity_id("alice");
  remove.set_gallery("audited");
  v1::DeleteIdentityResponse removed;
  ASSERT_TRUE(stub->DeleteIdentity(WithKey(keys_->writer).get(), remove, &removed).ok());

  // Refused writes are recorded too, with whatever is known of the caller.
  v1::EnrollResponse unused;
  EXPECT_EQ(
      stub->Enroll(WithKey(keys_->reader).get(), EnrollOf("mallory", LfwImage("Colin_Powell", 3), "audited"), &unused)
          .error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  v1::DeleteGalleryRequest drop;
  drop.set_name("audited");
  EXPECT_EQ(stub->DeleteGallery(WithKey("").get(), drop, &gallery).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Reads leave no line.
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(WithKey(keys_->reader).get(), v1::GetModelInfoRequest(), &info).ok());

  const std::vector<json> lines = AuditLines(dir_->File("audit.log"));
  for (const json& l : lines) {
    EXPECT_THAT(l["peer"].get<std::string>(), HasSubstr("127.0.0.1")) << l.dump();
    EXPECT_FALSE(l["time"].get<std::string>().empty()) << l.dump();
    EXPECT_NE(l["method"], "GetModelInfo") << l.dump();
  }
  const auto created = LinesOf(lines, "CreateGallery");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0]["key"], "ingest");
  EXPECT_EQ(created[0]["gallery"], "audited");
  EXPECT_EQ(created[0]["code"], "OK");

  const auto alice_lines = LinesOf(lines, "Enroll", "alice");
  ASSERT_EQ(alice_lines.size(), 1u);
  EXPECT_EQ(alice_lines[0]["template_ids"], json::array({enrolled.template_ids(0)}));
  EXPECT_EQ(alice_lines[0]["request_id"], "req-alice");

  const auto bob = LinesOf(lines, "EnrollStream", "bob");
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_EQ(bob[0]["stream_index"], 0);
  EXPECT_EQ(bob[0]["key"], "ingest");
  EXPECT_EQ(bob[0]["template_ids"].size(), 1u);
  const auto carol = LinesOf(lines, "EnrollStream", "carol");
  ASSERT_EQ(carol.size(), 1u);
  EXPECT_EQ(carol[0]["stream_index"], 1);
  EXPECT_EQ(carol[0]["code"], "INVALID_ARGUMENT");
  EXPECT_FALSE(carol[0].value("error", "").empty());

  const auto deleted = LinesOf(lines, "DeleteIdentity", "alice");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0]["template_ids"], json::array({enrolled.template_ids(0)}));

  const auto denied = LinesOf(lines, "Enroll", "mallory");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0]["key"], "board");
  EXPECT_EQ(denied[0]["code"], "PERMISSION_DENIED");
  const auto anonymous = LinesOf(lines, "DeleteGallery");
  ASSERT_EQ(anonymous.size(), 1u);
  EXPECT_EQ(anonymous[0]["key"], "");
  EXPECT_EQ(anonymous[0]["code"], "UNAUTHENTICATED");

  const std::string text = *ReadFileToString(dir_->File("audit.log"));
  for (const std::string& key : {keys_->writer, keys_->reader, keys_->slow}) {
    EXPECT_THAT(text, Not(HasSubstr(key)));
    EXPECT_THAT(text, Not(HasSubstr(Sha256Hex(key))));
  }
}

TEST_F(WriteControlsTest, AKeyOverItsRateIsRefusedAtOnceWithARetryHint) {
  auto stub = server_->stub();
  v1::ModelInfo info;
  // slow: 1 call/s, 2 at once. Two calls pass; the third, within the second, does not.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(stub->GetModelInfo(WithKey(keys_->slow).get(), v1::GetModelInfoRequest(), &info).ok()) << i;
  }
  auto context = WithKey(keys_->slow);
  const grpc::Status refused = stub->GetModelInfo(context.get(), v1::GetModelInfoRequest(), &info);
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("API key 'slow' is over its rate limit of 1 calls/s"));
  EXPECT_THAT(refused.error_message(), HasSubstr("retry in"));
  const auto& trailers = context->GetServerTrailingMetadata();
  const auto hint = trailers.find("retry-after-ms");
  ASSERT_NE(hint, trailers.end());
  int64_t retry_ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(std::string(hint->second.data(), hint->second.size()), &retry_ms));
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 1000);

  // Other keys are not held back by it.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(stub->GetModelInfo(WithKey(keys_->reader).get(), v1::GetModelInfoRequest(), &info).ok()) << i;
  }
  // And the hint is honest: after waiting it out, the key is admitted again.
  std::this_thread::sleep_for(milliseconds(retry_ms + 50));
  EXPECT_TRUE(stub->GetModelInfo(WithKey(keys_->slow).get(), v1::GetModelInfoRequest(), &info).ok());
}

// A server whose key file and audit file the test changes under it, then sends SIGHUP.
class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_writer_ = RandomKey("vf-old");
    new_writer_ = RandomKey("vf-new");
    std::ofstream(dir_.File("keys.txt")) << KeyLine("old", "writer", old_writer_);
    ServerOptions options;
    options.extra_args = {"--set", "auth.mode=api_keys", "--set", "auth.api_keys_file=" + dir_.File("keys.txt"),
                          "--set", "audit.sink=file",    "--set", "audit.file=" + dir_.File("audit.log")};
    auto server = ServerProcess::Start(dir_.File("gallery.db"), options);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0) << server_->log();
    }
  }

  grpc::StatusCode InfoWith(const std::string& key) {
    v1::ModelInfo info;
    return server_->stub()->GetModelInfo(WithKey(key).get(), v1::GetModelInfoRequest(), &info).error_code();
  }
  // SIGHUP, waiting until the reload is done.
  void Hangup() {
    const absl::Status reloaded = server_->Reload();
    ASSERT_TRUE(reloaded.ok()) << reloaded.message();
  }

  TempDir dir_;
  std::string old_writer_, new_writer_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ReloadTest, SighupSwapsTheKeysWithoutDroppingAStreamInProgress) {
  ASSERT_EQ(InfoWith(old_writer_), grpc::StatusCode::OK);
  ASSERT_EQ(InfoWith(new_writer_), grpc::StatusCode::UNAUTHENTICATED);

  // A stream admitted under the old key...
  auto stub = server_->stub();
  auto context = WithKey(old_writer_, 120);
  auto stream = stub->EnrollStream(context.get());
  v1::EnrollStreamResponse response;
  ASSERT_TRUE(stream->Write(EnrollOf("before", LfwImage("Colin_Powell", 1))));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_TRUE(response.has_enrolled()) << response.DebugString();

  std::ofstream(dir_.File("keys.txt")) << KeyLine("new", "writer", new_writer_);
  Hangup();
  EXPECT_EQ(InfoWith(new_writer_), grpc::StatusCode::OK);
  EXPECT_EQ(InfoWith(old_writer_), grpc::StatusCode::UNAUTHENTICATED);

  // ...goes on after the reload: what was admitted stays admitted, and no connection was dropped.
  ASSERT_TRUE(stream->Write(EnrollOf("after", LfwImage("Colin_Powell", 2))));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_TRUE(response.has_enrolled()) << response.DebugString();
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // A broken key file keeps the keys in force, and the log says why.
  std::ofstream(dir_.File("keys.txt")) << "new writer not-a-hash\n";
  Hangup();
  EXPECT_EQ(InfoWith(new_writer_), grpc::StatusCode::OK);
  EXPECT_THAT(server_->log(), HasSubstr("the API keys were not reloaded, the previous ones stay in force"));
}

TEST_F(ReloadTest, SighupReopensTheAuditFileAfterARotation) {
  v1::EnrollResponse enrolled;
  ASSERT_TRUE(server_->stub()
                  ->Enroll(WithKey(old_writer_).get(), EnrollOf("first", LfwImage("Colin_Powell", 1)), &enrolled)
                  .ok());
  std::filesystem::rename(dir_.File("audit.log"), dir_.File("audit.log.1"));
  Hangup();
  ASSERT_TRUE(server_->stub()
                  ->Enroll(WithKey(old_writer_).get(), EnrollOf("second", LfwImage("Colin_Powell", 2)), &enrolled)
                  .ok());
  const auto rotated = AuditLines(dir_.File("audit.log.1"));
  const auto current = AuditLines(dir_.File("audit.log"));
  ASSERT_EQ(rotated.size(), 1u);
  EXPECT_EQ(rotated[0]["identity"], "first");
  ASSERT_EQ(current.size(), 1u);
  EXPECT_EQ(current[0]["identity"], "second");
}

TEST(WriteControlsConfigurationTest, BadSettingsStopTheServerAndSayWhich) {
  const struct {
    std::vector<std::string> sets;
    std::string message;
  } cases[] = {
      {{"audit.sink=syslog"}, "audit.sink 'syslog' is not one of log, file, none"},
      {{"audit.sink=file"}, "audit.sink \"file\" needs audit.file"},
      {{"audit.file=/tmp/x.log"}, "audit.file is set but audit.sink is not \"file\""},
      {{"rate_limits.keys=ingest"}, "rate_limits.keys entry 'ingest'"},
      {{"rate_limits.per_second=-1"}, "rate_limits.per_second"},
      {{"rate_limits.burst=0.5"}, "rate_limits.burst must be 0"},
      {{"limits.max_inflight_pixels=1000000"}, "an image the server admits could never be decoded"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {ServerBinary(), "--print-config"};
    for (const std::string& s : c.sets) argv.insert(argv.end(), {"--set", s});
    const CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2) << c.sets[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.sets[0];
  }
  // An audit file the server cannot open stops it at start-up with the path.
  TempDir dir;
  const CommandResult r =
      RunCommand({ServerBinary(), "--model", DefaultModelDir(), "--gallery", dir.File("g.db"), "--set",
                  "server.listen=127.0.0.1:0", "--set", "metrics.listen=127.0.0.1:0", "--set", "audit.sink=file",
                  "--set", "audit.file=" + dir.File("no/such/dir/a.log")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no/such/dir/a.log"));
}

}  // namespace
}  // namespace veriface::testing
