// Durable history: runs and their log entries in one SQLite database (WAL),
// through SQLiteCpp. All SQL of the host lives under store/, so that another
// store (e.g. PostgreSQL) is a new room, not a rewrite.
//
// Thread safety: the write side (apply, mark_interrupted, prune,
// delete_finished_run) must be called from one thread at a time: the host
// calls it only from the StoreWriter thread (and from start-up code before
// that thread exists). The read side is [thread-safe]: each call borrows one
// of a small pool of read connections, which WAL lets run beside the writer.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "model/history.hpp"
#include "model/run.hpp"

namespace nightshift {

struct StoreOptions {
  std::filesystem::path database;  // the SQLite file; its directory must exist
  std::size_t read_connections = 4;
};

// A run's first record (UpsertRun::first) whose id another run has in the
// store. A refusal of that record, not a failure of the store.
class RunIdRecorded : public std::runtime_error {
 public:
  explicit RunIdRecorded(const std::string& instance_id)
      : std::runtime_error("a run with id " + instance_id +
                           " is recorded already (another host started it)") {}
};

// A cursor that did not come from next_cursor.
class InvalidCursor : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Writes, applied in order inside one transaction by RunStore::apply.
//
// An upsert holds its record on the heap, shared and never changed, so that
// every other write (a batch of log entries, a delete) takes a few dozen
// bytes in the writer's queue rather than the room of a whole record: a
// host with thousands of runs logging queues that many writes at a time.
class UpsertRun {
 public:
  // `run`: the whole record as it is now.
  UpsertRun(Run run, std::optional<std::uint32_t> cap = std::nullopt)
      : max_concurrent(cap), run_(std::make_shared<const Run>(std::move(run))) {}

  // A run's first record. It never replaces another run's: when a run with
  // its id is recorded already the store refuses it (RunIdRecorded), so
  // that a run whose id was chosen before it started (a schedule's claimed
  // time, a retry taken from a shared store) runs once even when two hosts
  // start it, e.g. one that paused past its host lease and the one that
  // took its work over. The same record applied again by the same run (its
  // thread id) is accepted: a commit whose answer was lost is retried.
  static UpsertRun first(Run run, std::optional<std::uint32_t> cap = std::nullopt) {
    UpsertRun upsert(std::move(run), cap);
    upsert.first_ = true;
    return upsert;
  }

  const Run& run() const noexcept { return *run_; }
  bool is_first() const noexcept { return first_; }

  // Its agent's cap (limits.maxConcurrent) when the run is admitted: a store
  // shared by several hosts claims queued runs by it. Kept by later upserts
  // that leave it unset; the SQLite store does not use it.
  std::optional<std::uint32_t> max_concurrent;

 private:
  std::shared_ptr<const Run> run_;
  bool first_ = false;
};
// What a live run reports between two changes of its status: its progress,
// how many log entries it has and the tokens it used, written without the
// rest of its record. Only for a run whose record is stored; a stored run
// that has finished is left as it is. A store that does not take these says
// so (Store::writes_progress_alone), and its runs are sent whole records.
struct UpdateProgress {
  std::string instance_id;
  std::optional<double> progress;
  std::uint64_t log_count = 0;  // the stored count only grows
  std::optional<TokenUsage> usage;
};
struct AppendLogs {
  std::string instance_id;
  std::vector<LogEntry> entries;  // ascending seq, continuing the run's log
};
struct DeleteRun {
  std::string instance_id;
};
// Retention pruning, run on the writer thread like every other write.
struct PruneRuns {
  RetentionPolicy policy;
  Timestamp now{};
};
using WriteOp = std::variant<UpsertRun, AppendLogs, DeleteRun, PruneRuns, UpdateProgress>;

class RunStore {
 public:
  // Opens (creating if needed) the database, sets WAL mode, and brings the
  // schema up to date through the versioned migrations. Throws on failure.
  explicit RunStore(StoreOptions options);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  // ---- write side (one thread at a time) ----

  // Applies `ops` in order in one transaction; all or nothing.
  void apply(const std::vector<WriteOp>& ops);

  // Start-up recovery: every run still in an active status becomes failed
  // with `error` and ended_at = `now`. Returns the runs it marked, as
  // they now are.
  std::vector<Run> mark_interrupted(Timestamp now, const std::string& error);

  // Deletes finished runs that the policy no longer keeps, with their logs.
  // Returns how many runs were deleted.
  std::size_t prune(const RetentionPolicy& policy, Timestamp now);

  // ---- read side [thread-safe] ----

  std::optional<Run> get_run(const std::string& instance_id) const;

  // Every active run (queued, running, stopping), newest createdAt first,
  // optionally only those of one agent.
  std::vector<Run> list_active(const std::optional<std::string>& agent_id) const;

  // One page of finished runs. Throws InvalidCursor.
  HistoryPage list_history(const HistoryQuery& query) const;

  // Log entries of a run with seq > after_seq, ascending, at most `limit`.
  std::vector<LogEntry> read_logs(const std::string& instance_id, std::uint64_t after_seq,
                                  std::size_t limit) const;

  std::size_t count_runs() const;
  int schema_version() const;

  // PRAGMA integrity_check's answer ("ok" when sound).
  std::string integrity_check() const;

 private:
  friend class StoreWriter;
  friend class SqliteStore;
  // apply(), answering whether a PruneRuns op stopped at its chunk bound with
  // more left to prune; StoreWriter then queues the rest behind newer work,
  // so a big prune never holds the writer for long.
  bool apply_reporting_unfinished_prune(const std::vector<WriteOp>& ops);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nightshift
