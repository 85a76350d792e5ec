#pragma once
// Small RAII layer over the SQLite C API, for the gallery's durable store and veriface-eval's cache: a
// connection, prepared statements that reset themselves, and a transaction that rolls back unless
// committed. Every error comes back as an absl::Status naming the database, its file and what was being
// done.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// A status for SQLite result code `rc` on `db` (which may be null), saying "<where>: <what>: <why>";
// `where` names the database ("gallery database '/var/lib/g.db'"). The canonical code follows the kind of
// failure (corrupt file -> DATA_LOSS, not a database -> FAILED_PRECONDITION, busy -> UNAVAILABLE, disk
// full -> RESOURCE_EXHAUSTED, else INTERNAL).
absl::Status Error(sqlite3* db, int rc, const std::string& where, const std::string& what);

class Db;

// One prepared statement. Bind*, then Step() until it returns false; Run() resets it when done, but after
// Step() the caller must Reset() before binding again (binding a finished statement is SQLITE_MISUSE).
class Statement {
 public:
  Statement() = default;
  Statement(Db* db, StmtPtr stmt, std::string sql) : db_(db), stmt_(std::move(stmt)), sql_(std::move(sql)) {}

  Statement& BindText(int index, const std::string& value);
  Statement& BindInt64(int index, int64_t value);
  Statement& BindBlob(int index, const void* data, size_t size);
  Statement& BindNull(int index);
  // True while a row is available, false when done; errors come back as a status.
  absl::StatusOr<bool> Step();
  // Runs to completion, ignoring rows.
  absl::Status Run();
  void Reset();

  int64_t ColumnInt64(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
  std::string ColumnText(int column) const;
  // Pointer and size of a BLOB column, valid until the next Step/Reset.
  const void* ColumnBlob(int column) const { return sqlite3_column_blob(stmt_.get(), column); }
  int ColumnBytes(int column) const { return sqlite3_column_bytes(stmt_.get(), column); }

 private:
  Db* db_ = nullptr;
  StmtPtr stmt_;
  std::string sql_;
  absl::Status bind_status_;
};

class Db {
 public:
  // `name` says what the database is for, in messages: "gallery database", "evaluator cache".
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path, int flags, const std::string& name);

  absl::StatusOr<Statement> Prepare(const std::string& sql, bool persistent = false);
  // Runs one or more statements that return no rows needed by the caller.
  absl::Status Exec(const std::string& sql);
  // Runs a single-row PRAGMA (or SELECT) and returns its first column as text.
  absl::StatusOr<std::string> QueryText(const std::string& sql);

  absl::Status Error(int rc, const std::string& what) const { return sqlite::Error(db_.get(), rc, where_, what); }
  sqlite3* get() const { return db_.get(); }
  const std::string& path() const { return path_; }
  // "<name> '<path>'", the start of every message about this database.
  const std::string& where() const { return where_; }

  Db(DbPtr db, std::string path, std::string where)
      : db_(std::move(db)), path_(std::move(path)), where_(std::move(where)) {}

 private:
  DbPtr db_;
  std::string path_;
  std::string where_;
};

// Steps `stmt` through its rows, calling `on_row()` (which returns absl::Status) for each; stops at
// the first error, from SQLite or from on_row.
template <typename OnRow>
absl::Status ForEachRow(Statement& stmt, OnRow on_row) {
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    absl::Status status = on_row();
    if (!status.ok()) {
      stmt.Reset();
      return status;
    }
  }
}

// A write transaction: Begin() runs BEGIN IMMEDIATE (taking the write lock up front, so a busy
// database fails here rather than at commit); the destructor rolls back unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Db* db) : db_(db) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  absl::Status Begin();
  absl::Status Commit();

 private:
  Db* db_;
  bool open_ = false;
};

}  // namespace veriface::sqlite
