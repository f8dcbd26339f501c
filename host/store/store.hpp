// The store the rest of the host uses: runs and their log entries, behind one
// interface with two implementations, sqlite/ (embedded, the default) and
// postgresql/ (shared by several hosts). The write ops, StoreOptions and
// InvalidCursor are declared beside the SQLite store in run_store.hpp, where
// they were first written.
//
// Thread safety: as RunStore's. The write side (apply,
// apply_reporting_unfinished_prune, mark_interrupted, prune) is called from
// one thread at a time (the StoreWriter thread, and start-up code before it
// exists); the read side is [thread-safe].
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/history.hpp"
#include "model/host_record.hpp"
#include "model/run.hpp"
#include "model/store_unavailable.hpp"
#include "store/run_store.hpp"
#include "store/shared_queue.hpp"

namespace nightshift {

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgresql": what GET /healthz reports.
  virtual std::string_view kind() const noexcept = 0;

  // ---- write side (one thread at a time) ----

  // Applies `ops` in order in one transaction; all or nothing.
  virtual void apply(const std::vector<WriteOp>& ops) = 0;
  // apply(), answering whether a PruneRuns op stopped at its chunk bound
  // with more left to prune (StoreWriter then queues the rest).
  virtual bool apply_reporting_unfinished_prune(const std::vector<WriteOp>& ops) = 0;
  // Start-up recovery: every run still active becomes failed with `error`.
  // A store shared by several hosts marks only the runs of this host.
  // Returns the runs it marked, as they now are, in one statement: a host
  // coming back after a crash reads no run twice.
  virtual std::vector<Run> mark_interrupted(Timestamp now, const std::string& error) = 0;
  // Deletes finished runs that the policy no longer keeps, with their logs.
  virtual std::size_t prune(const RetentionPolicy& policy, Timestamp now) = 0;

  // True when apply() takes UpdateProgress ops; the writer is then sent
  // those instead of whole records between a run's changes of status.
  virtual bool writes_progress_alone() const noexcept { return false; }

  // ---- read side [thread-safe] ----

  virtual std::optional<Run> get_run(const std::string& instance_id) const = 0;
  // Every active run, newest createdAt first, optionally of one agent.
  virtual std::vector<Run> list_active(const std::optional<std::string>& agent_id) const = 0;
  // One page of finished runs. Throws InvalidCursor, std::invalid_argument.
  virtual HistoryPage list_history(const HistoryQuery& query) const = 0;
  virtual std::vector<LogEntry> read_logs(const std::string& instance_id, std::uint64_t after_seq,
                                          std::size_t limit) const = 0;
  virtual std::size_t count_runs() const = 0;
  virtual int schema_version() const = 0;
  // "ok" when the store finds itself sound, else what is wrong.
  virtual std::string integrity_check() const = 0;

  // False while the store is known to be unreachable (a shared store whose
  // server is down); starts are then refused. [thread-safe]
  virtual bool available() const noexcept { return true; }

  // ---- several hosts [thread-safe] ----

  // True when other hosts may write to the same store (PostgreSQL): runs
  // that this host does not execute are then read from the store.
  virtual bool shared() const noexcept { return false; }
  // Every host the store knows, by name; empty for a single-host store.
  virtual std::vector<HostRecord> list_hosts() const { return {}; }
  // The queue, notifications and requests shared with the other hosts, or
  // nullptr for a single-host store.
  virtual SharedQueue* shared_queue() noexcept { return nullptr; }
};

// Where a store lives: empty or "sqlite" for the SQLite file
// `sqlite_database`; a "postgresql://" or "postgres://" URI (or a libpq
// "key=value" connection string) for PostgreSQL.
struct StoreLocation {
  std::string uri;
  std::filesystem::path sqlite_database;
  std::size_t read_connections = 4;
  // This host's name and version, registered in a shared store.
  std::string host_name;
  std::string host_version;
  // A host whose heartbeat is older than this is dead: its active runs are
  // failed (interrupted) by the others.
  std::chrono::milliseconds host_lease{30000};
  std::chrono::milliseconds heartbeat_interval{5000};
};

// True when `uri` names a PostgreSQL database.
bool is_postgresql_uri(std::string_view uri);

// Opens the store `location` names. Throws with a message saying what to fix.
std::unique_ptr<Store> open_store(const StoreLocation& location);

}  // namespace nightshift
