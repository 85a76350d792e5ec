// The libpq layer against a real PostgreSQL server: logging in, parameters and both result formats,
// transactions, the status each kind of failure maps to, LISTEN/NOTIFY, and a server that goes away and
// comes back.

#include "core/postgres/pg_connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/testing/postgres_server.h"

namespace veriface::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresInstalled()) GTEST_SKIP() << "PostgreSQL 15 is not installed (deploy/setup.sh installs it)";
    // Nothing here needs durability across a machine crash.
    PostgresServerOptions options;
    options.fsync = false;
    absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  pg::ConnectOptions Options() const {
    pg::ConnectOptions options;
    options.conninfo = server_->conninfo();
    options.password = server_->password();
    return options;
  }

  std::unique_ptr<pg::Connection> Connect() const { return ConnectWith(Options()); }

  static std::unique_ptr<pg::Connection> ConnectWith(const pg::ConnectOptions& options) {
    absl::StatusOr<std::unique_ptr<pg::Connection>> connection = pg::Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? std::move(*connection) : nullptr;
  }

  std::unique_ptr<pg::Connection> Superuser() const {
    pg::ConnectOptions options;
    options.conninfo = server_->superuser_conninfo();
    return ConnectWith(options);
  }

  std::unique_ptr<PostgresServer> server_;
};

TEST_F(PgConnectionTest, ConnectsWithThePasswordAndRefusesWithoutIt) {
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_NE(connection, nullptr);
  EXPECT_TRUE(connection->healthy());
  EXPECT_EQ(connection->describe(), absl::StrCat("127.0.0.1:", server_->port(), "/veriface"));
  absl::StatusOr<pg::Result> user = connection->Exec("SELECT current_user, current_setting('application_name')");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->Text(0, 0), "veriface");
  EXPECT_EQ(user->Text(0, 1), "veriface");

  pg::ConnectOptions none = Options();
  none.password.clear();
  absl::StatusOr<std::unique_ptr<pg::Connection>> refused = pg::Connection::Connect(none);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(refused.status().message(),
              AllOf(HasSubstr(connection->describe()), HasSubstr("password"), Not(HasSubstr(server_->password()))));

  pg::ConnectOptions wrong = Options();
  wrong.password = "not-the-password-" + server_->password();
  refused = pg::Connection::Connect(wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(refused.status().message(),
              AllOf(HasSubstr("password authentication failed"), Not(HasSubstr(server_->password()))));

  pg::ConnectOptions malformed = Options();
  malformed.conninfo = "host=127.0.0.1 port";
  EXPECT_EQ(pg::Connection::Connect(malformed).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PgConnectionTest, BindsParametersAndReadsTextResults) {
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Exec("CREATE TABLE person (id int8 PRIMARY KEY, name text, note text, photo bytea)").ok());
  const std::string photo("\x00\x01\xff'\\", 5);
  absl::StatusOr<pg::Result> inserted =
      connection->Exec("INSERT INTO person (id, name, note, photo) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)",
                       pg::Params()
                           .Int64(-9000000000)
                           .Text("O'Brien; DROP TABLE person")
                           .Null()
                           .Bytes(photo.data(), photo.size())
                           .Int64(7)
                           .Text("Zoë")
                           .Text("")
                           .Bytes(nullptr, 0));
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ(inserted->affected_rows(), 2);

  absl::StatusOr<pg::Result> rows = connection->Exec("SELECT id, name, note, photo FROM person ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->rows(), 2);
  EXPECT_EQ(rows->columns(), 4);
  EXPECT_EQ(rows->Int64(0, 0), -9000000000);
  EXPECT_EQ(rows->Text(0, 0), "-9000000000");
  EXPECT_EQ(rows->Text(0, 1), "O'Brien; DROP TABLE person");
  EXPECT_TRUE(rows->IsNull(0, 2));
  EXPECT_EQ(rows->Bytes(0, 3), photo);  // unescaped from the text form
  EXPECT_EQ(rows->Int64(1, 0), 7);
  EXPECT_EQ(rows->Text(1, 1), "Zoë");
  EXPECT_FALSE(rows->IsNull(1, 2));
  EXPECT_EQ(rows->Text(1, 2), "");
  EXPECT_FALSE(rows->IsNull(1, 3));
  EXPECT_EQ(rows->Bytes(1, 3), "");
  EXPECT_TRUE(rows->IsNull(2, 0));  // out of range

  absl::StatusOr<pg::Result> deleted = connection->Exec("DELETE FROM person WHERE id > $1", pg::Params().Int64(0));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->affected_rows(), 1);
}

