#include "core/postgres/pg_connection.h"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "core/common/status_macros.h"

namespace veriface::pg {
namespace {

// Type OIDs from catalog/pg_type.h, which only the server headers ship; they are fixed for all time.
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;

constexpr char kSqlStateUrl[] = "veriface.dev/sqlstate";

// libpq's messages end in a newline and may span lines ("...failed: Connection refused\n\tIs the server
// running..."); a status message is one line.
std::string OneLine(const char* text) {
  if (text == nullptr) return "";
  std::string line(absl::StripAsciiWhitespace(absl::string_view(text)));
  return absl::StrReplaceAll(line, {{"\n\t", " "}, {"\n", "; "}});
}

// Enough of the statement to recognise it in a log, never its parameters.
std::string Snippet(std::string_view sql) {
  constexpr size_t kMax = 60;
  std::string flat;
  bool space = false;
  for (char c : sql) {
    const bool is_space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (is_space) {
      space = !flat.empty();
      continue;
    }
    if (space) flat += ' ';
    space = false;
    flat += c;
    if (flat.size() > kMax) return absl::StrCat(flat.substr(0, kMax), "...");
  }
  return flat;
}

bool ConnectionLost(const std::string& state) {
  return state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03";
}

// The one mapping from a libpq failure to a status. `result` is the failed statement's result (null when
// there is none: a failed connect, or libpq ran out of memory or lost the connection before any result);
// `fatal_*` what the server said last before it closed the connection, if it did.
absl::Status Error(PGconn* conn, const PGresult* result, const std::string& where, std::string_view sql,
                   const std::string& fatal_state = "", const std::string& fatal_message = "") {
  const char* state_field = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string state = state_field != nullptr ? state_field : "";
  const char* primary = result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string message;
  if (primary != nullptr) {
    message = OneLine(primary);
  } else if (result != nullptr && *PQresultErrorMessage(result) != '\0') {
    message = OneLine(PQresultErrorMessage(result));
  } else {
    message = OneLine(PQerrorMessage(conn));
  }
  if (message.empty()) message = "no message from libpq";
  const bool broken = conn == nullptr || PQstatus(conn) != CONNECTION_OK;
  if (state.empty() && broken && !fatal_state.empty()) {
    state = fatal_state;
    message = absl::StrCat(fatal_message, "; ", message);
  }
  const std::string tagged = state.empty() ? message : absl::StrCat("[", state, "] ", message);
  const std::string running = sql.empty() ? "" : absl::StrCat(" (running \"", Snippet(sql), "\")");

  absl::Status status;
  if ((state.empty() && broken) || ConnectionLost(state)) {
    status = absl::UnavailableError(absl::StrCat("PostgreSQL at ", where, " is unreachable: ", tagged, running));
  } else {
    const std::string text = absl::StrCat("PostgreSQL at ", where, ": ", tagged, running);
    if (state == "23505") {
      status = absl::AlreadyExistsError(text);
    } else if (state == "40001" || state == "40P01") {
      status = absl::AbortedError(absl::StrCat(text, "; rerun the transaction"));
    } else if (state == "57014") {
      status = absl::DeadlineExceededError(text);
    } else if (state == "55P03") {
      status = absl::UnavailableError(text);
    } else {
      status = absl::InternalError(text);
    }
  }
  if (!state.empty()) status.SetPayload(kSqlStateUrl, absl::Cord(state));
  return status;
}

// `status` with `suffix` added to its message, payloads (the SQLSTATE) kept.
absl::Status WithSuffix(const absl::Status& status, const std::string& suffix) {
  absl::Status out(status.code(), absl::StrCat(status.message(), suffix));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

uint64_t BigEndian(const char* data, int size) {
  uint64_t value = 0;
  for (int i = 0; i < size; ++i) value = (value << 8) | static_cast<unsigned char>(data[i]);
  return value;
}

// "host:port/dbname" from the conninfo as given (libpq's defaults filled in), so that it is known even when
// the connection never came up.
absl::StatusOr<std::string> Describe(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
  if (parsed == nullptr) {
    std::string why = error != nullptr ? OneLine(error) : "out of memory";
    PQfreemem(error);
    return absl::InvalidArgumentError(absl::StrCat("PostgreSQL connection string is not valid: ", why));
  }
  std::string host, hostaddr, port, dbname, user;
  for (PQconninfoOption* option = parsed; option->keyword != nullptr; ++option) {
    if (option->val == nullptr || *option->val == '\0') continue;
    const std::string_view keyword = option->keyword;
    if (keyword == "host") host = option->val;
    if (keyword == "hostaddr") hostaddr = option->val;
    if (keyword == "port") port = option->val;
    if (keyword == "dbname") dbname = option->val;
    if (keyword == "user") user = option->val;
  }
  PQconninfoFree(parsed);
  if (host.empty()) host = hostaddr.empty() ? "localhost" : hostaddr;
  if (port.empty()) port = "5432";
  if (dbname.empty()) dbname = user;
  return absl::StrCat(host, ":", port, "/", dbname);
}

}  // namespace

Params& Params::Text(std::string_view value) {
  values_.emplace_back(std::string(value));
  formats_.push_back(0);
  types_.push_back(0);
  return *this;
}

Params& Params::Int64(int64_t value) { return Text(absl::StrCat(value)); }

Params& Params::Bytes(const void* data, size_t size) {
  values_.emplace_back(size == 0 ? std::string() : std::string(static_cast<const char*>(data), size));
  formats_.push_back(1);
  // Binary values must say their type: inferred as text, the bytes would be checked as UTF-8.
  types_.push_back(kByteaOid);
  return *this;
}

Params& Params::Null() {
  values_.emplace_back(std::nullopt);
  formats_.push_back(0);
  types_.push_back(0);
  return *this;
}

int Result::rows() const { return PQntuples(result_.get()); }
int Result::columns() const { return PQnfields(result_.get()); }

bool Result::InRange(int row, int col) const { return row >= 0 && row < rows() && col >= 0 && col < columns(); }
bool Result::Binary(int col) const { return PQfformat(result_.get(), col) == 1; }

bool Result::IsNull(int row, int col) const { return !InRange(row, col) || PQgetisnull(result_.get(), row, col); }

std::string Result::Text(int row, int col) const {
  if (IsNull(row, col)) return "";
  const char* data = PQgetvalue(result_.get(), row, col);
  const int size = PQgetlength(result_.get(), row, col);
  if (Binary(col)) {
    switch (PQftype(result_.get(), col)) {
      case kBoolOid:
        return size == 1 && data[0] != 0 ? "t" : "f";
      case kInt2Oid:
      case kInt4Oid:
      case kInt8Oid:
      case kOidOid:
        return absl::StrCat(Int64(row, col));
      default:
        break;
    }
  }
  return std::string(data, size);
}

int64_t Result::Int64(int row, int col) const {
  if (IsNull(row, col)) return 0;
  const char* data = PQgetvalue(result_.get(), row, col);
  const int size = PQgetlength(result_.get(), row, col);
  const Oid type = PQftype(result_.get(), col);
  if (type == kBoolOid) return Binary(col) ? (size == 1 && data[0] != 0) : (size == 1 && data[0] == 't');
  if (Binary(col)) {
    switch (type) {
      case kInt8Oid:
        return size == 8 ? static_cast<int64_t>(BigEndian(data, 8)) : 0;
      case kInt4Oid:
        return size == 4 ? static_cast<int32_t>(static_cast<uint32_t>(BigEndian(data, 4))) : 0;
      case kInt2Oid:
        return size == 2 ? static_cast<int16_t>(static_cast<uint16_t>(BigEndian(data, 2))) : 0;
      case kOidOid:
        return size == 4 ? static_cast<int64_t>(BigEndian(data, 4)) : 0;
      case kByteaOid:
        return 0;
      default:
        break;  // text types carry their text in binary mode too
    }
  }
  int64_t value = 0;
  return absl::SimpleAtoi(absl::string_view(data, size), &value) ? value : 0;
}

std::string Result::Bytes(int row, int col) const {
  if (IsNull(row, col)) return "";
  const char* data = PQgetvalue(result_.get(), row, col);
  if (Binary(col) || PQftype(result_.get(), col) != kByteaOid) {
    return std::string(data, PQgetlength(result_.get(), row, col));
  }
  size_t size = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(data), &size);
  if (raw == nullptr) return "";
  std::string bytes(reinterpret_cast<const char*>(raw), size);
  PQfreemem(raw);
  return bytes;
}

int64_t Result::affected_rows() const {
  int64_t count = 0;
  return absl::SimpleAtoi(PQcmdTuples(result_.get()), &count) ? count : 0;
}

std::string Result::command_tag() const { return PQcmdStatus(result_.get()); }

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(const ConnectOptions& options) {
  VF_ASSIGN_OR_RETURN(std::string description, Describe(options.conninfo));
  const std::string connect_timeout = absl::StrCat(options.connect_timeout_s);
  // The keepalives come before the conninfo so that it can override them; with them a server that vanished
  // (a dead host, a cut cable: no RST) is noticed in seconds rather than after the kernel's two hours, and
  // tcp_user_timeout does the same while a request is unacknowledged. Options given as fields come after
  // the conninfo: they are what the caller asked for explicitly.
  const char* keywords[] = {
      "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
      "dbname",     "connect_timeout", "application_name",    "password",         nullptr};
  const char* values[] = {"1",
                          "5",
                          "2",
                          "3",
                          "15000",
                          options.conninfo.c_str(),
                          connect_timeout.c_str(),
                          options.application_name.c_str(),
                          options.password.empty() ? nullptr : options.password.c_str(),
                          nullptr};
  ConnPtr conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a PostgreSQL connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    absl::Status status = Error(conn.get(), nullptr, description, "");
    if (PQconnectionNeedsPassword(conn.get())) {
      return WithSuffix(status, "; the server asks for a password and none was given");
    }
    return status;
  }
  auto connection = std::make_unique<Connection>(std::move(conn), std::move(description));
  if (options.statement_timeout_ms > 0) {
    VF_RETURN_IF_ERROR(
        connection->Exec(absl::StrCat("SET statement_timeout = ", options.statement_timeout_ms)).status());
  }
  return connection;
}

