// The PostgreSQL implementation of Store: one database shared by several
// hosts. Runs and logs as in the SQLite store; writes in one transaction per
// batch, upserts and log entries each as one multi-row statement, and one
// NOTIFY naming what changed (small payloads: the other hosts re-read the
// rows). Every run row carries the host executing it and a fence number,
// bumped when a host claims the run and when another host rescues it, so
// that a late write of a host that lost the run changes nothing.
//
// It is also the SharedQueue: claims with FOR UPDATE SKIP LOCKED, LISTEN for
// other hosts' changes, and requests (stop, message) to the executing host.
// A heartbeat thread refreshes this host's row in `hosts` and fails the
// active runs of hosts whose heartbeat is older than the lease.
//
// Thread safety: as Store's and SharedQueue's; apply may also be called from
// several threads at once. Writes and reads borrow pooled connections (one
// per write transaction); the listening one is the link thread's, the
// heartbeat one the heartbeat thread's.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/history_cursor.hpp"
#include "store/postgresql/pg_connection.hpp"
#include "store/shared_queue.hpp"
#include "store/store.hpp"

namespace nightshift {

class PostgresStore final : public Store, public SharedQueue {
 public:
  // Connects, migrates, registers this host (refused while a live host has
  // the same name) and starts the heartbeat. Throws with what to fix.
  explicit PostgresStore(StoreLocation location);
  // Stops the heartbeat and marks this host stopped.
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  std::string_view kind() const noexcept override { return "postgresql"; }

  void apply(const std::vector<WriteOp>& ops) override;
  bool apply_reporting_unfinished_prune(const std::vector<WriteOp>& ops) override;
  // Only the runs this host executed: queued runs stay in the shared queue
  // for any host, other hosts' runs are theirs (or their rescuers').
  std::vector<Run> mark_interrupted(Timestamp now, const std::string& error) override;
  std::size_t prune(const RetentionPolicy& policy, Timestamp now) override;

  std::optional<Run> get_run(const std::string& instance_id) const override;
  std::vector<Run> list_active(const std::optional<std::string>& agent_id) const override;
  HistoryPage list_history(const HistoryQuery& query) const override;
  std::vector<LogEntry> read_logs(const std::string& instance_id, std::uint64_t after_seq,
                                  std::size_t limit) const override;
  std::size_t count_runs() const override;
  int schema_version() const override;
  std::string integrity_check() const override;

  bool available() const noexcept override { return reachable_.load(); }
  bool shared() const noexcept override { return true; }
  bool writes_progress_alone() const noexcept override { return true; }
  std::vector<HostRecord> list_hosts() const override;
  SharedQueue* shared_queue() noexcept override { return this; }

  // ---- SharedQueue ----
  std::vector<Run> claim_queued(std::size_t max) override;
  std::size_t count_queued_admitted_here() const override;
  std::optional<Run> cancel_unclaimed(const std::string& instance_id, Timestamp now) override;
  std::vector<Run> get_runs(const std::vector<std::string>& instance_ids) const override;
  std::vector<Run> get_deleted_runs(const std::vector<std::string>& instance_ids) const override;
  UnclaimedMessage record_unclaimed_message(const std::string& instance_id, const std::string& text,
                                            Timestamp now, std::size_t max_waiting) override;
  std::vector<StoreChange> wait_for_changes(std::chrono::milliseconds timeout,
                                            int wake_fd) override;
  std::int64_t send_request(const std::string& host, const RunRequest& request) override;
  std::optional<RequestAnswer> take_answer(std::int64_t request_id) override;
  std::vector<RunRequest> take_requests() override;
  void answer_request(std::int64_t request_id, const RequestAnswer& answer) override;

  // One heartbeat, and a rescue pass when this host has heartbeated for a
  // whole lease (so that after an outage of the database every host has had
  // its chance to heartbeat before anyone is declared dead). Returns how
  // many runs of dead hosts were failed. The thread calls it every
  // heartbeat_interval; tests may call it directly.
  std::size_t heartbeat_and_rescue();

 private:
  // Idle connections of one kind.
  struct Pool {
    std::mutex mutex;  // guards idle
    std::vector<std::unique_ptr<pg::Connection>> idle;
  };
  // A pooled connection, returned to its pool when the lease ends.
  class Lease;
  Lease take(Pool& pool) const;
  Lease borrow() const;         // for reads and claims
  Lease borrow_writer() const;  // for write transactions

