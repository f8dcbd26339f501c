#include "store/postgresql/pg_connection.hpp"

#include <charconv>
#include <cstdlib>

namespace nightshift::pg {

namespace {

// SQLSTATE classes that say the server cannot serve now, not that the
// statement is wrong: connection exceptions (08), insufficient resources
// (53), operator intervention such as a shutdown (57), system errors (58).
bool is_unavailable(const std::string& sqlstate) {
  const std::string_view cls = std::string_view(sqlstate).substr(0, 2);
  return cls == "08" || cls == "53" || cls == "57" || cls == "58" || sqlstate == "40001" ||
         sqlstate == "40P01";
}

std::string trimmed(const char* text) {
  std::string out = text == nullptr ? "" : text;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::optional<std::string> Result::optional_string(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return string(row, column);
}

std::int64_t Result::int64(int row, int column) const {
  const std::string_view value = text(row, column);
  std::int64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    throw std::runtime_error("stored value '" + std::string(value) + "' is not an integer");
  }
  return out;
}

std::optional<std::int64_t> Result::optional_int64(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return int64(row, column);
}

double Result::real(int row, int column) const {
  return std::strtod(string(row, column).c_str(), nullptr);
}

std::int64_t Result::affected() const {
  const char* count = PQcmdTuples(result_.get());
  return count == nullptr || *count == '\0' ? 0 : std::strtoll(count, nullptr, 10);
}

Connection::Connection(const std::string& conninfo) : conninfo_(conninfo) {
  open();
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void Connection::open() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  prepared_.clear();
  conn_ = PQconnectdb(conninfo_.c_str());
  if (conn_ == nullptr) throw StoreUnavailable("cannot allocate a PostgreSQL connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = "cannot connect to PostgreSQL at " + redact(conninfo_) + ": " +
                                trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    // An unreachable server may come back; a refusal (authentication, an
    // unknown database) will not by itself, but a restarting server also
    // refuses ("the database system is starting up"), so both are retried.
    throw StoreUnavailable(message);
  }
  // Quiet: notices (e.g. "relation already exists, skipping") are not errors.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

bool Connection::ok() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

void Connection::reconnect() {
  open();
}

void Connection::fail(PGresult* result, const std::string& sql) {
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const std::string sqlstate = state == nullptr ? "" : state;
  std::string message =
      trimmed(result == nullptr ? PQerrorMessage(conn_) : PQresultErrorMessage(result));
  if (result != nullptr) PQclear(result);
  const bool lost = conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK;
  if (lost || sqlstate.empty() || is_unavailable(sqlstate)) {
    throw StoreUnavailable("PostgreSQL cannot serve now: " + message);
  }
  const std::string head = sql.substr(0, 60);
  throw PgError("PostgreSQL refused a statement (" + head + "...): " + message, sqlstate);
}

template <class Send>
Result Connection::run(const std::string& sql, Send&& send) {
  if (!ok()) open();
  // Outside a transaction, a statement on a connection the server dropped
  // (it restarted) is sent once more on a new connection; inside one, the
  // whole transaction is the caller's to retry.
  const bool idle = PQtransactionStatus(conn_) == PQTRANS_IDLE;
  for (int attempt = 0;; ++attempt) {
    PGresult* result = send();
    const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Result(result);
    if (idle && attempt == 0 && PQstatus(conn_) != CONNECTION_OK) {
      if (result != nullptr) PQclear(result);
      open();
      continue;
    }
    fail(result, sql);
  }
}

namespace {

std::vector<const char*> values_of(const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  return values;
}

}  // namespace

Result Connection::exec(const std::string& sql, const std::vector<Param>& params) {
  const std::vector<const char*> values = values_of(params);
  return run(sql, [&] {
    return PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0);
  });
}

Result Connection::exec_prepared(const std::string& name, const std::string& sql,
                                 const std::vector<Param>& params) {
  const std::vector<const char*> values = values_of(params);
  return run(sql, [&]() -> PGresult* {
    if (!prepared_.contains(name)) {
      PGresult* prepared = PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr);
      if (prepared == nullptr || PQresultStatus(prepared) != PGRES_COMMAND_OK) return prepared;
      PQclear(prepared);
      prepared_.insert(name);
    }
    return PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                          nullptr, nullptr, 0);
  });
}

std::vector<Result> Connection::exec_pipeline(const std::vector<Step>& steps) {
  std::string tail_error;
  return exec_pipeline(steps, steps.size(), tail_error);
}

