// API keys with roles on the real veriface-server: every RPC, called with no key, an unknown key, a
// reader's key and a writer's key, is refused or admitted as its role says; health needs no key; the
// keys never reach the server's log, even at trace level. Plus the key-file parser and the start-up
// refusals.

#include "server/api_keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/sha256.h"
#include "tests/security/test_keys.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ApiKeyUnitTest, ParsesNamesRolesAndHashes) {
  const std::string hash = Sha256Hex("a key");
  // Comments, blank lines, tabs, upper-case hex, and ';' as a line break (for environment variables).
  auto keys = server::ParseApiKeys(absl::StrCat("# a comment\n\n  ingest\twriter  sha256:", absl::AsciiStrToUpper(hash),
                                                "   # trailing\n;board reader sha256:", Sha256Hex("b")),
                                   "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].name, "ingest");
  EXPECT_EQ((*keys)[0].role, server::Role::kWriter);
  EXPECT_EQ((*keys)[0].sha256_hex, hash);
  EXPECT_EQ((*keys)[1].name, "board");
  EXPECT_EQ((*keys)[1].role, server::Role::kReader);
  EXPECT_TRUE(server::ParseApiKeys("# nothing but a comment\n", "k")->empty());
}

TEST(ApiKeyUnitTest, ErrorsNameTheLineAndNeverQuoteAKey) {
  const std::string secret = RandomKey("secret");
  // A key written in place of its hash: refused, and the message does not repeat it.
  auto keys =
      server::ParseApiKeys(absl::StrCat("ok reader sha256:", Sha256Hex("x"), "\nci writer ", secret, "\n"), "keys.txt");
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("keys.txt line 2"));
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("never the key itself"));
  EXPECT_THAT(std::string(keys.status().message()), Not(HasSubstr(secret)));
  // A bare key on its own line.
  keys = server::ParseApiKeys(secret, "$VERIFACE_API_KEYS");
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("$VERIFACE_API_KEYS line 1"));
  EXPECT_THAT(std::string(keys.status().message()), Not(HasSubstr(secret)));
  keys = server::ParseApiKeys(absl::StrCat("ci admin sha256:", Sha256Hex("x")), "k");
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("reader and writer"));
  keys = server::ParseApiKeys(absl::StrCat("c/i reader sha256:", Sha256Hex("x")), "k");
  EXPECT_FALSE(keys.ok());
  keys = server::ParseApiKeys("ci reader sha256:abcd", "k");
  EXPECT_FALSE(keys.ok());
}

TEST(ApiKeyUnitTest, EachRpcNeedsTheRoleItsEffectCalls) {
  for (const server::Rpc rpc : server::kAllRpcs) {
    EXPECT_EQ(server::RequiredRole(rpc), server::RpcWritesGallery(rpc) ? server::Role::kWriter : server::Role::kReader)
        << server::RpcName(rpc);
  }
  EXPECT_EQ(server::RequiredRole(server::Rpc::kEnroll), server::Role::kWriter);
  EXPECT_EQ(server::RequiredRole(server::Rpc::kEnrollStream), server::Role::kWriter);
  EXPECT_EQ(server::RequiredRole(server::Rpc::kDeleteIdentity), server::Role::kWriter);
  EXPECT_EQ(server::RequiredRole(server::Rpc::kIdentify), server::Role::kReader);
}

