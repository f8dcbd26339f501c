// One run while it is live: from start() until its final record is
// committed. It owns the run's record as the engine sees it, the C ABI
// callbacks the agent calls (log, progress, cancelled, sleep_for, result,
// error, next_message, report_usage), the run's log caps and its share of
// the host-wide log buffer, and hands every change to the store writer in
// order (entries before the record that counts them).
//
// Thread safety: the fields under "fixed" are set before the run is shared
// and only read after; the ones under "guarded" need `mutex`. The callbacks
// run on the agent's threads and take only this run's mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "events/event_bus.hpp"
#include "isolation/process_run.hpp"
#include "loader/plugin_loader.hpp"
#include "model/run.hpp"
#include "runs/wakeup.hpp"
#include "runs/worker_thread.hpp"

namespace nightshift {

class StoreWriter;
class Watchdog;
struct RunManagerOptions;

// The host-wide budget of log bytes accepted from agents and not yet
// committed, and the log counters. [thread-safe]
class LogBudget {
 public:
  explicit LogBudget(std::size_t capacity_bytes) : capacity_(capacity_bytes) {}
  // What an entry costs in the budget besides its message.
  static constexpr std::size_t kEntryOverhead = sizeof(LogEntry);
  static std::size_t cost(const LogEntry& entry) { return entry.message.size() + kEntryOverhead; }

  bool reserve(std::size_t bytes) noexcept;
  // Past the budget on purpose (the one entry that says what was dropped).
  void force(std::size_t bytes) noexcept { used_.fetch_add(bytes, std::memory_order_relaxed); }
  void release(std::size_t bytes) noexcept { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  void count_dropped() noexcept { dropped_.fetch_add(1, std::memory_order_relaxed); }
  void count_written(std::size_t n) noexcept { written_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  std::uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }

 private:
  const std::size_t capacity_;
  std::atomic<std::size_t> used_{0};
  std::atomic<std::uint64_t> dropped_{0}, written_{0};
};

// What a live run uses of its manager. Outlives every run that is not
// abandoned (see LiveRun::abandoned).
struct RunServices {
  const RunManagerOptions& options;
  StoreWriter& writer;
  Watchdog& watchdog;
  LogBudget& budget;
  std::shared_ptr<const std::string> workspace;  // options.workspace, for every run's C view
  // The store takes progress updates without the rest of a record
  // (Store::writes_progress_alone).
  bool progress_alone = false;
};

// The fields of a run's record that change while it is live; the others
// (its identity: ids, agent, task, params, origin) are fixed when the run is
// made. A live run keeps its record once, and of the record as last
// committed only these.
struct RunState {
  RunStatus status = RunStatus::queued;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> ended_at;
  std::optional<double> progress;
  OptionalText error;
  boost::json::value result;
  std::uint64_t log_count = 0;
  std::optional<TokenUsage> usage;
  OptionalText host;

  // Takes the changing fields of `run`.
  void assign(const Run& run);
  // `identity`'s fixed fields with these changing ones.
  Run applied_to(const Run& identity) const;

  // Calls visit(&RunState::field, &Run::field) for each field above: the
  // one list that assign and applied_to both walk.
  template <class Visit>
  static void each_field(Visit&& visit) {
    visit(&RunState::status, &Run::status);
    visit(&RunState::started_at, &Run::started_at);
    visit(&RunState::ended_at, &Run::ended_at);
    visit(&RunState::progress, &Run::progress);
    visit(&RunState::error, &Run::error);
    visit(&RunState::result, &Run::result);
    visit(&RunState::log_count, &Run::log_count);
    visit(&RunState::usage, &Run::usage);
    visit(&RunState::host, &Run::host);
  }
};

struct LiveRun : std::enable_shared_from_this<LiveRun> {
  // A host keeps thousands of these at once (a sleeping run is little more
  // than its thread and this): the small fields sit together rather than
  // each padded out to 8 bytes, and what most runs never need (the mailbox,
  // the counts of dropped log entries) is made when it is first needed.

  // ---- fixed before the run is shared ----
  RunServices* services = nullptr;  // not to be touched once `abandoned` is set
  std::string params_json;
  // The same for every run of a manager; shared, so that a run let go at
  // shutdown keeps it.
  std::shared_ptr<const std::string> workspace;
  std::shared_ptr<const LoadedPlugin> plugin;  // keeps the library mapped
  std::chrono::milliseconds timeout{0};        // its time limit; 0: none
  // What a process run's agent is held to, of its limits (merged: manifest,
  // remixes, then the start request).
  isolation::ProcessLimits process_limits;
  std::stop_source stop;                        // thread-safe by itself
  std::optional<std::uint32_t> max_concurrent;  // its agent's cap (limits.maxConcurrent)
  Isolation isolation = Isolation::thread;
  // The first record is durable: the run may be shown. Set under both the
  // run's and the manager's mutex; read under either.
  std::atomic<bool> committed{false};

