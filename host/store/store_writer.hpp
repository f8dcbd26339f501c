// The one thread that writes to the store. Everything that changes the
// history (new runs, status changes, log entries, deletions) is submitted
// here; the thread commits whatever has accumulated as one transaction, then
// hands the committed ops, in submission order, to a second thread, the
// publisher, which gives them to `on_committed` (which the run manager uses
// to publish events) and then calls the ops' completions. So an event is
// only ever published for something already durable, and events come out in
// the order they were made.
//
// The two threads form a pipeline: while the publisher handles one batch,
// the writer commits the next. The writer runs at most one batch ahead: it
// takes no new batch while a committed one waits for the publisher, so what
// arrives meanwhile joins one larger transaction. flush() returns once the
// publisher is done with everything submitted before it.
//
// Failures are owned here. When a batch fails, its ops are retried one by
// one, so one bad op cannot roll back other runs' records: an op the store
// refuses for what it is (a broken record) is dropped and logged; an op that
// fails because the store cannot write now (disk full, I/O error, locked) is
// held, with everything after it, and retried with backoff until it commits.
// While anything is held the writer is unhealthy (healthy() is false), and
// an op submitted with a completion (a start, a delete: someone waits for
// it) is failed at once instead of held, so that nobody waits on a full disk.
//
// The queue is bounded by the runs, not by how often they change: an update
// (submit_update: a record, or a progress update of a few fields) replaces
// the run's queued update that it makes redundant, which then leaves the
// queue unwritten, and goes to the back, behind the log entries it counts.
// So a store that falls behind, or cannot write for a while, holds at most a
// record and a progress update per live run however often the runs report
// progress, and on_committed sees the latest of them. Every change of status
// stays its own record.
//
// Thread safety: submit*, flush and the getters are [thread-safe]. The
// on_committed callback and completions run on the publisher thread, one
// batch at a time, and must not block (a slow one holds up the writer a
// batch later).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/store.hpp"

namespace nightshift {

class StoreWriter {
 public:
  using CommittedHandler = std::function<void(const std::vector<WriteOp>& committed)>;
  // Called on the publisher thread once the op is committed (error empty)
  // or has failed (error says why), after on_committed has seen it. Must
  // not block: it hands the outcome to its own thread.
  using Completion = std::function<void(const std::string& error)>;

  struct Options {
    std::chrono::milliseconds first_retry{100};  // after a transient failure
    std::chrono::milliseconds max_retry{2000};   // the backoff's ceiling
  };

  StoreWriter(Store& store, CommittedHandler on_committed);
  StoreWriter(Store& store, CommittedHandler on_committed, Options options);
  // Commits everything still pending (one last try for held ops), then
  // joins the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues one op; returns at once.
  void submit(WriteOp op);
  // Queues one op; `on_done` hears its outcome. The start path uses it: a
  // run is durable before the client hears of it, and no thread waits.
  void submit(WriteOp op, Completion on_done);
  // Queues a later record of a run whose first record is already committed
  // (nobody waits for it). It replaces a queued update of the same run that
  // no other record or delete of the run has followed: a record of the same
  // status, or a progress update.
  void submit_update(UpsertRun record);
  // Queues a progress update of such a run; it replaces a queued progress
  // update of the run that nothing else of the run has followed. Only for a
  // store that writes_progress_alone().
  void submit_update(UpdateProgress progress);
  // The same, the update made here: when it replaces a queued progress
  // update it takes over that update's copy of the run's id instead of a new
  // one. A run reporting progress at every tick then neither allocates nor
  // frees on its own thread (what a thread frees, malloc keeps cached for
  // that thread, unused while the run sleeps).
  void submit_progress(std::string_view instance_id, std::optional<double> progress,
                       std::uint64_t log_count, std::optional<TokenUsage> usage);
  // Queues one op and returns once it is committed. Throws if it failed.
  // For callers that may block (tests, the API's worker pool).
  void submit_and_wait(WriteOp op);
  // Returns once everything submitted before the call is committed, failed
  // or held, including the rest of a bounded prune.
  void flush();

