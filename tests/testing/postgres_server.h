#pragma once
// A real, throwaway PostgreSQL 15 server for tests: its own cluster in a fresh directory under /tmp,
// listening on 127.0.0.1 on a free port, with a role "veriface" that must give its password over TCP and
// a database "veriface" it owns. The server programs refuse to run as root, so when the test does, they
// run as the `postgres` system user that Debian's package creates.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface::testing {

// PostgreSQL 15's server programs are installed (deploy/setup.sh installs them), and, when running as
// root, the `postgres` user to run them as exists.
bool PostgresInstalled();

struct PostgresServerOptions {
  // Off makes writes faster and a crash of the machine lose data; the server's own crashes stay safe.
  bool fsync = true;
};

class PostgresServer {
 public:
  // initdb in a fresh directory, start the server and create the role and database; returns once it
  // accepts connections. The error carries the server log.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(PostgresServerOptions options = {});
  // Stops the server at once (immediate shutdown: no checkpoint) and removes its directory.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // "host=127.0.0.1 port=N dbname=veriface user=veriface connect_timeout=5" (no password).
  std::string conninfo() const;
  const std::string& password() const { return password_; }
  // The superuser "postgres" on database "postgres" over the server's Unix socket, which trusts local
  // users (no password), for tests that must e.g. terminate backends.
  std::string superuser_conninfo() const;

  // Fast shutdown (sessions are terminated, data is kept); the port stays reserved for Resume.
  absl::Status Stop();
  // Starts again on the same port and data; returns once it accepts connections.
  absl::Status Resume();
  // The server's log so far.
  std::string log() const;

  // Use Start; public only so that Start can make_unique it.
  PostgresServer(std::string dir, int port, int port_reservation, std::string password);

 private:
  absl::Status Initialize(const PostgresServerOptions& options);
  // pg_ctl start -w.
  absl::Status StartServer();
  absl::Status CreateRoleAndDatabase();
  std::string data_dir() const { return dir_ + "/data"; }
  std::string log_path() const { return dir_ + "/server.log"; }

  std::string dir_;
  int port_;
  // A socket bound (not listening) to the port, SO_REUSEADDR, held until the destructor: the server binds
  // next to it, and while the server is stopped the kernel hands the port to nobody who asks for a free one.
  int port_reservation_;
  std::string password_;
  bool running_ = false;
};

}  // namespace veriface::testing
