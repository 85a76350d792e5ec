#include "tests/server/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/grpc_health/v1/health.grpc.pb.h"
#include "tests/testing/test_env.h"

extern char** environ;

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// This process's environment with `env` added or replaced, as "NAME=VALUE" strings.
std::vector<std::string> Environment(const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [key, value] : env) replaced = replaced || key == name;
    if (!replaced) out.push_back(entry);
  }
  for (const auto& [key, value] : env) out.push_back(key + "=" + value);
  return out;
}

// Spawns `argv` with stdout and stderr sent to files; returns the pid or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path,
            const std::vector<std::pair<std::string, std::string>>& env = {}) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | (err_path == out_path ? O_APPEND : O_TRUNC), 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> environment = Environment(env);
  std::vector<char*> envp;
  for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// waitpid with a limit: the exit code (128 + signal for a signal), or -1 while still running.
int WaitPid(pid_t pid, std::chrono::milliseconds limit) {
  const Clock::time_point until = Clock::now() + limit;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return 255;
    if (Clock::now() >= until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

#ifndef VERIFACE_SERVER_BINARY_DEFAULT
#define VERIFACE_SERVER_BINARY_DEFAULT "veriface-server"
#endif
#ifndef VERIFACE_CLIENT_BINARY_DEFAULT
#define VERIFACE_CLIENT_BINARY_DEFAULT "veriface"
#endif

std::string EnvOr(const char* name, const char* fallback) {
  const char* env = std::getenv(name);
  return env != nullptr && *env != '\0' ? env : fallback;
}

}  // namespace

std::string ServerBinary() { return EnvOr("VERIFACE_SERVER_BINARY", VERIFACE_SERVER_BINARY_DEFAULT); }
std::string ClientBinary() { return EnvOr("VERIFACE_CLIENT_BINARY", VERIFACE_CLIENT_BINARY_DEFAULT); }

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string LfwImagePath(const std::string& person, int n) {
  return absl::StrFormat("%s/%s/%s_%04d.jpg", LfwDir(), person, person, n);
}

std::string LfwImage(const std::string& person, int n) { return ReadBytes(LfwImagePath(person, n)); }

std::shared_ptr<grpc::Channel> MakeTestChannel(const std::string& address,
                                               std::shared_ptr<grpc::ChannelCredentials> credentials,
                                               const std::string& server_name) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(128 << 20);
  args.SetMaxReceiveMessageSize(128 << 20);
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(address, credentials, args);
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const std::string& gallery_path,
                                                                    const std::vector<std::string>& extra_args) {
  ServerOptions options;
  options.extra_args = extra_args;
  return Start(gallery_path, options);
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const std::string& gallery_path,
                                                                    const ServerOptions& options) {
  const std::vector<std::string>& extra_args = options.extra_args;
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  std::string pattern = (fs::temp_directory_path() / "veriface-server-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  server->dir_ = pattern;
  server->log_path_ = server->dir_ + "/server.log";
  const std::string ready = server->dir_ + "/ready.json";
  std::vector<std::string> argv = ServerCommandLine(gallery_path, options.model_dir);
  argv.insert(argv.end(), {"--ready-file", ready});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  server->pid_ = Spawn(argv, server->log_path_, server->log_path_, options.env);
  if (server->pid_ < 0) return absl::InternalError(absl::StrCat("cannot start ", argv[0]));

  // The ready file appears once it listens; health turns SERVING once the model and gallery are loaded.
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(120);
  while (!fs::exists(ready)) {
    if (server->Wait(std::chrono::milliseconds(50)) >= 0 || Clock::now() > give_up) {
      return absl::UnavailableError(absl::StrCat("the server exited or never listened; its log:\n", server->log()));
    }
  }
  const std::string text = ReadBytes(ready);
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"re("grpc_port": (\d+), "metrics_port": (\d+))re"))) {
    return absl::InternalError(absl::StrCat("unexpected ready file: ", text));
  }
  server->grpc_port_ = std::stoi(m[1]);
  server->metrics_port_ = std::stoi(m[2]);
  if (std::regex_search(text, m, std::regex(R"re("health_port": (\d+))re"))) server->health_port_ = std::stoi(m[1]);
  server->channel_ = MakeTestChannel(server->address(), options.credentials, options.server_name);
  while (server->Health() != "SERVING") {
    if (server->Wait(std::chrono::milliseconds(100)) >= 0 || Clock::now() > give_up) {
      return absl::UnavailableError(absl::StrCat("the server never became SERVING; its log:\n", server->log()));
    }
  }
  return server;
}

