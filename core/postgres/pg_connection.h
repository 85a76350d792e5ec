#pragma once
// A thin RAII layer over libpq, PostgreSQL's C client: a connection, parameterised statements, results,
// LISTEN/NOTIFY and a transaction that rolls back unless committed. Every failure comes back as an
// absl::Status whose code says what the caller can do about it (UNAVAILABLE: reconnect and retry, ABORTED:
// rerun the transaction, ALREADY_EXISTS: a unique key clashed) and which carries the server's SQLSTATE
// (SqlStateOf). A Connection is not thread-safe: use one per thread, or guard it.

#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface::pg {

struct ConnectOptions {
  // libpq keyword/value string or URI, e.g. "host=127.0.0.1 port=5432 dbname=veriface user=veriface";
  // without the password. Keepalive settings in it (keepalives*, tcp_user_timeout) override this layer's
  // defaults; connect_timeout and application_name are taken from the fields below.
  std::string conninfo;
  // Passed to libpq on its own, never logged and never put into a message.
  std::string password;
  int connect_timeout_s = 5;
  // 0: none; otherwise SET statement_timeout right after connecting.
  int statement_timeout_ms = 0;
  std::string application_name = "veriface";
};

// Query parameters for $1..$n, in order. Bytes go in binary (bytea), everything else as text, so that the
// server infers the type from the statement.
class Params {
 public:
  Params& Text(std::string_view value);
  // Sent as its decimal text.
  Params& Int64(int64_t value);
  // A bytea, sent in binary format.
  Params& Bytes(const void* data, size_t size);
  Params& Null();

  int size() const { return static_cast<int>(values_.size()); }
  // The i-th value (nullopt for NULL), its format (0: text, 1: binary) and type (0: inferred by the server).
  const std::optional<std::string>& value(int i) const { return values_[i]; }
  int format(int i) const { return formats_[i]; }
  Oid type(int i) const { return types_[i]; }

 private:
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
  std::vector<Oid> types_;
};

struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

// The rows of one successful statement. Out-of-range cells read as NULL.
class Result {
 public:
  int rows() const;
  int columns() const;
  bool IsNull(int row, int col) const;
  // The text form of a cell. With binary results, integers and booleans are rendered as in text mode
  // ("42", "t"); other types come back as their raw binary form (text types: the text itself).
  std::string Text(int row, int col) const;
  // An int2/int4/int8/oid/bool cell, or a text cell holding a decimal integer, in either result format;
  // 0 for NULL and for anything else (a numeric, a float: cast those to int8 in SQL).
  int64_t Int64(int row, int col) const;
  // The raw bytes of a bytea cell, in either result format (text-mode results are unescaped, which costs a
  // copy and twice the transfer: read large blobs with binary_results).
  std::string Bytes(int row, int col) const;
  // Rows inserted/updated/deleted/selected, from the command tag; 0 when the statement reports none.
  int64_t affected_rows() const;

 private:
  friend class Connection;
  friend class Transaction;
  explicit Result(ResultPtr result) : result_(std::move(result)) {}
  bool InRange(int row, int col) const;
  bool Binary(int col) const;
  // "INSERT 0 1", "COMMIT", "ROLLBACK": how Transaction tells a COMMIT that rolled back.
  std::string command_tag() const;

  ResultPtr result_;
};

struct ConnFinisher {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnFinisher>;

class Connection {
 public:
  // Connects and, when asked, sets the statement timeout. UNAVAILABLE when the server cannot be reached or
  // refuses the login (the message says which); INVALID_ARGUMENT for a malformed conninfo.
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(const ConnectOptions& options);

  // Use Connect; public only so that Connect can make_unique it.
  Connection(ConnPtr conn, std::string description);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One statement with $1..$n parameters. binary_results: every result column in binary format (use it for
  // bytea reads; Result still reads integers, booleans and text from it).
  absl::StatusOr<Result> Exec(std::string_view sql, const Params& params = {}, bool binary_results = false);
  // Several statements without parameters, e.g. a migration script. Unless the script has its own
  // BEGIN/COMMIT, the server runs it as one implicit transaction: all of it or nothing.
  absl::Status ExecScript(std::string_view sql);

  // False once the connection broke; it does not come back: Connect again.
  bool healthy() const;
  // "host:port/dbname", for messages (never the password).
  std::string describe() const { return description_; }

  // LISTEN on `channel`, quoted as an identifier (so case and spaces are kept, as pg_notify sees them).
  absl::Status Listen(std::string_view channel);
  struct Notification {
    std::string channel;
    std::string payload;
  };
  // Waits up to `timeout` for notifications on the channels listened to and returns all that have arrived;
  // an empty vector on timeout; UNAVAILABLE when the connection broke.
  absl::StatusOr<std::vector<Notification>> WaitForNotifications(std::chrono::milliseconds timeout);

 private:
  // The notifications libpq has already read, in arrival order.
  std::vector<Notification> DrainNotifications();
  // The status for a failed statement (`result` may be null) or a broken connection.
  absl::Status Failure(const PGresult* result, std::string_view sql) const;
  // libpq's notice receiver: keeps a FATAL message that came between statements, drops the rest.
  static void OnNotice(void* self, const PGresult* notice);

  ConnPtr conn_;
  std::string description_;
  // Why the server closed the connection ("[57P01] terminating connection due to administrator command"),
  // when it said so between statements: libpq's own message then is only "server closed the connection".
  std::string fatal_state_;
  std::string fatal_message_;
};

// BEGIN ... COMMIT on one connection; the destructor rolls back unless Commit() was called.
class Transaction {
 public:
  enum class Isolation { kReadCommitted, kRepeatableRead, kSerializable };

  explicit Transaction(Connection* connection) : connection_(connection) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  absl::Status Begin(Isolation isolation = Isolation::kReadCommitted, bool read_only = false);
  // ABORTED when the transaction had already failed (the server rolled it back) or hit a serialization
  // failure at commit; UNAVAILABLE when the connection broke, in which case nobody can say whether the
  // commit happened. The transaction is over either way.
  absl::Status Commit();

 private:
  Connection* connection_;
  bool open_ = false;
};

// The SQLSTATE that a status made by this library carries ("" for none), e.g. "23505".
std::string SqlStateOf(const absl::Status& status);

}  // namespace veriface::pg