  // False while writes are held because the store cannot commit.
  bool healthy() const noexcept { return healthy_.load(std::memory_order_acquire); }
  // Why the store last failed (empty while it never has).
  std::string last_error() const;
  std::size_t pending_ops() const;
  // Updates (records and progress updates) that a later update of the same
  // run replaced before they were written, since the writer started.
  std::uint64_t superseded_records() const;
  std::size_t held_ops() const;
  std::uint64_t committed_batches() const;
  // Batches (or retries) that failed, since the writer started.
  std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }

 private:
  struct Item {
    WriteOp op;
    Completion done;          // empty: nobody waits for this op
    bool superseded = false;  // a later record of its run replaced it: skipped
  };
  // What the writer thread took from the queue for one transaction.
  struct Batch {
    std::vector<Item> items;
    std::uint64_t last_seq = 0;
  };

  void thread_main();
  Batch take_batch();  // called with mutex_ held
  void submit_update_op(WriteOp op);
  // Marks the queued update that the update at `position` replaces, if
  // any, and makes it the one a later update may replace. With mutex_ held.
  void supersede_locked(std::size_t position);
  using Replaceable = std::unordered_map<std::string_view, std::size_t>;
  // The same once the run's queued update is known: `node` is its entry,
  // taken out of replaceable_, and goes back keyed by the update at
  // `position`. With mutex_ held.
  void replace_locked(Replaceable::node_type node, std::size_t position);
  // What one commit hands to the publishing thread: the ops committed, for
  // on_committed, then each waiting op's outcome, in submission order.
  struct Publication {
    std::vector<WriteOp> ops;
    std::vector<std::pair<Completion, std::string>> outcomes;
    std::uint64_t last_seq = 0;  // submitted_seq_ when the batch was taken
  };
  void commit(Batch& batch);
  // After a failed batch: op by op, into `publication`; returns the items to hold.
  std::vector<Item> commit_one_by_one(std::vector<Item>& items, Publication& publication);
  void continue_prune();
  // On the writer thread: waits until no publication waits (one may be
  // being published), so that the next batch takes what came meanwhile.
  void wait_for_publisher();
  void hand_over(Publication publication);
  void publisher_main();
  void publish(const std::vector<WriteOp>& committed);
  static void complete(Completion& done, const std::string& error);
  void become_unhealthy(const std::string& error);
  void become_healthy();
  void note_unfinished_prune(const std::vector<WriteOp>& ops);

  Store& store_;                   // written only by the writer thread
  CommittedHandler on_committed_;  // called only on the publisher thread
  const Options options_;
  std::atomic<bool> healthy_{true};
  std::atomic<std::uint64_t> failures_{0};
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable work_ready_;
  std::condition_variable committed_;
  // A deque: an op stays where it is while more are queued, so that
  // replaceable_ can view the ids inside the ops.
  std::deque<Item> pending_;
  std::size_t superseded_in_pending_ = 0;
  // Per run, where in pending_ its last update is, while it may be replaced;
  // keyed by a view of the instance id in that update.
  Replaceable replaceable_;
  std::uint64_t superseded_ = 0;
  // Ops that failed for a passing reason, in order: retried before anything newer.
  std::vector<Item> held_;
  std::chrono::milliseconds retry_delay_{0};
  std::string last_error_;
  // A PruneRuns whose chunk bound stopped it: the writer runs one more chunk
  // after each batch until it is done, so newer writes are never held up.
  std::optional<PruneRuns> unfinished_prune_;
  std::uint64_t submitted_seq_ = 0;  // ops submitted so far
  std::uint64_t committed_seq_ = 0;  // ops published (or failed, or held) so far
  std::uint64_t batches_ = 0;
  bool stopping_ = false;
  std::mutex publish_mutex_;  // guards the two below
  std::condition_variable publication_changed_;
  std::optional<Publication> waiting_publication_;
  bool publisher_stopping_ = false;
  std::thread publisher_;  // publishes what the writer thread committed
  std::thread thread_;     // last: started after every member above exists
};

}  // namespace nightshift