Connection::Connection(ConnPtr conn, std::string description)
    : conn_(std::move(conn)), description_(std::move(description)) {
  // libpq's default prints notices to stderr, which is a service's log: the one notice that matters, a FATAL
  // before the server hangs up, comes back in the next status instead.
  PQsetNoticeReceiver(conn_.get(), &Connection::OnNotice, this);
}

void Connection::OnNotice(void* self, const PGresult* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity == nullptr || (std::strcmp(severity, "FATAL") != 0 && std::strcmp(severity, "PANIC") != 0)) return;
  auto* connection = static_cast<Connection*>(self);
  const char* state = PQresultErrorField(notice, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(notice, PG_DIAG_MESSAGE_PRIMARY);
  connection->fatal_state_ = state != nullptr ? state : "";
  connection->fatal_message_ = OneLine(primary);
}

absl::Status Connection::Failure(const PGresult* result, std::string_view sql) const {
  return Error(conn_.get(), result, description_, sql, fatal_state_, fatal_message_);
}

Connection::~Connection() = default;

bool Connection::healthy() const { return PQstatus(conn_.get()) == CONNECTION_OK; }

absl::StatusOr<Result> Connection::Exec(std::string_view sql, const Params& params, bool binary_results) {
  const int n = params.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  std::vector<int> formats(n);
  std::vector<Oid> types(n);
  for (int i = 0; i < n; ++i) {
    const std::optional<std::string>& value = params.value(i);
    values[i] = value.has_value() ? value->data() : nullptr;
    lengths[i] = value.has_value() ? static_cast<int>(value->size()) : 0;
    formats[i] = params.format(i);
    types[i] = params.type(i);
  }
  const std::string statement(sql);
  ResultPtr result(PQexecParams(conn_.get(), statement.c_str(), n, types.data(), values.data(), lengths.data(),
                                formats.data(), binary_results ? 1 : 0));
  const ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return Result(std::move(result));
  }
  if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT) {
    // Leave the COPY this layer does not speak, so that the connection stays usable.
    if (status == PGRES_COPY_IN) {
      PQputCopyEnd(conn_.get(), "COPY is not supported by veriface::pg");
    } else {
      char* row = nullptr;
      while (PQgetCopyData(conn_.get(), &row, /*async=*/0) > 0) PQfreemem(row);
    }
    while (PGresult* rest = PQgetResult(conn_.get())) PQclear(rest);
    return absl::UnimplementedError(
        absl::StrCat("PostgreSQL at ", description_, ": COPY is not supported (running \"", Snippet(sql), "\")"));
  }
  return Failure(result.get(), sql);
}

