#pragma once
// The real veriface-server binary as a child process on a free loopback port, with the default model
// and a gallery file of the test's choosing; plus the small helpers the server and client tests share.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/veriface/v1/veriface.grpc.pb.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {

std::string ServerBinary();
std::string ClientBinary();

// How a test starts the server beyond its gallery.
struct ServerOptions {
  std::vector<std::string> extra_args;  // appended to the command line
  // Added to (or replacing in) the server's environment, e.g. {"VERIFACE_API_KEYS", "..."}.
  std::vector<std::pair<std::string, std::string>> env;
  // How channel() reaches it; null: plaintext. With TLS, `server_name` is the name its certificate must
  // carry when that is not the dialled 127.0.0.1.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string server_name;
  std::string model_dir;  // empty: the default model
};

// A channel to `address` with the test's message-size limits; plaintext when `credentials` is null.
std::shared_ptr<grpc::Channel> MakeTestChannel(const std::string& address,
                                               std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr,
                                               const std::string& server_name = "");

class ServerProcess {
 public:
  // Starts the server (127.0.0.1, free ports, the default model, `gallery_path`) with `extra_args`
  // appended to its command line, and waits until grpc.health.v1 says SERVING. The error carries the
  // server's log when it exits or does not get there.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& gallery_path,
                                                              const std::vector<std::string>& extra_args = {});
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& gallery_path,
                                                              const ServerOptions& options);
  ~ServerProcess();  // kills the server if it is still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }  // server.health_listen's port, 0 when none
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  std::unique_ptr<v1::Veriface::Stub> stub() const { return v1::Veriface::NewStub(channel_); }
  std::string log() const;  // everything it wrote to stdout and stderr

  // "SERVING", "NOT_SERVING", or the failed call's status.
  std::string Health() const;

  // Sends SIGTERM and waits (up to `limit`); returns the exit code, 128 + signal if it died of one, or -1
  // if it was still running at the limit (it is then killed).
  int Stop(std::chrono::seconds limit = std::chrono::seconds(60));
  // SIGKILL, and waits for it.
  void Kill();
  // SIGHUP, and waits (up to 10 s) until the server has logged that this reload finished.
  absl::Status Reload();
  bool running();
  // Resident memory in KiB, from /proc.
  int64_t RssKib() const;

 private:
  ServerProcess() = default;
  int Wait(std::chrono::milliseconds limit);  // exit code as Stop() describes, or -1 while running

  pid_t pid_ = -1;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  int health_port_ = 0;
  int exit_code_ = -1;
  std::string log_path_;
  std::string dir_;
  std::shared_ptr<grpc::Channel> channel_;
};

// A suite whose tests share one server with an empty gallery, started before the suite's first test and
// stopped (SIGTERM, expecting exit 0) after its last.
class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the suite's server did not start"; }

  static TempDir* dir_;
  static ServerProcess* server_;
};

// veriface-server with `model_dir` (empty: the default model) and `gallery_path`, listening on loopback ports
// the system picks; a test appends its own flags.
std::vector<std::string> ServerCommandLine(const std::string& gallery_path, const std::string& model_dir = "");

// A PNG whose header claims `width` x `height` pixels, with no pixel data behind it.
std::string PngHeader(uint32_t width, uint32_t height);

// Runs a program with arguments, waits up to `limit`, and captures its output.
struct CommandResult {
  int exit_code = -1;  // -1 when it ran past the limit (it is killed)
  std::string out;     // standard output
  std::string err;     // standard error
};
CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::seconds limit = std::chrono::seconds(120));
// The same with `env` added to (or replacing in) the environment.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         std::chrono::seconds limit = std::chrono::seconds(120));

// "SERVING", "NOT_SERVING", or the failed call's status, asking grpc.health.v1 over `channel`.
std::string HealthOver(const std::shared_ptr<grpc::Channel>& channel);

// The bytes of LFW image `n` (1-based) of `person`, e.g. ("George_W_Bush", 1).
std::string LfwImage(const std::string& person, int n);
std::string LfwImagePath(const std::string& person, int n);
std::string ReadBytes(const std::string& path);

// GET http://127.0.0.1:`port``path` over a plain socket; the body, or an error.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// The value of one sample line of a Prometheus text exposition, e.g.
// MetricValue(text, "veriface_rpc_requests_total", {{"method","Verify"},{"code","OK"}}); 0 when absent.
double MetricValue(const std::string& exposition, const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& labels);

// Streams `items` (identity id, image bytes) into `server`'s EnrollStream, each with request id
// "stream-N", and kills the server (SIGKILL) once `kill_after` enrolments are acknowledged. Returns the
// acknowledged (identity id, template id) pairs; an error when the server died first or the stream ended
// before the kill.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> EnrolStreamAndKill(
    ServerProcess& server, const std::vector<std::pair<std::string, std::string>>& items, size_t kill_after);

// A client context whose deadline is `seconds` from now.
std::unique_ptr<grpc::ClientContext> Context(double seconds = 60);

}  // namespace veriface::testing
