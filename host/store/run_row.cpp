#include "store/run_row.hpp"

#include <boost/json.hpp>
#include <stdexcept>

namespace nightshift::store {

namespace {

void bind_optional_time(SQLite::Statement& statement, int index,
                        const std::optional<Timestamp>& t) {
  if (t) {
    statement.bind(index, to_ms(*t));
  } else {
    statement.bind(index);
  }
}

void bind_optional_text(SQLite::Statement& statement, int index,
                        const std::optional<std::string>& text) {
  if (text) {
    statement.bindNoCopy(index, *text);
  } else {
    statement.bind(index);
  }
}

std::optional<Timestamp> optional_time(const SQLite::Statement& statement, int index) {
  if (statement.isColumnNull(index)) return std::nullopt;
  return from_ms(statement.getColumn(index).getInt64());
}

std::optional<std::string> optional_text(const SQLite::Statement& statement, int index) {
  if (statement.isColumnNull(index)) return std::nullopt;
  return statement.getColumn(index).getString();
}

template <class T>
T parse_or_throw(std::optional<T> parsed, const std::string& what, const std::string& text) {
  if (!parsed) throw std::runtime_error("stored run has an unknown " + what + " '" + text + "'");
  return *parsed;
}

}  // namespace

void bind_run(SQLite::Statement& statement, const Run& run) {
  check_writable(run);
  statement.bindNoCopy(1, run.instance_id);
  statement.bindNoCopy(2, run.thread_id);
  statement.bindNoCopy(3, run.agent_id);
  statement.bindNoCopy(4, run.agent_name);
  statement.bindNoCopy(5, to_string(run.agent_source).data());
  bind_optional_text(statement, 6, run.task);
  statement.bind(7, boost::json::serialize(run.params));
  statement.bindNoCopy(8, to_string(run.status).data());
  statement.bind(9, to_ms(run.created_at));
  bind_optional_time(statement, 10, run.started_at);
  bind_optional_time(statement, 11, run.ended_at);
  if (run.progress) {
    statement.bind(12, *run.progress);
  } else {
    statement.bind(12);
  }
  bind_optional_text(statement, 13, run.error);
  if (run.result.is_null()) {
    statement.bind(14);
  } else {
    statement.bind(14, boost::json::serialize(run.result));
  }
  statement.bind(kLogCountParameter, static_cast<std::int64_t>(run.log_count));
  if (run.usage) {
    statement.bind(16, static_cast<std::int64_t>(run.usage->prompt_tokens));
    statement.bind(17, static_cast<std::int64_t>(run.usage->completion_tokens));
  } else {
    statement.bind(16);
    statement.bind(17);
  }
  statement.bind(18, run.accepts_messages ? 1 : 0);
  statement.bindNoCopy(19, to_string(run.isolation).data());
  bind_optional_text(statement, 20, run.host);
  statement.bind(21, static_cast<std::int64_t>(run.attempt));
  bind_optional_text(statement, 22, run.retry_of);
  bind_optional_text(statement, 23, run.rerun_of);
  bind_optional_text(statement, 24, run.schedule_id);
  statement.bind(kFinishedParameter, is_terminal(run.status) ? 1 : 0);
}

// A row that cannot be read in full (edited by hand, damaged, written by a
// newer version) still becomes one entry: each field is read on its own, a
// field that fails keeps its empty value, and the run says what was wrong in
// its error. An unknown status reads as failed, so that the run is finished
// and can be deleted; one list never fails for one bad row.
Run read_run(const SQLite::Statement& statement) {
  Run run;
  std::string problems;
  const auto field = [&](const char* name, const auto& read) {
    try {
      read();
    } catch (const std::exception& failure) {
      if (!problems.empty()) problems += "; ";
      problems += name;
      problems += ": ";
      problems += failure.what();
    }
  };
  bool status_read = false;
  field("instanceId", [&] { run.instance_id = statement.getColumn(0).getString(); });
  field("threadId", [&] { run.thread_id = statement.getColumn(1).getString(); });
  field("agentId", [&] { run.agent_id = statement.getColumn(2).getString(); });
  field("agentName", [&] { run.agent_name = statement.getColumn(3).getString(); });
  field("agentSource", [&] {
    const std::string source = statement.getColumn(4).getString();
    run.agent_source = parse_or_throw(parse_agent_source(source), "agent source", source);
  });
  field("task", [&] { run.task = optional_text(statement, 5); });
  field("params", [&] {
    const boost::json::value params = boost::json::parse(statement.getColumn(6).getString());
    if (!params.is_object()) throw std::runtime_error("stored run params are not a JSON object");
    run.params = params.get_object();
  });
  field("status", [&] {
    const std::string status = statement.getColumn(7).getString();
    run.status = parse_or_throw(parse_run_status(status), "status", status);
    status_read = true;
  });
  field("createdAt", [&] { run.created_at = from_ms(statement.getColumn(8).getInt64()); });
  field("startedAt", [&] { run.started_at = optional_time(statement, 9); });
  field("endedAt", [&] { run.ended_at = optional_time(statement, 10); });
  field("progress", [&] {
    if (!statement.isColumnNull(11)) run.progress = statement.getColumn(11).getDouble();
  });
  field("error", [&] { run.error = optional_text(statement, 12); });
  field("result", [&] {
    if (!statement.isColumnNull(13))
      run.result = boost::json::parse(statement.getColumn(13).getString());
  });
  field("logCount",
        [&] { run.log_count = static_cast<std::uint64_t>(statement.getColumn(14).getInt64()); });
  field("usage", [&] {
    if (!statement.isColumnNull(15)) {
      run.usage = TokenUsage{static_cast<std::uint64_t>(statement.getColumn(15).getInt64()),
                             static_cast<std::uint64_t>(statement.getColumn(16).getInt64())};
    }
  });
  field("acceptsMessages", [&] { run.accepts_messages = statement.getColumn(17).getInt() != 0; });
  field("isolation", [&] {
    const std::string isolation = statement.getColumn(18).getString();
    run.isolation = parse_or_throw(parse_isolation(isolation), "isolation", isolation);
  });
  field("host", [&] { run.host = optional_text(statement, 19); });
  field("attempt", [&] {
    const std::int64_t attempt = statement.getColumn(20).getInt64();
    if (attempt < 1 || attempt > UINT32_MAX) {
      throw std::runtime_error("stored attempt " + std::to_string(attempt) + " is out of range");
    }
    run.attempt = static_cast<std::uint32_t>(attempt);
  });
  field("retryOf", [&] { run.retry_of = optional_text(statement, 21); });
  field("rerunOf", [&] { run.rerun_of = optional_text(statement, 22); });
  field("scheduleId", [&] { run.schedule_id = optional_text(statement, 23); });
  if (problems.empty()) return run;
  if (!status_read) run.status = RunStatus::failed;
  if (is_terminal(run.status) && !run.ended_at) run.ended_at = run.created_at;
  std::string error = "the stored record of this run could not be read in full (" + problems + ")";
  if (run.error) {
    error += "; its recorded error: ";
    error += *run.error;
  }
  run.error = std::move(error);
  return run;
}

}  // namespace nightshift::store
