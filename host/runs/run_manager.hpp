// The run manager: starts runs of catalog agents, each on its own worker
// thread with a cancellation token; queues runs past the concurrency limit;
// stops, times out and deletes runs; and records every change through the
// StoreWriter, which publishes the matching events once they are durable.
//
// Thread safety: every public member is [thread-safe]. Each run's live state
// is owned by the manager and guarded by that run's own mutex; the manager's
// tables (active runs, queue, slots) by the manager's mutex. The agent's
// callbacks (log, progress, cancelled, sleep_for) touch only the run's state.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "model/run.hpp"
#include "store/run_store.hpp"

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
};

struct StartRequest {
  std::string agent_id;
  std::optional<std::string> task;
  boost::json::object params;
};

// Why a run operation was refused. `code` is the API error code.
class RunError : public std::runtime_error {
 public:
  enum class Code { run_not_found, run_not_active, run_active, at_capacity, shutting_down };
  RunError(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Code code() const noexcept { return code_; }

 private:
  Code code_;
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
};

class RunManager {
 public:
  // At construction: runs the store's start-up recovery (every run left
  // active is marked failed, interrupted), then starts the writer thread and
  // the retention pruning.
  RunManager(Catalog& catalog, RunStore& store, EventBus& bus, RunManagerOptions options);
  // Calls shutdown(options.stop_grace) if it has not been called.
  ~RunManager();
  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  // Creates the run (queued), commits it, publishes `started`, and hands it
  // to a worker when a slot is free. Returns the run as committed.
  // Throws CatalogError (agent_not_found, agent_unavailable, invalid_params)
  // or RunError (at_capacity, shutting_down).
  Run start(const StartRequest& request);

  // Asks a run to stop: a queued run is cancelled at once; a running one
  // becomes stopping. Returns the run as it is now. Throws RunError
  // (run_not_found, run_not_active).
  Run stop(const std::string& instance_id);

  // Deletes a finished run and its log. Throws RunError (run_not_found,
  // run_active).
  void remove(const std::string& instance_id);

  std::optional<Run> get(const std::string& instance_id) const;
  // Every active run, newest createdAt first.
  std::vector<Run> active(const std::optional<std::string>& agent_id = std::nullopt) const;
  // Throws InvalidCursor.
  HistoryPage history(const HistoryQuery& query) const;
  // Throws RunError(run_not_found).
  LogPage logs(const std::string& instance_id, std::uint64_t after, std::size_t limit) const;

  RunManagerStats stats() const;

  // Graceful stop: refuses new starts, asks every run to stop, waits up to
  // `grace` for them, records what is left as failed (interrupted), and
  // flushes the store. Threads still inside an agent after that are logged
  // and detached: the process is about to exit. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

  // Waits until the run is terminal and its final record is committed, or
  // until `timeout`. Returns the run as it is then. For tests and the CLI's
  // in-process uses; the API does not block on it.
  std::optional<Run> wait(const std::string& instance_id, std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nightshift
