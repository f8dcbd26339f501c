// The run manager: the short orchestrator of a run's life. It resolves a
// start with the catalog, asks Admission for a place, has the record
// committed, hands the run to a WorkerThread when a slot is free, and stops,
// times out, messages and deletes runs. Its rooms, one job each:
//   admission.hpp     slots and the FIFO queue (a pure class)
//   live_run.hpp      a live run: its record, the agent's C callbacks, log caps
//   worker_thread.hpp the thread a run executes on (stack size, parking)
//   watchdog.hpp      deadlines, the stop grace, sweeps, thread starts, pruning
//   commit_events.hpp what the store writer committed, as bus events
//
// Thread safety: every public member is [thread-safe]. Each live run is
// guarded by its own mutex; the live table and Admission by the manager's.
// Lock order: a run's mutex, then the manager's.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "model/history.hpp"
#include "model/host_record.hpp"
#include "model/run.hpp"

namespace nightshift {

struct RunManagerOptions {
  std::size_t max_concurrent = 32;  // runs executing at once (worker threads)
  std::size_t max_queued = 10000;   // runs waiting for a slot; past it: at_capacity
  // How long a stopping run may take before its record says it ignores the
  // stop (it stays `stopping`: a thread cannot be killed safely).
  std::chrono::milliseconds stop_grace{10000};
  // Host-wide time limit for every run; off unless set. A remix's
  // limits.timeoutSeconds wins over it.
  std::optional<std::chrono::milliseconds> default_timeout;
  std::size_t log_max_entries = 100000;       // per run
  std::size_t log_max_bytes = 64u << 20;      // per run (message bytes)
  std::size_t log_buffer_bytes = 256u << 20;  // all runs' entries not yet committed
  std::size_t worker_stack_bytes = 1u << 20;  // stack of each run's thread
  std::filesystem::path workspace;            // handed to agents
  RetentionPolicy retention;
  std::chrono::milliseconds prune_interval{std::chrono::minutes(10)};
  std::size_t max_message_bytes = 64u << 10;  // a message sent to a run
  // Messages sent to a run and not yet read by its agent; one more is
  // refused (too_many_messages) until the agent reads some.
  std::size_t max_unread_messages = 100;
  // Process isolation (agents.md, "Isolation").
  std::filesystem::path worker_path;           // nightshift-worker; the Host finds it when empty
  std::filesystem::path sandbox_tool;          // bwrap; empty: looked up in PATH
  bool force_process_isolation = false;        // `serve --isolation process`
  std::chrono::milliseconds kill_grace{1000};  // SIGTERM -> SIGKILL of a killed run's agent
  // Plain process runs are forked by one long-lived process spawner
  // (isolation/spawner.hpp); false: a posix_spawn of the worker per run.
  bool process_spawner = true;
  std::string host_name;     // written into each run this host executes (Run.host)
  std::string host_version;  // shown by GET /hosts
};

class Store;

struct StartRequest {
  std::string agent_id;
  std::optional<std::string> task;
  boost::json::object params;
  AgentLimits limits{};  // the request's `limits`: may only lower the agent's
  // Where the run comes from (automation): copied to the Run's fields.
  std::uint32_t attempt = 1;
  std::optional<std::string> retry_of{};
  std::optional<std::string> rerun_of{};
  std::optional<std::string> schedule_id{};
  // The run's id when the caller chose it (a schedule names the run of a
  // time when it claims the time, so that a host back from a crash before
  // the run was recorded starts that run, not another); generated when
  // unset. The caller makes sure that no run has it yet.
  std::optional<std::string> instance_id{};
};

// Why a run operation was refused. `code` is the API error code.
//
// The message is held in a shared_ptr of this class rather than in
// std::runtime_error: a refused start's error is made on the store writer's
// publisher thread and read on the thread that asked (through an
// exception_ptr), and libstdc++'s runtime_error shares its text between
// copies with a reference count kept inside the library, where a thread
// sanitizer cannot see it, so every such refusal read as a data race.
class RunError : public std::runtime_error {
 public:
  enum class Code {
    run_not_found,
    run_not_active,
    run_active,
    at_capacity,
    shutting_down,
    invalid_cursor,          // a history cursor that did not come from next_cursor
    messages_not_supported,  // the agent's manifest does not say "messages": true
    too_many_messages,       // max_unread_messages are waiting for the agent to read them
    store_failed,            // the store could not commit the change
  };
  RunError(Code code, const std::string& message)
      : std::runtime_error(std::string()),
        code_(code),
        message_(std::make_shared<const std::string>(message)) {}
  Code code() const noexcept { return code_; }
  const char* what() const noexcept override { return message_->c_str(); }

