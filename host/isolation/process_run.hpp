// One run in its own process (process isolation): spawns `nightshift-worker`
// over a socketpair, forwards what the agent does to the run, stop and
// messages to the agent, and supervises the process to its end: a stop that
// is not honoured within the grace is a SIGTERM, then a SIGKILL, to the
// worker's group; a crash, an exit without a report or a broken limit
// becomes the run's error. It returns only when every process of the run is
// gone.
//
// Thread safety: run_in_process runs on the run's worker thread and calls
// the sink only from it; the waker it hands the sink may be called from any
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

namespace nightshift::isolation {

struct ProcessLimits {
  std::uint64_t memory_mib = 0;   // 0: none
  std::uint64_t cpu_seconds = 0;  // 0: none
  bool sandbox = false;           // read-only file system but the workspace, private /tmp
  bool network = true;            // false: loopback only
};

class Spawner;

struct ProcessRunSpec {
  std::filesystem::path worker;  // the nightshift-worker executable
  // Forks the worker for a run without a sandbox (spawner.hpp); null: every
  // run's worker is started with posix_spawn.
  std::shared_ptr<Spawner> spawner;
  std::filesystem::path sandbox_tool;  // bwrap; empty: looked up in PATH
  std::string plugin_path;
  std::string plugin_name;
  std::string instance_id;
  std::string workspace;
  std::string params_json;
  std::optional<std::string> task;
  ProcessLimits limits;
  std::chrono::milliseconds stop_grace{10000};  // stop asked -> SIGTERM
  std::chrono::milliseconds kill_grace{1000};   // SIGTERM -> SIGKILL
};

// What the run learns from its process. Called on the supervising thread.
class ProcessRunSink {
 public:
  virtual ~ProcessRunSink() = default;
  virtual void log(std::int32_t level, std::string_view text) = 0;
  // A line the worker printed on stdout or stderr.
  virtual void output_line(std::string_view text) = 0;
  virtual void progress(double fraction) = 0;
  virtual bool set_result_json(std::string_view json) = 0;
  virtual void set_error(std::string_view text) = 0;
  virtual void report_usage(std::uint64_t prompt_tokens, std::uint64_t completion_tokens) = 0;
  // The next message sent to the run, if any.
  virtual std::optional<std::string> take_message() = 0;
  // The agent has read one of the messages take_message handed over.
  virtual void message_read() = 0;
  // Installs (or, with an empty function, removes) what to call when a
  // message arrives. The callable is [thread-safe].
  virtual void set_waker(std::function<void()> waker) = 0;
};

struct ProcessOutcome {
  std::int32_t rc = 1;                 // the agent's return code (NIGHTSHIFT_RUN_*)
  std::optional<std::string> failure;  // set: the run fails with this, whatever rc says
  bool killed = false;                 // killed because it did not stop within the stop grace
  // What the host says in the run's log (source host) about how the
  // process ended when it did not end by returning: a kill, a crash, a limit.
  std::optional<std::string> log_note;
};

// Runs the agent in a worker process until every process of it is gone.
// `stop` is the run's stop token. Never throws: a failure to start the
// process is an outcome with `failure` set.
ProcessOutcome run_in_process(const ProcessRunSpec& spec, ProcessRunSink& sink,
                              std::stop_token stop) noexcept;

// "SIGSEGV (signal 11)".
std::string describe_signal(int signal);

// The bwrap to use: `configured` when set, else the first in PATH; empty
// when there is none.
std::filesystem::path find_sandbox_tool(const std::filesystem::path& configured);

}  // namespace nightshift::isolation