std::vector<Result> Connection::exec_pipeline(const std::vector<Step>& steps, std::size_t required,
                                              std::string& tail_error) {
  if (!ok()) open();
  // Statements not yet prepared on this connection are, before the pipeline.
  for (const Step& step : steps) {
    if (step.name.empty() || prepared_.contains(step.name)) continue;
    PGresult* prepared = PQprepare(conn_, step.name.c_str(), step.sql.c_str(), 0, nullptr);
    if (prepared == nullptr || PQresultStatus(prepared) != PGRES_COMMAND_OK) {
      fail(prepared, step.sql);
    }
    PQclear(prepared);
    prepared_.insert(step.name);
  }
  if (PQenterPipelineMode(conn_) != 1) {
    throw StoreUnavailable("cannot enter pipeline mode: " + trimmed(PQerrorMessage(conn_)));
  }
  for (const Step& step : steps) {
    const std::vector<const char*> values = values_of(step.params);
    const int sent =
        step.name.empty()
            ? PQsendQueryParams(conn_, step.sql.c_str(), static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, 0)
            : PQsendQueryPrepared(conn_, step.name.c_str(), static_cast<int>(values.size()),
                                  values.data(), nullptr, nullptr, 0);
    if (sent != 1) {
      throw StoreUnavailable("cannot send to PostgreSQL: " + trimmed(PQerrorMessage(conn_)));
    }
  }
  if (PQpipelineSync(conn_) != 1) {
    throw StoreUnavailable("cannot send to PostgreSQL: " + trimmed(PQerrorMessage(conn_)));
  }
  std::vector<Result> results;
  results.reserve(steps.size());
  PGresult* failure = nullptr;
  std::size_t failed_step = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    PGresult* result = PQgetResult(conn_);
    if (result == nullptr) {
      if (failure == nullptr && i >= required) {
        // What had to succeed did: the rest is lost with the connection.
        tail_error = "lost the PostgreSQL connection: " + trimmed(PQerrorMessage(conn_));
        PQfinish(conn_);
        conn_ = nullptr;
        results.resize(steps.size());
        return results;
      }
      if (failure != nullptr) PQclear(failure);
      throw StoreUnavailable("lost the PostgreSQL connection: " + trimmed(PQerrorMessage(conn_)));
    }
    const ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      results.emplace_back(result);
    } else if (status == PGRES_FATAL_ERROR && failure == nullptr && tail_error.empty()) {
      if (i < required) {
        failure = result;
        failed_step = i;
      } else {
        tail_error = trimmed(PQresultErrorMessage(result));
        PQclear(result);
      }
      results.emplace_back();
    } else {
      PQclear(result);  // skipped after the failure
      results.emplace_back();
    }
    PGresult* end = PQgetResult(conn_);  // each result is followed by a null
    if (end != nullptr) PQclear(end);
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync != nullptr) PQclear(sync);
  PQexitPipelineMode(conn_);
  if (!synced) {
    if (failure != nullptr) PQclear(failure);
    throw StoreUnavailable("lost the PostgreSQL connection: " + trimmed(PQerrorMessage(conn_)));
  }
  if (failure != nullptr || !tail_error.empty()) {
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      PGresult* rollback = PQexec(conn_, "ROLLBACK");
      if (rollback != nullptr) PQclear(rollback);
    }
  }
  if (failure != nullptr) fail(failure, steps[failed_step].sql);
  return results;
}

void Connection::exec_script(const std::string& sql) {
  if (!ok()) open();
  PGresult* result = PQexec(conn_, sql.c_str());
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(result, sql);
  PQclear(result);
}

std::vector<std::pair<std::string, std::string>> Connection::take_notifications() {
  if (!ok() || PQconsumeInput(conn_) == 0) {
    throw StoreUnavailable("lost the PostgreSQL connection: " + trimmed(PQerrorMessage(conn_)));
  }
  std::vector<std::pair<std::string, std::string>> out;
  while (PGnotify* notify = PQnotifies(conn_)) {
    out.emplace_back(notify->relname, notify->extra == nullptr ? "" : notify->extra);
    PQfreemem(notify);
  }
  return out;
}

Transaction::Transaction(Connection& conn, const char* begin) : conn_(conn) {
  conn_.exec_script(begin);
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    if (conn_.ok()) conn_.exec_script("ROLLBACK");
  } catch (const std::exception&) {
    // The connection is gone: the server rolled the transaction back.
  }
}

void Transaction::commit() {
  done_ = true;
  conn_.exec_script("COMMIT");
}

std::string text_array(const std::vector<Param>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    if (!values[i]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (const char c : *values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string redact(const std::string& conninfo) {
  // URI form: drop what lies between "user:" and "@".
  const auto scheme = conninfo.find("://");
  if (scheme != std::string::npos) {
    const auto at = conninfo.find('@', scheme);
    const auto colon = conninfo.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      return conninfo.substr(0, colon) + ":***" + conninfo.substr(at);
    }
    return conninfo;
  }
  const auto password = conninfo.find("password=");
  if (password == std::string::npos) return conninfo;
  auto end = conninfo.find(' ', password);
  return conninfo.substr(0, password) + "password=***" +
         (end == std::string::npos ? "" : conninfo.substr(end));
}

}  // namespace nightshift::pg
