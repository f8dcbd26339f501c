// The run and log-entry records shared by every room of the host.
//
// Plain values: copying one is safe from any thread. Which thread owns the
// live copy of a run is said where it is kept (runs/run_manager.hpp).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/optional_text.hpp"

namespace nightshift {

// Wall-clock time with millisecond precision: what the API and the store show.
using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

Timestamp now_ms();

// RFC 3339 UTC with milliseconds, e.g. "2026-11-24T05:46:31.482Z".
std::string format_rfc3339(Timestamp t);
std::optional<Timestamp> parse_rfc3339(std::string_view text);

enum class RunStatus { queued, running, stopping, completed, failed, cancelled };

std::string_view to_string(RunStatus status);
std::optional<RunStatus> parse_run_status(std::string_view text);
bool is_terminal(RunStatus status);
inline bool is_active(RunStatus status) {
  return !is_terminal(status);
}

enum class LogLevel { trace = 0, debug = 1, info = 2, warn = 3, error = 4 };

std::string_view to_string(LogLevel level);
std::optional<LogLevel> parse_log_level(std::string_view text);

enum class AgentSource { installed, local, remix };

// Who wrote a log entry: the agent, a user's message, or the host itself.
// Values are stored.
enum class LogSource { agent = 0, user = 1, host = 2 };

std::string_view to_string(LogSource source);

// Tokens a model-backed run used, as the agent reported them.
struct TokenUsage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
};

std::string_view to_string(AgentSource source);
std::optional<AgentSource> parse_agent_source(std::string_view text);

// Where a run's agent code executes (agents.md, "Isolation"). Values are stored.
enum class Isolation { thread, process };

std::string_view to_string(Isolation isolation);
std::optional<Isolation> parse_isolation(std::string_view text);

// One run, as the API's Run object describes it (api.md). Its fields are
// ordered so that none leaves a gap for alignment: a host keeps one for every
// live run, and copies it for every commit and every reader.
struct Run {
  std::string instance_id;  // UUID v4
  std::string thread_id;    // a second UUID v4, never equal to instance_id
  std::string agent_id;     // "<source>:<name>"
  std::string agent_name;
  AgentSource agent_source = AgentSource::installed;
  Isolation isolation = Isolation::thread;  // runs recorded before v1.1 ran in the host
  OptionalText task;
  boost::json::object params;  // the merged params the agent receives
  RunStatus status = RunStatus::queued;
  bool accepts_messages = false;  // the agent's manifest says "messages": true
  Timestamp created_at{};
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> ended_at;
  std::optional<double> progress;  // 0..1, or none when never reported
  OptionalText error;
  boost::json::value result;  // null when the agent set none
  std::uint64_t log_count = 0;
  std::optional<TokenUsage> usage;  // none until the agent reports any
  OptionalText host;                // the host executing it; none while queued
  // Where the run came from (v1.1): 1 for a first attempt, N+1 for the retry
  // of attempt N; the run it retries, the run it was re-run from, and the
  // schedule that started it.
  std::uint32_t attempt = 1;
  OptionalText retry_of{};
  OptionalText rerun_of{};
  OptionalText schedule_id{};

  // endedAt - startedAt once ended; the time so far while active; 0 while
  // queued. Never negative.
  std::int64_t duration_ms(Timestamp now) const;
};

// One entry of a run's log. seq starts at 1 and grows by 1 per entry of a run.
struct LogEntry {
  std::uint64_t seq = 0;
  Timestamp ts{};
  LogLevel level = LogLevel::info;
  std::string message;
  LogSource source = LogSource::agent;
};

// A fresh UUID (version 7: time-ordered, 74 random bits) in canonical
// lowercase text form.
std::string generate_uuid();

// True for a canonical UUID in text form (any version, either case).
bool is_uuid(std::string_view text);

}  // namespace nightshift