ServerProcess::~ServerProcess() {
  if (running()) Kill();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::string ServerProcess::log() const { return ReadBytes(log_path_); }

std::string ServerProcess::Health() const { return HealthOver(channel_); }

absl::Status ServerProcess::Reload() {
  const auto finished = [this] {
    constexpr std::string_view kLine = "SIGHUP: reload finished";
    const std::string text = log();
    size_t count = 0;
    for (size_t at = text.find(kLine); at != std::string::npos; at = text.find(kLine, at + 1)) ++count;
    return count;
  };
  const size_t before = finished();
  if (::kill(pid_, SIGHUP) != 0) return absl::InternalError("kill(SIGHUP) failed");
  for (int i = 0; i < 400; ++i) {
    if (finished() > before) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return absl::DeadlineExceededError(absl::StrCat("no reload logged after SIGHUP\n", log()));
}

std::string HealthOver(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  auto context = Context(5);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(context.get(), grpc::health::v1::HealthCheckRequest(), &response);
  if (!status.ok()) return absl::StrCat("error ", status.error_code(), ": ", status.error_message());
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

int ServerProcess::Wait(std::chrono::milliseconds limit) {
  if (exit_code_ >= 0) return exit_code_;
  exit_code_ = WaitPid(pid_, limit);
  return exit_code_;
}

bool ServerProcess::running() { return Wait(std::chrono::milliseconds(0)) < 0; }

int ServerProcess::Stop(std::chrono::seconds limit) {
  if (!running()) return exit_code_;
  ::kill(pid_, SIGTERM);
  const int code = Wait(limit);
  if (code < 0) Kill();
  return code;
}

void ServerProcess::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  Wait(std::chrono::seconds(30));
}

int64_t ServerProcess::RssKib() const {
  std::ifstream status(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TempDir* SharedServerTest::dir_ = nullptr;
ServerProcess* SharedServerTest::server_ = nullptr;

void SharedServerTest::SetUpTestSuite() {
  dir_ = new TempDir();
  auto server = ServerProcess::Start(dir_->File("gallery.db"));
  ASSERT_TRUE(server.ok()) << server.status().message();
  server_ = server->release();
}

void SharedServerTest::TearDownTestSuite() {
  if (server_ != nullptr) {
    EXPECT_EQ(server_->Stop(), 0) << server_->log();
    delete server_;
    server_ = nullptr;
  }
  delete dir_;
  dir_ = nullptr;
}

std::vector<std::string> ServerCommandLine(const std::string& gallery_path, const std::string& model_dir) {
  return {ServerBinary(), "--model",          model_dir.empty() ? DefaultModelDir() : model_dir,
          "--gallery",    gallery_path,       "--listen",
          "127.0.0.1:0",  "--metrics-listen", "127.0.0.1:0"};
}

std::string PngHeader(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  const auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  png += be32(13) + ihdr + be32(0);  // CRC left 0: the size check comes before any CRC check
  return png;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::seconds limit) {
  return RunCommand(argv, {}, limit);
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env, std::chrono::seconds limit) {
  TempDir dir;
  const std::string out = dir.File("out"), err = dir.File("err");
  CommandResult result;
  const pid_t pid = Spawn(argv, out, err, env);
  if (pid < 0) {
    result.err = "cannot start " + argv[0];
    return result;
  }
  result.exit_code = WaitPid(pid, limit);
  if (result.exit_code < 0) {
    ::kill(pid, SIGKILL);
    WaitPid(pid, std::chrono::seconds(10));
  }
  result.out = ReadBytes(out);
  result.err = ReadBytes(err);
  return result;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to port ", port));
  }
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (::send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string response;
  char buffer[8192];
  ssize_t n = 0;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return absl::InternalError(absl::StrCat("not an HTTP response: ", response.substr(0, 200)));
  }
  if (response.find(" 200 ") == std::string::npos || response.find(" 200 ") > body) {
    return absl::InternalError(absl::StrCat("HTTP error: ", response.substr(0, response.find("\r\n"))));
  }
  return response.substr(body + 4);
}

double MetricValue(const std::string& exposition, const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& labels) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t end_of_name = line.find_first_of("{ ");
    if (end_of_name == std::string::npos || line.substr(0, end_of_name) != name) continue;
    bool all = true;
    for (const auto& [key, value] : labels) {
      all = all && line.find(absl::StrCat(key, "=\"", value, "\"")) != std::string::npos;
    }
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return 0;
}

std::unique_ptr<grpc::ClientContext> Context(double seconds) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(seconds)));
  return context;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> EnrolStreamAndKill(
    ServerProcess& server, const std::vector<std::pair<std::string, std::string>>& items, size_t kill_after) {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> acknowledged;
  grpc::ClientContext context;
  auto stream = server.stub()->EnrollStream(&context);
  std::thread writer([&] {
    int i = 0;
    for (const auto& [id, image] : items) {
      v1::EnrollRequest request;
      request.set_identity_id(id);
      request.add_images(image);
      request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
      request.set_request_id(absl::StrCat("stream-", i++));
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });
  std::thread reader([&] {
    v1::EnrollStreamResponse response;
    while (stream->Read(&response)) {
      if (!response.has_enrolled()) continue;
      std::lock_guard<std::mutex> lock(mutex);
      acknowledged.emplace_back(response.enrolled().identity_id(), response.enrolled().template_ids(0));
    }
  });
  bool died_early = false;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (acknowledged.size() >= kill_after) break;
    }
    if (!server.running()) {
      died_early = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  server.Kill();
  writer.join();
  reader.join();
  const bool finished_ok = stream->Finish().ok();
  if (died_early) return absl::InternalError(absl::StrCat("the server died before the kill; its log:\n", server.log()));
  if (finished_ok || acknowledged.size() >= items.size()) {
    return absl::FailedPreconditionError("the stream finished before the kill");
  }
  return acknowledged;
}

}  // namespace veriface::testing