  // Where sleep_for and next_message wait (only the run's own thread waits),
  // woken by a stop (a stop_callback the wait registers) and by a message.
  Wakeup wakeup;
  // Messages sent and not yet read by the agent: those in the mailbox, those
  // on their way to the agent's process, and those reserved by a sender
  // that has not delivered yet. Guarded by wait_mutex.
  std::uint32_t unread_messages = 0;
  // Guards the mailbox and unread_messages.
  std::mutex wait_mutex;
  // Messages delivered and not yet taken by the agent, and, for a process
  // run, what wakes its supervisor when one arrives. Made by the first
  // message or waker: most runs never get a message. Guarded by wait_mutex.
  struct Mailbox {
    std::deque<std::string> messages;
    std::function<void()> waker;
  };
  std::unique_ptr<Mailbox> mailbox;

  // ---- guarded by `mutex` ----
  std::mutex mutex;
  // The live record; log_count counts accepted entries. Its identity (all
  // but the RunState fields) is fixed before the run is shared: it may be
  // read without the mutex (instance_id(), and the C view points into it).
  Run record;
  RunState shown;                      // the record as last committed: what readers are shown
  std::vector<LogEntry> pending_logs;  // accepted, not yet handed to the writer
  ProgressThrottle throttle;
  std::size_t accepted_bytes = 0;
  // What the caps dropped of the agent's log; made by the first drop (most
  // runs never have one).
  struct Drops {
    std::uint64_t capped_entries = 0, capped_bytes = 0;  // past the run's cap
    std::uint64_t full_entries = 0, full_bytes = 0;      // the host's log buffer was full
  };
  std::unique_ptr<Drops> drops;
  OptionalText agent_error;
  bool sweep_scheduled = false;  // a sweep is due on the watchdog
  bool progress_held = false;    // a progress value the throttle held back
  bool result_unsent = false;    // the agent set a result no record has carried yet
  bool timed_out = false;
  bool agent_returned = false;
  bool killed = false;     // process isolation: killed after the stop grace
  bool abandoned = false;  // shutdown gave up on the thread; it must not touch the manager
  WorkerThread thread;

  // Fixed before the run is shared (see `record`). [any thread]
  const std::string& instance_id() const noexcept { return record.instance_id; }
  const OptionalText& task() const noexcept { return record.task; }

  // The C view the agent is handed: this run's fields and the callbacks
  // below. Made on the stack of the thread that calls the agent, for the
  // length of the call (the ABI's contract): a sleeping run does not keep
  // it on the heap. [any thread; reads only fixed fields]
  nightshift_run abi_view();

  // ---- with `mutex` held ----
  // The run as readers are shown it: as last committed.
  Run shown_locked() const { return shown.applied_to(record); }

  // Hands the accepted entries to the writer.
  void submit_logs_locked();
  // Hands the record to the writer, after the entries logged before it, so
  // the store never shows a log_count ahead of the entries it holds.
  void submit_record_locked();
  // The same when only the progress, the log count or the usage changed
  // since the last record: a progress update of those few fields, where the
  // store takes one, instead of a copy of the whole record.
  void submit_progress_locked();
  void finish_locked(RunStatus status, std::optional<std::string> error);
  // The one entry the host adds at the end: how much the caps dropped.
  void append_dropped_entry_locked();
  void schedule_sweep_locked();

  // [watchdog thread] Submits held-back entries and progress.
  void sweep();
  // Counts a message about to be sent toward the unread ones; false when
  // `max` are unread already. [thread-safe]
  bool reserve_message(std::size_t max);
  // The reserved message was not sent after all. [thread-safe]
  void unreserve_message();
  // Process isolation: the agent's process has read a message. [thread-safe]
  void message_read();
  // Queues a message (reserved first) for next_message; wakes a waiting
  // agent. [thread-safe]
  void deliver_message(std::string text);
  // With wait_mutex held: whether a message waits, and the oldest one.
  bool has_message_locked() const { return mailbox && !mailbox->messages.empty(); }
  std::optional<std::string> take_message_locked();
  // Process isolation: what wakes the run's supervisor when a message
  // arrives (nothing: none); at once if one waits already. [thread-safe]
  void set_message_waker(std::function<void()> waker);
  // Wakes the run's thread if it waits in sleep_for or next_message.
  // [thread-safe; takes no lock]
  void wake_waiter() noexcept { wakeup.wake_all(); }
  // Appends an entry of the host's own (source host), under the same caps as
  // the agent's. [thread-safe]
  void log_from_host(LogLevel level, std::string_view text);
};

using LivePtr = std::shared_ptr<LiveRun>;

}  // namespace nightshift