absl::Status Connection::ExecScript(std::string_view sql) {
  const std::string script(sql);
  ResultPtr result(PQexec(conn_.get(), script.c_str()));
  const ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return absl::OkStatus();
  }
  return Failure(result.get(), sql);
}

absl::Status Connection::Listen(std::string_view channel) {
  char* quoted = PQescapeIdentifier(conn_.get(), channel.data(), channel.size());
  if (quoted == nullptr) return Failure(nullptr, "LISTEN");
  const std::string sql = absl::StrCat("LISTEN ", quoted);
  PQfreemem(quoted);
  return Exec(sql).status();
}

std::vector<Connection::Notification> Connection::DrainNotifications() {
  std::vector<Notification> notifications;
  while (PGnotify* notify = PQnotifies(conn_.get())) {
    notifications.push_back({notify->relname, notify->extra != nullptr ? notify->extra : ""});
    PQfreemem(notify);
  }
  return notifications;
}

absl::StatusOr<std::vector<Connection::Notification>> Connection::WaitForNotifications(
    std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + timeout;
  // Notifications that came in with the results of earlier statements are already buffered.
  std::vector<Notification> notifications = DrainNotifications();
  while (notifications.empty()) {
    const int socket = PQsocket(conn_.get());
    if (!healthy() || socket < 0) return Failure(nullptr, "");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd fd{socket, POLLIN, 0};
    const int ready = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      return absl::InternalError(
          absl::StrCat("PostgreSQL at ", description_, ": waiting for notifications: poll: ", std::strerror(errno)));
    }
    if (ready == 0) break;
    // Reading EOF or an error (a terminated backend) is where a broken connection shows.
    if (PQconsumeInput(conn_.get()) == 0) return Failure(nullptr, "");
    notifications = DrainNotifications();
  }
  return notifications;
}

