#include "tests/testing/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/postgres/pg_connection.h"

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";
// Generous: initdb and a start take a few seconds, but a loaded 2-core machine may take many more.
constexpr std::chrono::seconds kCommandTimeout(120);

std::string Program(const std::string& name) { return absl::StrCat(kBinDir, "/", name); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ErrnoText(const std::string& what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

// Who runs the server programs: initdb and postgres refuse root, so root hands them to `postgres`.
struct RunAs {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

absl::StatusOr<RunAs> ServerUser() {
  RunAs run_as;
  if (::geteuid() != 0) return run_as;
  const passwd* user = ::getpwnam("postgres");
  if (user == nullptr) {
    return absl::FailedPreconditionError("running as root, but there is no `postgres` user to run PostgreSQL as");
  }
  run_as.switch_user = true;
  run_as.uid = user->pw_uid;
  run_as.gid = user->pw_gid;
  return run_as;
}

struct Fd {
  int fd = -1;
  explicit Fd(int value) : fd(value) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Runs `argv` (argv[0] a full path) in `dir` as the server user, stdout and stderr into dir/command.out,
// and returns that output; an error with it unless the program exits 0.
absl::StatusOr<std::string> RunServerProgram(const std::vector<std::string>& argv, const std::string& dir) {
  VF_ASSIGN_OR_RETURN(const RunAs run_as, ServerUser());
  const std::string output_path = dir + "/command.out";
  // Everything the child needs is made before fork: between fork and exec only async-signal-safe calls.
  Fd output(::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (output.fd < 0 || null.fd < 0) return absl::InternalError(ErrnoText(absl::StrCat("opening ", output_path)));
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // A small fixed environment: the caller's PG* variables (PGPORT, PGDATA...) must not leak into the cluster.
  const std::string path = absl::StrCat("PATH=", kBinDir, ":/usr/bin:/bin");
  const std::string home = absl::StrCat("HOME=", dir);
  std::string lc_all = "LC_ALL=C";
  std::vector<char*> env = {const_cast<char*>(path.c_str()), const_cast<char*>(home.c_str()), lc_all.data(), nullptr};

  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(ErrnoText("fork"));
  if (pid == 0) {
    ::dup2(null.fd, STDIN_FILENO);
    ::dup2(output.fd, STDOUT_FILENO);
    ::dup2(output.fd, STDERR_FILENO);
    // The server outlives this process; an inherited descriptor (ctest's output pipe) would keep whoever
    // waits on it waiting.
    ::close_range(3, ~0U, 0);
    if (run_as.switch_user &&
        (::setgroups(0, nullptr) != 0 || ::setgid(run_as.gid) != 0 || ::setuid(run_as.uid) != 0)) {
      ::_exit(126);
    }
    // The server programs look at their working directory, which root's may not let them.
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + kCommandTimeout;
  int wait_status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &wait_status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return absl::InternalError(ErrnoText(absl::StrCat("waiting for ", argv[0])));
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &wait_status, 0);
      return absl::DeadlineExceededError(absl::StrCat(argv[0], " did not finish within ", kCommandTimeout.count(),
                                                      " s; its output: ", ReadFile(output_path)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string out = ReadFile(output_path);
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    const std::string how = WIFEXITED(wait_status) ? absl::StrCat("exited with ", WEXITSTATUS(wait_status))
                                                   : absl::StrCat("died of signal ", WTERMSIG(wait_status));
    return absl::InternalError(absl::StrCat(argv[0], " ", argv.back(), " ", how, " (126: could not switch user, ",
                                            "127: could not exec); its output: ", out));
  }
  return out;
}

// A loopback port that nobody listens on, and a socket that keeps it: bound, not listening, SO_REUSEADDR.
// The kernel then gives the port to no one who asks for a free one (bind to port 0), while the server,
// which binds its port explicitly with SO_REUSEADDR, can still take it.
absl::Status ReservePort(int* port, int* fd) {
  *fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0) return absl::InternalError(ErrnoText("socket"));
  const int one = 1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof(addr);
  if (::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::bind(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    absl::Status status = absl::InternalError(ErrnoText("reserving a loopback port"));
    ::close(*fd);
    *fd = -1;
    return status;
  }
  *port = ntohs(addr.sin_port);
  return absl::OkStatus();
}

std::string RandomPassword() {
  std::random_device random;
  std::string password;
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) password += kHex[random() % 16];
  return password;
}

}  // namespace

bool PostgresInstalled() {
  for (const char* name : {"initdb", "pg_ctl", "postgres"}) {
    if (::access(Program(name).c_str(), X_OK) != 0) return false;
  }
  return ::geteuid() != 0 || ::getpwnam("postgres") != nullptr;
}

PostgresServer::PostgresServer(std::string dir, int port, int port_reservation, std::string password)
    : dir_(std::move(dir)), port_(port), port_reservation_(port_reservation), password_(std::move(password)) {}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(PostgresServerOptions options) {
  if (!PostgresInstalled()) {
    return absl::FailedPreconditionError(
        absl::StrCat("PostgreSQL 15 is not installed in ", kBinDir, " (deploy/setup.sh installs it)"));
  }
  VF_ASSIGN_OR_RETURN(const RunAs run_as, ServerUser());
  std::string dir = "/tmp/veriface-pg-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return absl::InternalError(ErrnoText("mkdtemp /tmp/veriface-pg-XXXXXX"));
  if (run_as.switch_user && ::chown(dir.c_str(), run_as.uid, run_as.gid) != 0) {
    absl::Status status = absl::InternalError(ErrnoText(absl::StrCat("chown ", dir, " to postgres")));
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    return status;
  }
  int port = -1;
  int reservation = -1;
  if (absl::Status reserved = ReservePort(&port, &reservation); !reserved.ok()) {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    return reserved;
  }
  // From here the destructor cleans up whatever Initialize got to.
  auto server = std::make_unique<PostgresServer>(std::move(dir), port, reservation, RandomPassword());
  if (absl::Status status = server->Initialize(options); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat(status.message(), "\nserver log:\n", server->log()));
  }
  return server;
}

absl::Status PostgresServer::Initialize(const PostgresServerOptions& options) {
  // Local (socket) connections are trusted, so the harness needs no superuser password; TCP connections
  // need one, so the tests exercise the login a deployment does.
  VF_RETURN_IF_ERROR(
      RunServerProgram({Program("initdb"), "-D", data_dir(), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                       dir_)
          .status());
  {
    // The server's socket lives in our directory, so nothing outside it (/var/run/postgresql) is needed.
    std::ofstream conf(data_dir() + "/postgresql.conf", std::ios::app);
    conf << "\n# veriface::testing::PostgresServer\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "port = " << port_ << "\n"
         << "unix_socket_directories = '" << dir_ << "'\n"
         << "fsync = " << (options.fsync ? "on" : "off")
         << "\n"
         // Several servers may run side by side on a small test machine.
         << "shared_buffers = 32MB\n";
    if (!conf.good()) return absl::InternalError(absl::StrCat("writing ", data_dir(), "/postgresql.conf"));
  }
  VF_RETURN_IF_ERROR(StartServer());
  return CreateRoleAndDatabase();
}

absl::Status PostgresServer::StartServer() {
  VF_RETURN_IF_ERROR(
      RunServerProgram({Program("pg_ctl"), "-D", data_dir(), "-l", log_path(), "-w", "-t", "60", "-s", "start"}, dir_)
          .status());
  running_ = true;
  return absl::OkStatus();
}

absl::Status PostgresServer::CreateRoleAndDatabase() {
  pg::ConnectOptions options;
  options.conninfo = superuser_conninfo();
  options.application_name = "veriface-test-setup";
  VF_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> superuser, pg::Connection::Connect(options));
  // Utility statements take no parameters; the password is hex, so it needs no quoting.
  VF_RETURN_IF_ERROR(superuser->Exec(absl::StrCat("CREATE ROLE veriface LOGIN PASSWORD '", password_, "'")).status());
  return superuser->Exec("CREATE DATABASE veriface OWNER veriface").status();
}

PostgresServer::~PostgresServer() {
  if (running_) {
    const absl::Status stopped =
        RunServerProgram({Program("pg_ctl"), "-D", data_dir(), "-m", "immediate", "-w", "-t", "30", "-s", "stop"}, dir_)
            .status();
    if (!stopped.ok()) {
      // Never leave a server behind: its backends exit when they see the postmaster gone.
      std::ifstream pid_file(data_dir() + "/postmaster.pid");
      pid_t pid = 0;
      if (pid_file >> pid && pid > 0) ::kill(pid, SIGKILL);
    }
  }
  if (port_reservation_ >= 0) ::close(port_reservation_);
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string PostgresServer::conninfo() const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " dbname=veriface user=veriface connect_timeout=5");
}

std::string PostgresServer::superuser_conninfo() const {
  return absl::StrCat("host=", dir_, " port=", port_, " dbname=postgres user=postgres connect_timeout=5");
}

absl::Status PostgresServer::Stop() {
  if (!running_) return absl::FailedPreconditionError("the PostgreSQL test server is not running");
  absl::Status status =
      RunServerProgram({Program("pg_ctl"), "-D", data_dir(), "-m", "fast", "-w", "-t", "60", "-s", "stop"}, dir_)
          .status();
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(status.message(), "\nserver log:\n", log()));
  running_ = false;
  return absl::OkStatus();
}

absl::Status PostgresServer::Resume() {
  if (running_) return absl::FailedPreconditionError("the PostgreSQL test server is already running");
  absl::Status status = StartServer();
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(status.message(), "\nserver log:\n", log()));
  return absl::OkStatus();
}

std::string PostgresServer::log() const { return ReadFile(log_path()); }

}  // namespace veriface::testing
