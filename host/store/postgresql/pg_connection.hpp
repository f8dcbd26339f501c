// A thin RAII layer over libpq: one connection, text-format parameters and
// results, errors as exceptions that say whether the server was unreachable
// (StoreUnavailable: worth retrying) or refused the statement (PgError).
//
// Thread safety: a PgConnection is used by one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "store/store.hpp"

namespace nightshift::pg {

// The server refused a statement; `sqlstate` is its five-character code.
class PgError : public std::runtime_error {
 public:
  PgError(const std::string& message, std::string sqlstate)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// A statement parameter in text form; nullopt is SQL NULL.
using Param = std::optional<std::string>;

class Result {
 public:
  Result() = default;
  explicit Result(PGresult* result) : result_(result, &PQclear) {}

  int rows() const { return result_ ? PQntuples(result_.get()) : 0; }
  bool is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  std::string_view text(int row, int column) const {
    return {PQgetvalue(result_.get(), row, column),
            static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
  }
  std::string string(int row, int column) const { return std::string(text(row, column)); }
  std::optional<std::string> optional_string(int row, int column) const;
  std::int64_t int64(int row, int column) const;
  std::optional<std::int64_t> optional_int64(int row, int column) const;
  double real(int row, int column) const;
  bool boolean(int row, int column) const { return text(row, column) == "t"; }
  // Rows an INSERT, UPDATE or DELETE touched.
  std::int64_t affected() const;

 private:
  std::shared_ptr<PGresult> result_;
};

class Connection {
 public:
  // Connects; throws StoreUnavailable when the server cannot be reached and
  // PgError when it refuses (bad password, unknown database).
  explicit Connection(const std::string& conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement (parameters $1..$n, text format).
  Result exec(const std::string& sql, const std::vector<Param>& params = {});
  // The same through a statement prepared once per connection under `name`
  // (parsed and planned once): for the statements run on every batch.
  Result exec_prepared(const std::string& name, const std::string& sql,
                       const std::vector<Param>& params);
  // One statement of a pipeline; one with a name is prepared once per
  // connection under it (parsed and planned once), as exec_prepared does.
  struct Step {
    std::string sql;
    std::vector<Param> params;
    std::string name;
  };
  // Sends every step at once and reads every result after (one round trip
  // for the lot: libpq's pipeline mode). Throws as exec() does for the first
  // step that failed; the steps after it were not run. A transaction the
  // steps opened and did not end is rolled back.
  std::vector<Result> exec_pipeline(const std::vector<Step>& steps);
  // The same, where only the first `required` steps must succeed: a failure
  // of a later one (e.g. notifications sent after a commit) throws nothing
  // but is described in `tail_error`, its result (and those after it) left
  // empty; a transaction it left open is rolled back, and a connection lost
  // among them is closed (ok() turns false).
  std::vector<Result> exec_pipeline(const std::vector<Step>& steps, std::size_t required,
                                    std::string& tail_error);
  // Runs statements without parameters (e.g. a migration step).
  void exec_script(const std::string& sql);

  // False once the connection is lost; reconnect() then opens a new one.
  bool ok() const;
  void reconnect();

  // The raw socket, for waiting on notifications.
  int socket() const { return PQsocket(conn_); }
  // Reads what the server sent, then returns every notification that came:
  // (channel, payload). Throws StoreUnavailable when the connection is lost.
  std::vector<std::pair<std::string, std::string>> take_notifications();

  const std::string& conninfo() const noexcept { return conninfo_; }

 private:
  void open();
  [[noreturn]] void fail(PGresult* result, const std::string& sql);

  // Sends one statement (`send` returns its result), retried once on a new
  // connection when the server dropped this one outside a transaction.
  template <class Send>
  Result run(const std::string& sql, Send&& send);

  std::string conninfo_;
  PGconn* conn_ = nullptr;
  std::unordered_set<std::string> prepared_;  // statement names prepared on conn_
};

// A transaction on `conn`: BEGIN now, ROLLBACK unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Connection& conn, const char* begin = "BEGIN");
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& conn_;
  bool done_ = false;
};

// A PostgreSQL array literal of text elements, e.g. {"a","b\"c",NULL}.
std::string text_array(const std::vector<Param>& values);

// The connection string without its password, for messages.
std::string redact(const std::string& conninfo);

// The database's clock in Unix milliseconds, as SQL: heartbeats and leases
// are measured on it, so hosts with skewed clocks still agree.
inline constexpr const char* kDbNowMs = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

}  // namespace nightshift::pg