Transaction::~Transaction() {
  // Best effort: on a broken connection the server has already rolled back.
  if (open_ && connection_->healthy()) connection_->Exec("ROLLBACK").IgnoreError();
}

absl::Status Transaction::Begin(Isolation isolation, bool read_only) {
  if (open_) return absl::FailedPreconditionError("Transaction::Begin called twice");
  const char* level = "READ COMMITTED";
  if (isolation == Isolation::kRepeatableRead) level = "REPEATABLE READ";
  if (isolation == Isolation::kSerializable) level = "SERIALIZABLE";
  VF_RETURN_IF_ERROR(
      connection_->Exec(absl::StrCat("BEGIN ISOLATION LEVEL ", level, read_only ? " READ ONLY" : " READ WRITE"))
          .status());
  open_ = true;
  return absl::OkStatus();
}

absl::Status Transaction::Commit() {
  if (!open_) return absl::FailedPreconditionError("Transaction::Commit called without a successful Begin");
  // Whatever happens next the transaction is over: committed, rolled back by the server, or lost with the
  // connection.
  open_ = false;
  absl::StatusOr<Result> result = connection_->Exec("COMMIT");
  if (!result.ok()) {
    if (absl::IsUnavailable(result.status())) {
      return WithSuffix(result.status(), "; the outcome of the commit is unknown");
    }
    return result.status();
  }
  // COMMIT of a transaction in which a statement failed succeeds, but rolls back.
  if (result->command_tag() == "ROLLBACK") {
    return absl::AbortedError(absl::StrCat("PostgreSQL at ", connection_->describe(),
                                           ": COMMIT rolled back, since a statement in the transaction had failed"));
  }
  return absl::OkStatus();
}

std::string SqlStateOf(const absl::Status& status) {
  const absl::optional<absl::Cord> state = status.GetPayload(kSqlStateUrl);
  return state.has_value() ? std::string(*state) : "";
}

}  // namespace veriface::pg
