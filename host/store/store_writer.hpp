// The one thread that writes to the store. Everything that changes the
// history (new runs, status changes, log entries, deletions) is submitted
// here; the thread commits whatever has accumulated as one transaction, then
// hands the committed ops, in submission order, to `on_committed` (which the
// run manager uses to publish events). So an event is only ever published for
// something already durable, and events come out in the order they were made.
//
// Thread safety: submit*, flush and pending_ops are [thread-safe]. The
// on_committed callback runs on the writer thread and must not block.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/run_store.hpp"

namespace nightshift {

class StoreWriter {
 public:
  using CommittedHandler = std::function<void(const std::vector<WriteOp>& committed)>;

  StoreWriter(RunStore& store, CommittedHandler on_committed);
  // Commits everything still pending, then joins the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues one op; returns at once.
  void submit(WriteOp op);
  // Called on the writer thread once the op's batch is committed (error
  // empty) or has failed (error says why), after on_committed has seen the
  // batch. Must not block: it hands the outcome to its own thread.
  using Completion = std::function<void(const std::string& error)>;
  // Queues one op; `on_done` hears its outcome. The start path uses it: a
  // run is durable before the client hears of it, and no thread waits.
  void submit(WriteOp op, Completion on_done);
  // Queues one op and returns once it is committed. Throws if the commit
  // failed. For callers that may block (tests, shutdown, the API's pool).
  void submit_and_wait(WriteOp op);
  // Returns once everything submitted before the call is committed (or has
  // failed, which the writer logs), including the rest of a bounded prune.
  void flush();

  std::size_t pending_ops() const;
  std::uint64_t committed_batches() const;

 private:
  // What the writer thread took from the queue for one transaction.
  struct Batch {
    std::vector<WriteOp> ops;
    std::vector<Completion> completions;
    std::uint64_t last_seq = 0;
  };

  void thread_main();
  Batch take_batch();  // called with mutex_ held
  void commit(Batch& batch);
  void continue_prune();
  void publish(const std::vector<WriteOp>& committed);

  RunStore& store_;                // written only by the writer thread
  CommittedHandler on_committed_;  // called only on the writer thread
  mutable std::mutex mutex_;       // guards everything below
  std::condition_variable work_ready_;
  std::condition_variable committed_;
  std::vector<WriteOp> pending_;
  std::vector<Completion> pending_completions_;
  // A PruneRuns whose chunk bound stopped it: the writer runs one more chunk
  // after each batch until it is done, so newer writes are never held up.
  std::optional<PruneRuns> unfinished_prune_;
  std::uint64_t submitted_seq_ = 0;  // ops submitted so far
  std::uint64_t committed_seq_ = 0;  // ops committed (or failed) so far
  std::uint64_t batches_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: started after every member above exists
};

}  // namespace nightshift