TEST_F(PgConnectionTest, BinaryResultsRoundTripBytesAndIntegers) {
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection
                  ->Exec("CREATE TABLE blob (id int8 PRIMARY KEY, small int4, tiny int2, flag bool, "
                         "label text, data bytea)")
                  .ok());
  std::string data;
  for (int round = 0; round < 4; ++round) {
    for (int byte = 0; byte < 256; ++byte) data += static_cast<char>(byte);
  }
  ASSERT_TRUE(connection
                  ->Exec("INSERT INTO blob VALUES ($1, $2, $3, $4, $5, $6)", pg::Params()
                                                                                 .Int64(-1234567890123)
                                                                                 .Int64(-70000)
                                                                                 .Int64(-300)
                                                                                 .Text("true")
                                                                                 .Text("12345")
                                                                                 .Bytes(data.data(), data.size()))
                  .ok());

  absl::StatusOr<pg::Result> row =
      connection->Exec("SELECT id, small, tiny, flag, label, data, id::text FROM blob WHERE id = $1",
                       pg::Params().Int64(-1234567890123), /*binary_results=*/true);
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_EQ(row->rows(), 1);
  EXPECT_EQ(row->Int64(0, 0), -1234567890123);
  EXPECT_EQ(row->Text(0, 0), "-1234567890123");
  EXPECT_EQ(row->Int64(0, 1), -70000);
  EXPECT_EQ(row->Int64(0, 2), -300);
  EXPECT_EQ(row->Int64(0, 3), 1);
  EXPECT_EQ(row->Text(0, 3), "t");
  EXPECT_EQ(row->Text(0, 4), "12345");
  EXPECT_EQ(row->Int64(0, 4), 12345);
  EXPECT_EQ(row->Bytes(0, 5), data);
  EXPECT_EQ(row->Int64(0, 6), -1234567890123);

  absl::StatusOr<pg::Result> count = connection->Exec("SELECT count(*) FROM blob", {}, /*binary_results=*/true);
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(count->Int64(0, 0), 1);
}

TEST_F(PgConnectionTest, TransactionRollsBackUnlessCommitted) {
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Exec("CREATE TABLE item (name text PRIMARY KEY)").ok());
  auto count = [&connection]() {
    absl::StatusOr<pg::Result> rows = connection->Exec("SELECT count(*) FROM item");
    return rows.ok() ? rows->Int64(0, 0) : -1;
  };
  {
    pg::Transaction transaction(connection.get());
    ASSERT_TRUE(transaction.Begin().ok());
    ASSERT_TRUE(connection->Exec("INSERT INTO item VALUES ($1)", pg::Params().Text("dropped")).ok());
    EXPECT_EQ(count(), 1);
  }
  EXPECT_EQ(count(), 0);
  {
    pg::Transaction transaction(connection.get());
    ASSERT_TRUE(transaction.Begin(pg::Transaction::Isolation::kSerializable).ok());
    ASSERT_TRUE(connection->Exec("INSERT INTO item VALUES ($1)", pg::Params().Text("kept")).ok());
    EXPECT_TRUE(transaction.Commit().ok());
    EXPECT_EQ(transaction.Commit().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(count(), 1);
  {
    // A failed statement dooms the transaction: its COMMIT rolls back, which must not read as success.
    pg::Transaction transaction(connection.get());
    ASSERT_TRUE(transaction.Begin().ok());
    ASSERT_TRUE(connection->Exec("INSERT INTO item VALUES ($1)", pg::Params().Text("doomed")).ok());
    EXPECT_FALSE(connection->Exec("INSERT INTO item VALUES ($1)", pg::Params().Text("kept")).ok());
    EXPECT_EQ(transaction.Commit().code(), absl::StatusCode::kAborted);
  }
  EXPECT_EQ(count(), 1);
  {
    pg::Transaction transaction(connection.get());
    ASSERT_TRUE(transaction.Begin(pg::Transaction::Isolation::kRepeatableRead, /*read_only=*/true).ok());
    absl::StatusOr<pg::Result> write = connection->Exec("INSERT INTO item VALUES ('no')");
    EXPECT_EQ(pg::SqlStateOf(write.status()), "25006") << write.status();  // read_only_sql_transaction
  }
}

TEST_F(PgConnectionTest, ExecScriptRunsSeveralStatementsAllOrNothing) {
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection
                  ->ExecScript(R"sql(
      CREATE TABLE schema_version (version int4 NOT NULL);
      INSERT INTO schema_version VALUES (1);
      CREATE INDEX schema_version_idx ON schema_version (version);
  )sql")
                  .ok());
  absl::Status broken = connection->ExecScript("UPDATE schema_version SET version = 2; SELEC 1;");
  EXPECT_EQ(broken.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(pg::SqlStateOf(broken), "42601") << broken;  // syntax_error
  EXPECT_THAT(broken.message(), HasSubstr("[42601]"));
  absl::StatusOr<pg::Result> version = connection->Exec("SELECT version FROM schema_version");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->Int64(0, 0), 1);
}