// One server requiring keys: a reader and a writer from the key file, a second reader from the
// environment variable. It logs at trace level, so that the log test sees everything it writes.
class ApiKeyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    reader_ = new std::string(RandomKey("vf-reader"));
    writer_ = new std::string(RandomKey("vf-writer"));
    env_reader_ = new std::string(RandomKey("vf-env"));
    std::ofstream(dir_->File("keys.txt"))
        << "# test keys\n"
        << KeyLine("board", "reader", *reader_) << KeyLine("ingest", "writer", *writer_);
    ServerOptions options;
    options.extra_args = {
        "--set", "auth.mode=api_keys", "--set", "auth.api_keys_file=" + dir_->File("keys.txt"), "--log-level", "trace"};
    options.env = {{"VERIFACE_API_KEYS", KeyLine("env-board", "reader", *env_reader_)}};
    auto server = ServerProcess::Start(dir_->File("gallery.db"), options);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0) << server_->log();
      // Nothing the server wrote, from start to exit, holds a key.
      const std::string log = server_->log();
      EXPECT_THAT(log, HasSubstr("'board' has role reader"));  // the log is really at trace level
      for (const std::string* key : {reader_, writer_, env_reader_}) {
        EXPECT_THAT(log, Not(HasSubstr(*key)));
        EXPECT_THAT(log, Not(HasSubstr(Sha256Hex(*key))));
      }
      delete server_;
      server_ = nullptr;
    }
    for (std::string** s : {&reader_, &writer_, &env_reader_}) {
      delete *s;
      *s = nullptr;
    }
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the suite's server did not start"; }

  // A context with a deadline and, unless empty, the metadata `header: value`.
  static std::unique_ptr<grpc::ClientContext> With(const std::string& header, const std::string& value) {
    auto context = Context(30);
    if (!header.empty()) context->AddMetadata(header, value);
    return context;
  }
  static std::unique_ptr<grpc::ClientContext> Bearer(const std::string& key) {
    return key.empty() ? Context(30) : With("authorization", "Bearer " + key);
  }

  static TempDir* dir_;
  static std::string* reader_;
  static std::string* writer_;
  static std::string* env_reader_;
  static ServerProcess* server_;
};

TempDir* ApiKeyTest::dir_ = nullptr;
std::string* ApiKeyTest::reader_ = nullptr;
std::string* ApiKeyTest::writer_ = nullptr;
std::string* ApiKeyTest::env_reader_ = nullptr;
ServerProcess* ApiKeyTest::server_ = nullptr;

// One RPC, called with a request that needs no model work, and the status it ends with once admitted.
struct RpcCase {
  server::Rpc rpc;
  std::function<grpc::Status(v1::Veriface::Stub&, grpc::ClientContext*)> call;
  grpc::StatusCode admitted;
};

std::vector<RpcCase> AllRpcs() {
  using Stub = v1::Veriface::Stub;
  std::vector<RpcCase> cases = {
      {server::Rpc::kEmbed,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::EmbedResponse r;
         return stub.Embed(c, v1::EmbedRequest(), &r);  // no image
       },
       grpc::StatusCode::INVALID_ARGUMENT},
      {server::Rpc::kVerify,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::VerifyResponse r;
         return stub.Verify(c, v1::VerifyRequest(), &r);  // neither side given
       },
       grpc::StatusCode::INVALID_ARGUMENT},
      {server::Rpc::kEnroll,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::EnrollResponse r;
         return stub.Enroll(c, v1::EnrollRequest(), &r);  // no identity id
       },
       grpc::StatusCode::INVALID_ARGUMENT},
      {server::Rpc::kEnrollStream,
       [](Stub& stub, grpc::ClientContext* c) {
         auto stream = stub.EnrollStream(c);  // an empty stream
         stream->WritesDone();
         v1::EnrollStreamResponse r;
         while (stream->Read(&r)) {
         }
         return stream->Finish();
       },
       grpc::StatusCode::OK},
      {server::Rpc::kIdentify,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::IdentifyRequest request;
         request.set_top_k(-1);
         v1::IdentifyResponse r;
         return stub.Identify(c, request, &r);
       },
       grpc::StatusCode::INVALID_ARGUMENT},
      {server::Rpc::kDeleteIdentity,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::DeleteIdentityRequest request;
         request.set_identity_id("nobody-here");
         v1::DeleteIdentityResponse r;
         return stub.DeleteIdentity(c, request, &r);
       },
       grpc::StatusCode::NOT_FOUND},
      {server::Rpc::kGetIdentity,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::GetIdentityRequest request;
         request.set_identity_id("nobody-here");
         v1::Identity r;
         return stub.GetIdentity(c, request, &r);
       },
       grpc::StatusCode::NOT_FOUND},
      {server::Rpc::kListIdentities,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::ListIdentitiesResponse r;
         return stub.ListIdentities(c, v1::ListIdentitiesRequest(), &r);
       },
       grpc::StatusCode::OK},
      {server::Rpc::kGetModelInfo,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::ModelInfo r;
         return stub.GetModelInfo(c, v1::GetModelInfoRequest(), &r);
       },
       grpc::StatusCode::OK},
      {server::Rpc::kCreateGallery,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::GalleryInfo r;
         return stub.CreateGallery(c, v1::CreateGalleryRequest(), &r);  // no name
       },
       grpc::StatusCode::INVALID_ARGUMENT},
      {server::Rpc::kListGalleries,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::ListGalleriesResponse r;
         return stub.ListGalleries(c, v1::ListGalleriesRequest(), &r);
       },
       grpc::StatusCode::OK},
      {server::Rpc::kDeleteGallery,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::DeleteGalleryRequest request;
         request.set_name("no-such-gallery");
         v1::GalleryInfo r;
         return stub.DeleteGallery(c, request, &r);
       },
       grpc::StatusCode::NOT_FOUND},
      {server::Rpc::kGetGalleryReport,
       [](Stub& stub, grpc::ClientContext* c) {
         v1::GalleryReport r;  // the test's gallery is empty: nothing to estimate from
         return stub.GetGalleryReport(c, v1::GalleryReportRequest(), &r);
       },
       grpc::StatusCode::FAILED_PRECONDITION},
  };
  return cases;
}

