// A run as both stores keep it in their runs table: the columns every run
// query selects, and how a row of them becomes a Run (read_run_fields). The
// SQLite store (run_row.cpp) and the PostgreSQL store (pg_store.cpp) each
// give it a reader of their rows; neither library is needed here.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "model/run.hpp"

namespace nightshift::store {

// The columns every run query selects, in RunField's order.
inline constexpr const char* kRunColumns =
    "instance_id, thread_id, agent_id, agent_name, agent_source, task, params, status, "
    "created_at, started_at, ended_at, progress, error, result, log_count, prompt_tokens, "
    "completion_tokens, accepts_messages, isolation, host, attempt, retry_of, rerun_of, "
    "schedule_id";
// How many columns kRunColumns names (a query's next column is at this index).
inline constexpr int kRunColumnCount = 24;

// A column of kRunColumns; its value is the column's index.
enum class RunField : int {
  instance_id,
  thread_id,
  agent_id,
  agent_name,
  agent_source,
  task,
  params,
  status,
  created_at,
  started_at,
  ended_at,
  progress,
  error,
  result,
  log_count,
  prompt_tokens,
  completion_tokens,
  accepts_messages,
  isolation,
  host,
  attempt,
  retry_of,
  rerun_of,
  schedule_id,
};
static_assert(static_cast<int>(RunField::schedule_id) + 1 == kRunColumnCount);

inline std::int64_t to_ms(Timestamp t) {
  return t.time_since_epoch().count();
}
inline Timestamp from_ms(std::int64_t ms) {
  return Timestamp{std::chrono::milliseconds{ms}};
}

template <class T>
T parse_or_throw(std::optional<T> parsed, const std::string& what, const std::string& text) {
  if (!parsed) throw std::runtime_error("stored run has an unknown " + what + " '" + text + "'");
  return *parsed;
}

// Reads a run from the current row of `row`, whose members read one column:
//   bool is_null(RunField)
//   std::string text(RunField)          (a NULL reads as empty)
//   std::string_view json(RunField)     (the column's text, for a JSON parser)
//   std::int64_t int64(RunField)
//   double real(RunField)
//   bool boolean(RunField)
// each throwing a std::exception when the stored value cannot be read so.
//
// A row that cannot be read in full (edited by hand, damaged, written by a
// newer version) still becomes one entry: each field is read on its own, a
// field that fails keeps its empty value, and the run says what was wrong in
// its error. An unknown status reads as failed, so that the run is finished
// and can be deleted; one list never fails for one bad row. Never throws for
// a malformed stored value.
template <class Row>
Run read_run_fields(const Row& row) {
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
  const auto optional_text = [&](RunField column) -> std::optional<std::string> {
    if (row.is_null(column)) return std::nullopt;
    return row.text(column);
  };
  const auto optional_time = [&](RunField column) -> std::optional<Timestamp> {
    if (row.is_null(column)) return std::nullopt;
    return from_ms(row.int64(column));
  };
  bool status_read = false;
  field("instanceId", [&] { run.instance_id = row.text(RunField::instance_id); });
  field("threadId", [&] { run.thread_id = row.text(RunField::thread_id); });
  field("agentId", [&] { run.agent_id = row.text(RunField::agent_id); });
  field("agentName", [&] { run.agent_name = row.text(RunField::agent_name); });
  field("agentSource", [&] {
    const std::string source = row.text(RunField::agent_source);
    run.agent_source = parse_or_throw(parse_agent_source(source), "agent source", source);
  });
  field("task", [&] { run.task = optional_text(RunField::task); });
  field("params", [&] {
    const boost::json::value params = boost::json::parse(row.json(RunField::params));
    if (!params.is_object()) throw std::runtime_error("stored run params are not a JSON object");
    run.params = params.get_object();
  });
  field("status", [&] {
    const std::string status = row.text(RunField::status);
    run.status = parse_or_throw(parse_run_status(status), "status", status);
    status_read = true;
  });
  field("createdAt", [&] { run.created_at = from_ms(row.int64(RunField::created_at)); });
  field("startedAt", [&] { run.started_at = optional_time(RunField::started_at); });
  field("endedAt", [&] { run.ended_at = optional_time(RunField::ended_at); });
  field("progress", [&] {
    if (!row.is_null(RunField::progress)) run.progress = row.real(RunField::progress);
  });
  field("error", [&] { run.error = optional_text(RunField::error); });
  field("result", [&] {
    if (!row.is_null(RunField::result)) run.result = boost::json::parse(row.json(RunField::result));
  });
  field("logCount",
        [&] { run.log_count = static_cast<std::uint64_t>(row.int64(RunField::log_count)); });
  field("usage", [&] {
    if (!row.is_null(RunField::prompt_tokens)) {
      const std::int64_t completion =
          row.is_null(RunField::completion_tokens) ? 0 : row.int64(RunField::completion_tokens);
      run.usage = TokenUsage{static_cast<std::uint64_t>(row.int64(RunField::prompt_tokens)),
                             static_cast<std::uint64_t>(completion)};
    }
  });
  field("acceptsMessages", [&] { run.accepts_messages = row.boolean(RunField::accepts_messages); });
  field("isolation", [&] {
    const std::string isolation = row.text(RunField::isolation);
    run.isolation = parse_or_throw(parse_isolation(isolation), "isolation", isolation);
  });
  field("host", [&] { run.host = optional_text(RunField::host); });
  field("attempt", [&] {
    const std::int64_t attempt = row.int64(RunField::attempt);
    if (attempt < 1 || attempt > std::numeric_limits<std::uint32_t>::max()) {
      throw std::runtime_error("stored attempt " + std::to_string(attempt) + " is out of range");
    }
    run.attempt = static_cast<std::uint32_t>(attempt);
  });
  field("retryOf", [&] { run.retry_of = optional_text(RunField::retry_of); });
  field("rerunOf", [&] { run.rerun_of = optional_text(RunField::rerun_of); });
  field("scheduleId", [&] { run.schedule_id = optional_text(RunField::schedule_id); });
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