TEST_F(PgConnectionTest, ErrorsMapToCodesAndCarryTheSqlState) {
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Exec("CREATE TABLE face (name text PRIMARY KEY, n int4)").ok());
  ASSERT_TRUE(connection->Exec("INSERT INTO face VALUES ($1, 0)", pg::Params().Text("alice")).ok());

  absl::StatusOr<pg::Result> duplicate =
      connection->Exec("INSERT INTO face VALUES ($1, 0)", pg::Params().Text("alice"));
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kAlreadyExists) << duplicate.status();
  EXPECT_EQ(pg::SqlStateOf(duplicate.status()), "23505");
  EXPECT_THAT(duplicate.status().message(), AllOf(HasSubstr("[23505]"), HasSubstr("face_pkey")));
  EXPECT_TRUE(connection->healthy());

  EXPECT_EQ(pg::SqlStateOf(absl::OkStatus()), "");
  EXPECT_EQ(pg::SqlStateOf(absl::InternalError("not from PostgreSQL")), "");
  EXPECT_EQ(connection->Exec("SELECT * FROM no_such_table").status().code(), absl::StatusCode::kInternal);

  // Another session holds the row: NOWAIT fails at once with lock_not_available.
  std::unique_ptr<pg::Connection> other = Connect();
  ASSERT_NE(other, nullptr);
  {
    pg::Transaction holder(other.get());
    ASSERT_TRUE(holder.Begin().ok());
    ASSERT_TRUE(other->Exec("SELECT * FROM face WHERE name = 'alice' FOR UPDATE").ok());
    absl::StatusOr<pg::Result> locked = connection->Exec("SELECT * FROM face WHERE name = 'alice' FOR UPDATE NOWAIT");
    EXPECT_EQ(locked.status().code(), absl::StatusCode::kUnavailable) << locked.status();
    EXPECT_EQ(pg::SqlStateOf(locked.status()), "55P03");
  }

  // A repeatable-read transaction that updates a row changed since its snapshot: serialization_failure.
  {
    pg::Transaction reader(connection.get());
    ASSERT_TRUE(reader.Begin(pg::Transaction::Isolation::kRepeatableRead).ok());
    ASSERT_TRUE(connection->Exec("SELECT n FROM face WHERE name = 'alice'").ok());
    ASSERT_TRUE(other->Exec("UPDATE face SET n = n + 1 WHERE name = 'alice'").ok());
    absl::StatusOr<pg::Result> conflict = connection->Exec("UPDATE face SET n = n + 1 WHERE name = 'alice'");
    EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted) << conflict.status();
    EXPECT_EQ(pg::SqlStateOf(conflict.status()), "40001");
  }

  pg::ConnectOptions impatient = Options();
  impatient.statement_timeout_ms = 50;
  std::unique_ptr<pg::Connection> timed = ConnectWith(impatient);
  ASSERT_NE(timed, nullptr);
  absl::StatusOr<pg::Result> slow = timed->Exec("SELECT pg_sleep(30)");
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
  EXPECT_EQ(pg::SqlStateOf(slow.status()), "57014");
  EXPECT_TRUE(timed->healthy());
}