TEST_F(ApiKeyTest, EveryRpcEnforcesItsRole) {
  const std::vector<RpcCase> cases = AllRpcs();
  ASSERT_EQ(cases.size(), std::size(server::kAllRpcs)) << "a new RPC needs a row here";
  struct Caller {
    std::string name;
    std::string key;
    std::optional<server::Role> role;  // none: not a key of this server
  };
  const std::vector<Caller> callers = {{"no key", "", std::nullopt},
                                       {"wrong key", RandomKey("vf-wrong"), std::nullopt},
                                       {"reader", *reader_, server::Role::kReader},
                                       {"writer", *writer_, server::Role::kWriter}};
  auto stub = server_->stub();
  for (const RpcCase& c : cases) {
    for (const Caller& caller : callers) {
      SCOPED_TRACE(absl::StrCat(server::RpcName(c.rpc), " with ", caller.name));
      const grpc::Status s = c.call(*stub, Bearer(caller.key).get());
      if (!caller.role.has_value()) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
        EXPECT_THAT(s.error_message(), HasSubstr("authorization: Bearer"));
      } else if (*caller.role < server::RequiredRole(c.rpc)) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
        EXPECT_THAT(s.error_message(), HasSubstr("'board' has role reader"));
        EXPECT_THAT(s.error_message(), HasSubstr("needs role writer"));
      } else {
        EXPECT_EQ(s.error_code(), c.admitted) << s.error_message();
      }
      if (!caller.key.empty()) {
        EXPECT_THAT(s.error_message(), Not(HasSubstr(caller.key)));
      }
    }
  }
  // Refusals are counted like any other outcome.
  auto metrics = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status().message();
  EXPECT_EQ(MetricValue(*metrics, "veriface_rpc_requests_total", {{"method", "Enroll"}, {"code", "UNAUTHENTICATED"}}),
            2);
  EXPECT_EQ(MetricValue(*metrics, "veriface_rpc_requests_total", {{"method", "Enroll"}, {"code", "PERMISSION_DENIED"}}),
            1);
}