  // One write transaction: its connection and, while it is one pipeline,
  // its statements and what to check of each result.
  struct WriteBatch {
    explicit WriteBatch(pg::Connection& connection) : conn(connection) {}
    pg::Connection& conn;
    bool pipelining = false;
    std::vector<pg::Connection::Step> steps;
    std::vector<std::function<void(const pg::Result&)>> checks;
    std::vector<std::string> fenced_runs_done;  // runs whose last state write this is
    std::vector<std::string> fenced_off;        // writes another host won
  };

  // The write side. Several threads may apply batches at once (e.g. the
  // run manager's writers of starts beside its main writer), each on a
  // write connection of its own; a run's writes come from one of them.
  bool apply_in_transaction(const std::vector<WriteOp>& ops);
  // Per k: the run of ops[sources[k]] with log_counts[k], as its first
  // record when firsts[k].
  void write_upserts(WriteBatch& batch, const std::vector<WriteOp>& ops,
                     const std::vector<std::size_t>& sources,
                     const std::vector<std::uint64_t>& log_counts, const std::vector<bool>& firsts);
  // One statement for the rows `picked` (indexes into sources).
  void write_run_rows(WriteBatch& batch, const std::vector<WriteOp>& ops,
                      const std::vector<std::size_t>& sources,
                      const std::vector<std::uint64_t>& log_counts,
                      const std::vector<std::size_t>& picked, bool first);
  void write_logs(WriteBatch& batch, const std::vector<const AppendLogs*>& appends);
  // The newest progress update of each run among `updates` (oldest first).
  void write_progress(WriteBatch& batch, const std::vector<const UpdateProgress*>& updates);
  void delete_run(WriteBatch& batch, const DeleteRun& op);
  std::size_t prune_chunk(WriteBatch& batch, const RetentionPolicy& policy, Timestamp now,
                          bool& more);
  // The NOTIFYs of what the batch changed, sent once it has committed.
  std::vector<pg::Connection::Step> change_notifications(const std::vector<WriteOp>& ops,
                                                         const std::vector<std::size_t>& sources,
                                                         const std::vector<bool>& superseded) const;
  // Appends the notifications' own transaction: see the definition.
  static void append_notifications(std::vector<pg::Connection::Step>& steps,
                                   std::vector<pg::Connection::Step> notifications);
  static void warn_not_notified(const std::string& error);
  // Runs a statement of the batch now, or adds it to the pipeline; one with
  // a name is prepared once under it.
  void write_step(WriteBatch& batch, const std::string& name, const std::string& sql,
                  std::vector<pg::Param> params, std::function<void(const pg::Result&)> check);

  // The fence this host holds for a run it writes: 1 (never claimed) or
  // what its claim returned. [thread-safe]
  std::int64_t fence_of(WriteBatch& batch, const Run& run);
  std::int64_t fence_of(const std::string& instance_id);  // of a run still active
  void hold_fence(const std::string& instance_id, std::int64_t fence);

  void register_host(pg::Connection& conn);
  void heartbeat_main();
  pg::Connection& listener();

  const StoreLocation location_;
  const std::string incarnation_;
  std::unique_ptr<store::HistoryCursorCodec> cursors_;

  // Whether the last heartbeat or write reached the server.
  std::atomic<bool> reachable_{true};

  std::mutex fences_mutex_;  // guards fences_
  std::unordered_map<std::string, std::int64_t> fences_;

  mutable Pool readers_;
  mutable Pool writers_;

  std::unique_ptr<pg::Connection> listener_;  // the link thread's; LISTENs

  std::mutex heartbeat_mutex_;  // guards stopping_ and the heartbeat connection
  std::condition_variable heartbeat_wake_;
  bool stopping_ = false;
  std::unique_ptr<pg::Connection> heartbeat_conn_;
  // Since when heartbeats have succeeded without a failure (heartbeat thread).
  std::optional<std::chrono::steady_clock::time_point> beating_since_;
  std::thread heartbeat_;  // last: started once everything above exists
};

}  // namespace nightshift
