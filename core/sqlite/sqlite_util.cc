#include "core/sqlite/sqlite_util.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace veriface::sqlite {

absl::Status Error(sqlite3* db, int rc, const std::string& where, const std::string& what) {
  // The connection's message is more precise than sqlite3_errstr when it belongs to this error.
  std::string detail = (db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff))
                           ? std::string(sqlite3_errmsg(db))
                           : std::string(sqlite3_errstr(rc));
  std::string message = absl::StrCat(where, ": ", what, ": ", detail, " (SQLite code ", rc, ")");
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
      return absl::DataLossError(absl::StrCat(message, "; the file is damaged"));
    case SQLITE_NOTADB:
      return absl::FailedPreconditionError(absl::StrCat(message, "; the file is not an SQLite database"));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat(message, "; another process holds the database"));
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(message);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(message);
    default:
      return absl::InternalError(message);
  }
}

Statement& Statement::BindText(int index, const std::string& value) {
  int rc = sqlite3_bind_text(stmt_.get(), index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->Error(rc, absl::StrCat("binding text to ", sql_));
  return *this;
}

Statement& Statement::BindInt64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_.get(), index, value);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->Error(rc, absl::StrCat("binding an integer to ", sql_));
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_.get(), index);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->Error(rc, absl::StrCat("binding NULL to ", sql_));
  return *this;
}

Statement& Statement::BindBlob(int index, const void* data, size_t size) {
  int rc = sqlite3_bind_blob64(stmt_.get(), index, data, size, SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->Error(rc, absl::StrCat("binding a blob to ", sql_));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) {
    absl::Status status = std::exchange(bind_status_, absl::OkStatus());
    Reset();
    return status;
  }
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::Status status = db_->Error(rc, sql_);
  Reset();
  return status;
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
  }
  Reset();
  return absl::OkStatus();
}

void Statement::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_.get(), column));
}

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, int flags, const std::string& name) {
  std::string where = absl::StrCat(name, " '", path, "'");
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);  // sqlite3_open_v2 hands back a handle even on failure; it must be closed
  if (rc != SQLITE_OK) return sqlite::Error(db.get(), rc, where, "opening");
  sqlite3_extended_result_codes(db.get(), 1);
  return std::make_unique<Db>(std::move(db), path, std::move(where));
}

absl::StatusOr<Statement> Db::Prepare(const std::string& sql, bool persistent) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size()),
                              persistent ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return Error(rc, absl::StrCat("preparing ", sql));
  return Statement(this, std::move(stmt), sql);
}

absl::Status Db::Exec(const std::string& sql) {
  int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, sql);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Db::QueryText(const std::string& sql) {
  auto stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  auto row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat(where_, ": ", sql, " returned no row"));
  return stmt->ColumnText(0);
}

absl::Status Transaction::Begin() {
  absl::Status status = db_->Exec("BEGIN IMMEDIATE");
  open_ = status.ok();
  return status;
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY); the destructor then rolls it back.
  if (status.ok() || sqlite3_get_autocommit(db_->get())) open_ = false;
  return status;
}

Transaction::~Transaction() {
  if (open_ && !sqlite3_get_autocommit(db_->get())) sqlite3_exec(db_->get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace veriface::sqlite