 private:
  Code code_;
  std::shared_ptr<const std::string> message_;
};

struct LogPage {
  std::vector<LogEntry> entries;
  std::uint64_t next_after = 0;  // the last seq returned (or `after` when none)
  bool complete = false;         // the run has ended and nothing is left to read
};

// Counters for GET /metrics. Monotonic ones count since this process started.
struct RunManagerStats {
  std::size_t queued = 0;
  std::size_t running = 0;
  std::size_t stopping = 0;
  std::uint64_t starts = 0;
  std::uint64_t stops = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t log_entries_written = 0;
  std::uint64_t log_entries_dropped = 0;
  bool store_ok = true;              // the store commits (false: writes are held)
  std::uint64_t store_failures = 0;  // failed commits (and retries) so far
};

class RunManager {
 public:
  // At construction: runs the store's start-up recovery (every run left
  // active is marked failed, interrupted), then starts the writer thread and
  // the retention pruning.
  RunManager(Catalog& catalog, Store& store, EventBus& bus, RunManagerOptions options);
  // Calls shutdown(options.stop_grace) if it has not been called.
  ~RunManager();
  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  // Creates the run (queued), commits it, publishes `started`, and hands it
  // to a worker when a slot is free. `done` is called exactly once: on the
  // calling thread when the start is refused (CatalogError: agent_not_found,
  // agent_unavailable, invalid_params; RunError: at_capacity, shutting_down),
  // else on the store writer's publisher thread once the record is committed and
  // `started` published (RunError store_failed when the commit failed). With
  // a shared store, an at_capacity refusal may also come from the link
  // thread, after it counted the host's queued runs again. No thread waits
  // for the commit; `done` must not block.
  struct StartOutcome {
    std::optional<Run> run;    // the run as committed
    std::exception_ptr error;  // or why it was not started
  };
  using StartCallback = std::function<void(StartOutcome)>;
  void start(StartRequest request, StartCallback done);

  // The same, waiting for the outcome: returns the run as committed, or
  // throws what the callback would have been given.
  Run start(const StartRequest& request);

  // Asks a run to stop: a queued run is cancelled at once; a running one
  // becomes stopping. Returns the run as it is now. Throws RunError
  // (run_not_found, run_not_active).
  Run stop(const std::string& instance_id);

  // Deletes a finished run and its log. Throws RunError (run_not_found,
  // run_active).
  void remove(const std::string& instance_id);

  // Sends a message to an active run of an agent that accepts them: it is
  // recorded in the run's log (source user) and handed to the agent's
  // next_message. Returns the entry's log seq. Throws RunError
  // (run_not_found, run_not_active, messages_not_supported, and
  // too_many_messages while max_unread_messages wait for the agent).
  std::uint64_t send_message(const std::string& instance_id, std::string text);

  std::optional<Run> get(const std::string& instance_id) const;
  // Every active run, newest createdAt first.
  std::vector<Run> active(const std::optional<std::string>& agent_id = std::nullopt) const;
  // The same from this host's memory alone, without waiting on the store:
  // nullopt when the list needs the store (a shared store, where other
  // hosts' runs are read from it) or this host holds more than `at_most`
  // runs. [thread-safe; for I/O threads]
  std::optional<std::vector<Run>> active_from_memory(const std::optional<std::string>& agent_id,
                                                     std::size_t at_most) const;
  // Throws RunError(invalid_cursor).
  HistoryPage history(const HistoryQuery& query) const;
  // Throws RunError(run_not_found).
  LogPage logs(const std::string& instance_id, std::uint64_t after, std::size_t limit) const;

  RunManagerStats stats() const;
  // False while the store cannot commit (writes are held, starts refused).
  bool store_ok() const noexcept;
  // "sqlite" or "postgresql".
  std::string_view store_kind() const noexcept;
  // This host's name among the hosts of the store (RunManagerOptions::host_name).
  const std::string& host_name() const noexcept;
  // The hosts sharing the store (GET /hosts); with a single-host store,
  // this one. Reads the store: not for an I/O thread.
  std::vector<HostRecord> hosts() const;

  // Graceful stop: refuses new starts, asks every run to stop, waits up to
  // `grace` for them, records what is left as failed (interrupted), and
  // flushes the store. Threads still inside an agent after that are logged
  // and detached (they never touch the manager again): the process is about
  // to exit. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

  // The runs that start-up recovery marked failed (interrupted), as stored;
  // handed out once (the host gives them to the retrier, which was not yet
  // listening when they were marked).
  std::vector<Run> take_interrupted_at_start();

  // Waits until the run is terminal and its final record is committed, or
  // until `timeout`. Returns the run as it is then. For tests and the CLI's
  // in-process uses; the API does not block on it.
  std::optional<Run> wait(const std::string& instance_id, std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nightshift
