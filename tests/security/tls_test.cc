// TLS and mutual TLS of the real veriface-server with certificates the test makes with openssl: a
// client with the CA gets through, one without it (or expecting another name) does not; in mtls mode a
// client without a certificate, or with one from an unrelated CA, is refused; health stays reachable
// for probes on the plaintext health port; SIGHUP swaps the certificate without dropping connections.
// Configuration mistakes stop the server with a clear message.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "proto/grpc_health/v1/health.grpc.pb.h"
#include "tests/security/pki.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// GetModelInfo over `channel`: OK when the connection is allowed (no API keys are configured here).
grpc::Status ModelInfoOver(const std::shared_ptr<grpc::Channel>& channel) {
  v1::ModelInfo info;
  return v1::Veriface::NewStub(channel)->GetModelInfo(Context(30).get(), v1::GetModelInfoRequest(), &info);
}

// A suite sharing one server started with the certificates of a PKI made for it.
class PkiServerTest : public ::testing::Test {
 protected:
  // Makes the PKI, then starts the server with the arguments `args` gives for it.
  static void StartServer(const std::function<std::vector<std::string>(const TestPki&)>& args, bool client_cert) {
    dir_ = new TempDir();
    auto pki = MakeTestPki(dir_->path());
    ASSERT_TRUE(pki.ok()) << pki.status().message();
    pki_ = new TestPki(*pki);
    ServerOptions options;
    options.extra_args = args(*pki_);
    options.credentials = client_cert ? TlsCredentials(pki_->ca_cert, pki_->client_cert, pki_->client_key)
                                      : TlsCredentials(pki_->ca_cert);
    auto server = ServerProcess::Start(dir_->File("gallery.db"), options);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0) << server_->log();
      delete server_;
      server_ = nullptr;
    }
    delete pki_;
    pki_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the suite's server did not start"; }

  static CommandResult Client(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {ClientBinary(), "--timeout", "20"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  static std::string Localhost() { return "localhost:" + std::to_string(server_->grpc_port()); }

  static TempDir* dir_;
  static TestPki* pki_;
  static ServerProcess* server_;
};

TempDir* PkiServerTest::dir_ = nullptr;
TestPki* PkiServerTest::pki_ = nullptr;
ServerProcess* PkiServerTest::server_ = nullptr;

class TlsTest : public PkiServerTest {
 protected:
  static void SetUpTestSuite() {
    StartServer(
        [](const TestPki& pki) {
          return std::vector<std::string>{"--set", "tls.mode=tls",
                                          "--set", "tls.cert_file=" + pki.server_cert,
                                          "--set", "tls.key_file=" + pki.server_key};
        },
        /*client_cert=*/false);
  }
};

TEST_F(TlsTest, AClientThatTrustsTheCaGetsThrough) {
  // 127.0.0.1 is in the certificate's subject alternative names, and so is localhost.
  EXPECT_TRUE(ModelInfoOver(server_->channel()).ok());
  const auto by_name = MakeTestChannel(Localhost(), TlsCredentials(pki_->ca_cert));
  const grpc::Status s = ModelInfoOver(by_name);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(HealthOver(by_name), "SERVING");
}

TEST_F(TlsTest, AClientWithoutTheCaOrInPlaintextIsRefused) {
  // gRPC's default roots do not include the test's CA.
  const grpc::Status default_roots = ModelInfoOver(MakeTestChannel(server_->address(), TlsCredentials("")));
  EXPECT_EQ(default_roots.error_code(), grpc::StatusCode::UNAVAILABLE) << default_roots.error_message();
  // Trusting another CA does not help either.
  const grpc::Status other_ca = ModelInfoOver(MakeTestChannel(server_->address(), TlsCredentials(pki_->other_ca_cert)));
  EXPECT_EQ(other_ca.error_code(), grpc::StatusCode::UNAVAILABLE) << other_ca.error_message();
  // A plaintext client gets no answer from a TLS port, health included.
  const auto plaintext = MakeTestChannel(server_->address());
  EXPECT_EQ(ModelInfoOver(plaintext).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(HealthOver(plaintext), Not(HasSubstr("SERVING")));
  // The server is unharmed.
  EXPECT_EQ(server_->Health(), "SERVING");
}

TEST_F(TlsTest, TheServerNameIsChecked) {
  // The right CA, but the client expects a name the certificate does not carry.
  const grpc::Status s =
      ModelInfoOver(MakeTestChannel(server_->address(), TlsCredentials(pki_->ca_cert), "veriface.example.com"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // --tls-server-name makes a client accept a certificate for a name other than the dialled host.
  EXPECT_TRUE(ModelInfoOver(MakeTestChannel(server_->address(), TlsCredentials(pki_->ca_cert), "localhost")).ok());
}

TEST_F(TlsTest, TheCommandLineClientSpeaksTls) {
  CommandResult r = Client({"--server", Localhost(), "--tls-ca", pki_->ca_cert, "health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  r = Client({"--server", server_->address(), "--tls-ca", pki_->ca_cert, "--tls-server-name", "localhost", "info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("128-D"));
  r = Client({"--server", Localhost(), "info"});  // plaintext
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  r = Client({"--server", Localhost(), "--tls", "info"});  // TLS, but not trusting the test's CA
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  // The CA may also come from the environment.
  r = RunCommand({ClientBinary(), "--timeout", "20", "--server", Localhost(), "health"},
                 {{"VERIFACE_TLS_CA", pki_->ca_cert}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A file that is not PEM is a usage error naming the flag.
  r = Client({"--server", Localhost(), "--tls-ca", server_->address(), "health"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--tls-ca"));
}

class MutualTlsTest : public PkiServerTest {
 protected:
  static void SetUpTestSuite() {
    StartServer(
        [](const TestPki& pki) {
          return std::vector<std::string>{"--set", "tls.mode=mtls",
                                          "--set", "tls.cert_file=" + pki.server_cert,
                                          "--set", "tls.key_file=" + pki.server_key,
                                          "--set", "tls.client_ca_file=" + pki.ca_cert,
                                          "--set", "server.health_listen=127.0.0.1:0"};
        },
        /*client_cert=*/true);
  }
};

TEST_F(MutualTlsTest, AClientWithACertificateOfTheCaGetsThrough) {
  const grpc::Status s = ModelInfoOver(server_->channel());
  EXPECT_TRUE(s.ok()) << s.error_message();
  const CommandResult r = Client({"--server", Localhost(), "--tls-ca", pki_->ca_cert, "--tls-cert", pki_->client_cert,
                                  "--tls-key", pki_->client_key, "info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("128-D"));
}

TEST_F(MutualTlsTest, AClientWithoutACertificateIsRefused) {
  const auto channel = MakeTestChannel(server_->address(), TlsCredentials(pki_->ca_cert));
  const grpc::Status s = ModelInfoOver(channel);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(HealthOver(channel), Not(HasSubstr("SERVING")));
  const CommandResult r = Client({"--server", Localhost(), "--tls-ca", pki_->ca_cert, "info"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  EXPECT_EQ(server_->Health(), "SERVING");
}

TEST_F(MutualTlsTest, AClientWithACertificateOfAnotherCaIsRefused) {
  const auto channel = MakeTestChannel(server_->address(),
                                       TlsCredentials(pki_->ca_cert, pki_->other_client_cert, pki_->other_client_key));
  const grpc::Status s = ModelInfoOver(channel);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  const CommandResult r = Client({"--server", Localhost(), "--tls-ca", pki_->ca_cert, "--tls-cert",
                                  pki_->other_client_cert, "--tls-key", pki_->other_client_key, "info"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(server_->Health(), "SERVING");
}

TEST_F(MutualTlsTest, ProbesReachHealthOnThePlaintextHealthPortAndNothingElse) {
  ASSERT_GT(server_->health_port(), 0);
  const std::string address = "127.0.0.1:" + std::to_string(server_->health_port());
  const auto probe = MakeTestChannel(address);
  EXPECT_EQ(HealthOver(probe), "SERVING");
  // Only health answers there: the Veriface service is not on that port.
  EXPECT_EQ(ModelInfoOver(probe).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // The client's health command works there without any TLS option: what a container HEALTHCHECK runs.
  const CommandResult r = Client({"--server", address, "health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
}

// Mistakes in the TLS configuration stop the server at start-up with a message naming the key or file.
// SIGHUP swaps the server's certificate: new connections get the new one, an open connection stays up,
// and a certificate with the wrong key is refused while the old one stays in use.
TEST(TlsReloadTest, SighupServesTheNewCertificateWithoutDroppingConnections) {
  TempDir dir;
  std::filesystem::create_directories(dir.File("a"));
  std::filesystem::create_directories(dir.File("b"));
  const auto a = MakeTestPki(dir.File("a"));
  const auto b = MakeTestPki(dir.File("b"));  // another CA, with its own server certificate
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().message() << b.status().message();
  const auto install = [&](const std::string& cert, const std::string& key) {
    std::filesystem::copy_file(cert, dir.File("cert.pem"), std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(key, dir.File("key.pem"), std::filesystem::copy_options::overwrite_existing);
  };
  install(a->server_cert, a->server_key);
  ServerOptions options;
  options.extra_args = {"--set", "tls.mode=tls",
                        "--set", "tls.cert_file=" + dir.File("cert.pem"),
                        "--set", "tls.key_file=" + dir.File("key.pem")};
  options.credentials = TlsCredentials(a->ca_cert);
  auto server = ServerProcess::Start(dir.File("gallery.db"), options);
  ASSERT_TRUE(server.ok()) << server.status().message();
  const auto fresh = [&](const std::string& ca) {  // a new channel: a new connection and handshake
    return ModelInfoOver(MakeTestChannel((*server)->address(), TlsCredentials(ca)));
  };
  const std::shared_ptr<grpc::Channel> open = (*server)->channel();  // connected under certificate A
  ASSERT_TRUE(ModelInfoOver(open).ok());

  // New files alone change nothing: only SIGHUP publishes them.
  install(b->server_cert, b->server_key);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // past two periods of the watcher
  EXPECT_TRUE(fresh(a->ca_cert).ok());
  EXPECT_FALSE(fresh(b->ca_cert).ok());

  ASSERT_TRUE((*server)->Reload().ok());
  bool served = false;  // the watcher picks the new material up within its one-second period
  for (int i = 0; i < 50 && !served; ++i) {
    served = fresh(b->ca_cert).ok();
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(served) << (*server)->log();
  EXPECT_EQ(fresh(a->ca_cert).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The connection made under A is still the one in use: a reconnect would have failed A's check.
  EXPECT_TRUE(ModelInfoOver(open).ok());

  // A key that is not the certificate's is refused; B stays in use.
  install(a->server_cert, b->server_key);
  ASSERT_TRUE((*server)->Reload().ok());
  EXPECT_THAT((*server)->log(), HasSubstr("the TLS certificates were not reloaded, the previous ones stay in use"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(fresh(b->ca_cert).ok());
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->log();
}

class TlsConfigurationTest : public ::testing::Test {
 protected:
  static CommandResult Server(const std::vector<std::string>& args) {
    std::vector<std::string> argv = ServerCommandLine(dir_.File("g.db"));
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  static TestPki Pki() {
    auto pki = MakeTestPki(dir_.path());
    EXPECT_TRUE(pki.ok()) << pki.status().message();
    return pki.ok() ? *pki : TestPki();
  }
  static TempDir dir_;
};

TempDir TlsConfigurationTest::dir_;

TEST_F(TlsConfigurationTest, ModeAndFilesMustAgree) {
  const TestPki pki = Pki();
  // A certificate with plaintext mode is refused, not ignored.
  CommandResult r = Server({"--set", "tls.cert_file=" + pki.server_cert, "--print-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("tls.cert_file is set but tls.mode is \"plaintext\""));
  r = Server({"--set", "tls.mode=tls", "--print-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs tls.cert_file"));
  r = Server({"--set", "tls.mode=mtls", "--set", "tls.cert_file=" + pki.server_cert, "--set",
              "tls.key_file=" + pki.server_key, "--print-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs tls.client_ca_file"));
  r = Server({"--set", "tls.mode=ssl", "--print-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("plaintext, tls, mtls"));
}

TEST_F(TlsConfigurationTest, BadFilesStopTheServerBeforeItLoadsTheModel) {
  const TestPki pki = Pki();
  // The key of another certificate.
  CommandResult r = Server({"--set", "tls.mode=tls", "--set", "tls.cert_file=" + pki.server_cert, "--set",
                            "tls.key_file=" + pki.client_key});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not the private key of the first certificate"));
  // A missing file, and a file that is not a certificate.
  r = Server({"--set", "tls.mode=tls", "--set", "tls.cert_file=" + dir_.File("missing.pem"), "--set",
              "tls.key_file=" + pki.server_key});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.pem"));
  r = Server(
      {"--set", "tls.mode=tls", "--set", "tls.cert_file=" + pki.server_key, "--set", "tls.key_file=" + pki.server_key});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("holds no PEM certificate"));
  r = Server({"--set", "tls.mode=mtls", "--set", "tls.cert_file=" + pki.server_cert, "--set",
              "tls.key_file=" + pki.server_key, "--set", "tls.client_ca_file=" + pki.server_key});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("tls.client_ca_file"));
}

}  // namespace
}  // namespace veriface::testing