TEST_F(PgConnectionTest, ListenReceivesNotificationsFromAnotherConnection) {
  std::unique_ptr<pg::Connection> listener = Connect();
  std::unique_ptr<pg::Connection> notifier = Connect();
  ASSERT_NE(listener, nullptr);
  ASSERT_NE(notifier, nullptr);
  // Quoted as an identifier: case and spaces are kept, as pg_notify names the channel.
  ASSERT_TRUE(listener->Listen("Gallery Changes").ok());

  absl::StatusOr<std::vector<pg::Connection::Notification>> none =
      listener->WaitForNotifications(std::chrono::milliseconds(100));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(*none, IsEmpty());

  ASSERT_TRUE(
      notifier->Exec("SELECT pg_notify($1, $2)", pg::Params().Text("Gallery Changes").Text("enrolled:42")).ok());
  ASSERT_TRUE(notifier->Exec("SELECT pg_notify($1, $2)", pg::Params().Text("other").Text("ignored")).ok());
  absl::StatusOr<std::vector<pg::Connection::Notification>> got =
      listener->WaitForNotifications(std::chrono::seconds(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].channel, "Gallery Changes");
  EXPECT_EQ((*got)[0].payload, "enrolled:42");

  // Notifications that arrive while the listener runs a statement are buffered, not lost.
  ASSERT_TRUE(notifier->Exec("NOTIFY \"Gallery Changes\", 'second'").ok());
  ASSERT_TRUE(notifier->Exec("NOTIFY \"Gallery Changes\", 'third'").ok());
  std::vector<pg::Connection::Notification> later;
  for (int attempt = 0; attempt < 10 && later.size() < 2; ++attempt) {
    absl::StatusOr<std::vector<pg::Connection::Notification>> batch =
        listener->WaitForNotifications(std::chrono::seconds(1));
    ASSERT_TRUE(batch.ok()) << batch.status();
    later.insert(later.end(), batch->begin(), batch->end());
  }
  ASSERT_THAT(later, SizeIs(2));
  EXPECT_EQ(later[0].payload, "second");
  EXPECT_EQ(later[1].payload, "third");
}

TEST_F(PgConnectionTest, TerminatedBackendIsUnavailable) {
  std::unique_ptr<pg::Connection> connection = Connect();
  std::unique_ptr<pg::Connection> superuser = Superuser();
  ASSERT_NE(connection, nullptr);
  ASSERT_NE(superuser, nullptr);
  ASSERT_TRUE(connection->Listen("events").ok());
  absl::StatusOr<pg::Result> killed =
      superuser->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'veriface'");
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_EQ(killed->rows(), 1);

  // The listener sees the connection go while it waits...
  absl::StatusOr<std::vector<pg::Connection::Notification>> waited =
      connection->WaitForNotifications(std::chrono::seconds(5));
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kUnavailable) << waited.status();
  // The server said why before it hung up (admin_shutdown), and the status keeps it.
  EXPECT_EQ(pg::SqlStateOf(waited.status()), "57P01") << waited.status();
  EXPECT_THAT(waited.status().message(), HasSubstr("terminating connection"));
  EXPECT_FALSE(connection->healthy());
  // ...and every later statement fails the same way rather than hanging or crashing.
  absl::StatusOr<pg::Result> after = connection->Exec("SELECT 1");
  EXPECT_EQ(after.status().code(), absl::StatusCode::kUnavailable) << after.status();
  EXPECT_THAT(after.status().message(), HasSubstr("is unreachable"));
}

TEST_F(PgConnectionTest, StoppedServerIsUnavailableUntilResumed) {
  std::unique_ptr<pg::Connection> connection = Connect();
  std::unique_ptr<pg::Connection> committer = Connect();
  ASSERT_NE(connection, nullptr);
  ASSERT_NE(committer, nullptr);
  ASSERT_TRUE(connection->Exec("CREATE TABLE kept (n int4)").ok());
  ASSERT_TRUE(connection->Exec("INSERT INTO kept VALUES (1)").ok());
  pg::Transaction transaction(committer.get());
  ASSERT_TRUE(transaction.Begin().ok());
  ASSERT_TRUE(committer->Exec("INSERT INTO kept VALUES (2)").ok());

  ASSERT_TRUE(server_->Stop().ok());
  // A hang guard, not a timing check: the failure must come from the closed socket, not from a timeout.
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<pg::Result> gone = connection->Exec("SELECT count(*) FROM kept");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnavailable) << gone.status();
  EXPECT_THAT(gone.status().message(), AllOf(HasSubstr(connection->describe()), HasSubstr("is unreachable")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(connection->healthy());

  absl::Status commit = transaction.Commit();
  EXPECT_EQ(commit.code(), absl::StatusCode::kUnavailable) << commit;
  EXPECT_THAT(commit.message(), HasSubstr("the outcome of the commit is unknown"));

  absl::StatusOr<std::unique_ptr<pg::Connection>> refused = pg::Connection::Connect(Options());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(refused.status().message(), Not(HasSubstr(server_->password())));

  ASSERT_TRUE(server_->Resume().ok());
  std::unique_ptr<pg::Connection> again = Connect();
  ASSERT_NE(again, nullptr);
  absl::StatusOr<pg::Result> rows = again->Exec("SELECT count(*) FROM kept");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->Int64(0, 0), 1);  // the row committed before the stop, not the one in flight
}

}  // namespace
}  // namespace veriface::testing