TEST_F(ApiKeyTest, KeysTravelInEitherHeaderAndMayComeFromTheEnvironment) {
  auto stub = server_->stub();
  v1::ModelInfo info;
  EXPECT_TRUE(stub->GetModelInfo(With("x-api-key", *reader_).get(), v1::GetModelInfoRequest(), &info).ok());
  EXPECT_TRUE(
      stub->GetModelInfo(With("authorization", "bearer  " + *writer_).get(), v1::GetModelInfoRequest(), &info).ok());
  EXPECT_TRUE(stub->GetModelInfo(Bearer(*env_reader_).get(), v1::GetModelInfoRequest(), &info).ok());
  v1::DeleteIdentityRequest del;
  del.set_identity_id("nobody-here");
  v1::DeleteIdentityResponse deleted;
  EXPECT_EQ(stub->DeleteIdentity(Bearer(*env_reader_).get(), del, &deleted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Another scheme, or the key without its scheme, is not a key.
  grpc::Status s =
      stub->GetModelInfo(With("authorization", "Basic " + *reader_).get(), v1::GetModelInfoRequest(), &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("Bearer <key>"));
  s = stub->GetModelInfo(With("authorization", *reader_).get(), v1::GetModelInfoRequest(), &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  s = stub->GetModelInfo(With("authorization", "Bearer ").get(), v1::GetModelInfoRequest(), &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A prefix of a real key is a wrong key.
  s = stub->GetModelInfo(Bearer(reader_->substr(0, reader_->size() - 1)).get(), v1::GetModelInfoRequest(), &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ApiKeyTest, HealthNeedsNoKey) {
  EXPECT_EQ(server_->Health(), "SERVING");
  const CommandResult r = RunCommand({ClientBinary(), "--server", server_->address(), "--timeout", "20", "health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
}

TEST_F(ApiKeyTest, TheCommandLineClientSendsItsKey) {
  const std::vector<std::string> base = {ClientBinary(), "--server", server_->address(), "--timeout", "20"};
  const auto run = [&](std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env = {}) {
    args.insert(args.begin(), base.begin(), base.end());
    env.emplace_back("VERIFACE_API_KEY", "");  // whatever the test's own environment holds
    return RunCommand(args, env);
  };
  CommandResult r = run({"info"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAUTHENTICATED"));
  r = run({"info"}, {{"VERIFACE_API_KEY", *reader_}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ofstream(dir_->File("writer.key")) << *writer_ << "\n";
  r = run({"--api-key-file", dir_->File("writer.key"), "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({"--api-key", *reader_, "delete", "nobody-here"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  // A reader cannot enrol through the stream either; the writer can (and reaches the model).
  r = run({"enroll", LfwImagePath("Colin_Powell", 1), "--id", "powell"}, {{"VERIFACE_API_KEY", *reader_}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  r = run({"enroll", LfwImagePath("Colin_Powell", 1), "--id", "powell"}, {{"VERIFACE_API_KEY", *writer_}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("enrolled 1 image(s)"));
  r = run({"--api-key-file", dir_->File("no-such.key"), "info"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--api-key-file"));
}

// Start-up refusals: keys that cannot be used stop the server, and nothing prints a key.
class ApiKeyConfigurationTest : public ::testing::Test {
 protected:
  CommandResult Server(const std::vector<std::string>& args,
                       const std::vector<std::pair<std::string, std::string>>& env = {}) const {
    std::vector<std::string> argv = ServerCommandLine(dir_.File("g.db"));
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, env);
  }
  TempDir dir_;
};

TEST_F(ApiKeyConfigurationTest, KeysThatCannotBeUsedStopTheServer) {
  const std::string key = RandomKey("vf-config");
  // api_keys without any key.
  CommandResult r = Server({"--set", "auth.mode=api_keys"}, {{"VERIFACE_API_KEYS", ""}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no key was found"));
  // Keys in the environment while auth is off: refused rather than ignored.
  r = Server({}, {{"VERIFACE_API_KEYS", KeyLine("board", "reader", key)}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("auth.mode is \"none\""));
  // A key file while auth is off.
  std::ofstream(dir_.File("keys.txt")) << KeyLine("board", "reader", key) << KeyLine("ingest", "writer", key);
  r = Server({"--set", "auth.api_keys_file=" + dir_.File("keys.txt"), "--print-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("auth.api_keys_file is set but auth.mode is \"none\""));
  // The same key twice.
  r = Server({"--set", "auth.mode=api_keys", "--set", "auth.api_keys_file=" + dir_.File("keys.txt")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'board' and 'ingest' are the same key"));
  // A raw key where its hash belongs: refused without repeating it.
  std::ofstream(dir_.File("raw.txt")) << "board reader " << key << "\n";
  r = Server({"--set", "auth.mode=api_keys", "--set", "auth.api_keys_file=" + dir_.File("raw.txt")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("raw.txt line 1"));
  EXPECT_THAT(r.err + r.out, Not(HasSubstr(key)));
  r = Server({"--set", "auth.mode=api_keys", "--set", "auth.api_keys_file=" + dir_.File("missing.txt")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.txt"));
  r = Server({"--set", "auth.mode=tokens", "--print-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("none, api_keys"));
}

TEST_F(ApiKeyConfigurationTest, PrintConfigShowsWhereKeysAreButNoKey) {
  const std::string key = RandomKey("vf-print");
  std::ofstream(dir_.File("keys.txt")) << KeyLine("board", "reader", key);
  const CommandResult r =
      Server({"--set", "auth.mode=api_keys", "--set", "auth.api_keys_file=" + dir_.File("keys.txt"), "--print-config"},
             {{"VERIFACE_API_KEYS", KeyLine("env-board", "reader", key + "-env")}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("api_keys_file: \"" + dir_.File("keys.txt") + "\""));
  EXPECT_THAT(r.out, HasSubstr("api_keys_env: \"VERIFACE_API_KEYS\""));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(key)));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(Sha256Hex(key))));
}

}  // namespace
}  // namespace veriface::testing
