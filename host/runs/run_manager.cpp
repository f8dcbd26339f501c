#include "runs/run_manager.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "store/store_writer.hpp"

namespace nightshift {

namespace {

using SteadyClock = std::chrono::steady_clock;

// A run's log entries are handed to the writer in batches of this many, or
// sooner by the watchdog's sweep.
constexpr std::size_t kLogBatchEntries = 1024;
// How often the watchdog sweeps runs with entries or progress held back.
constexpr std::chrono::milliseconds kSweepInterval{10};
// What an entry costs in the log buffer besides its message.
constexpr std::size_t kLogEntryOverhead = sizeof(LogEntry);
// How long shutdown waits for worker threads that are past their agent.
constexpr std::chrono::seconds kEpilogueWait{5};

const char* const kRecoveryError = "interrupted: the host stopped while this run was active";
const char* const kShutdownError = "interrupted: the host shut down before this run stopped";
const char* const kGenericFailure = "the agent failed without saying why";

// "10", "0.25", "1.5": seconds as people write them.
std::string format_seconds(double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  std::string text(buf);
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

std::string format_seconds(std::chrono::milliseconds ms) {
  return format_seconds(static_cast<double>(ms.count()) / 1000.0);
}

LogLevel level_from_abi(std::int32_t level) {
  if (level < NIGHTSHIFT_LOG_TRACE || level > NIGHTSHIFT_LOG_ERROR) return LogLevel::info;
  return static_cast<LogLevel>(level);
}

std::size_t buffer_cost(const LogEntry& entry) {
  return entry.message.size() + kLogEntryOverhead;
}

}  // namespace

struct RunManager::Impl {
  // The live state of one run, from start() until its final record is
  // committed (and, for a thread shutdown gave up on, until that thread ends).
  struct LiveRun : std::enable_shared_from_this<LiveRun> {
    // ---- fixed before the run is shared; read by any thread ----
    Impl* owner = nullptr;  // not to be touched once `abandoned` is set
    std::string instance_id;
    std::optional<std::string> task;
    std::string params_json;
    std::string workspace;
    std::shared_ptr<const LoadedPlugin> plugin;  // keeps the library mapped
    std::optional<std::chrono::milliseconds> timeout;
    nightshift_run c_run{};
    std::stop_source stop;  // thread-safe by itself

    // sleep_for's waiting room; only the run's own thread waits here.
    std::mutex sleep_mutex;
    std::condition_variable_any sleep_cv;

    // ---- guarded by `mutex` ----
    std::mutex mutex;
    Run record;                          // the live record; log_count counts accepted entries
    std::vector<LogEntry> pending_logs;  // accepted, not yet handed to the writer
    bool sweep_scheduled = false;        // in the watchdog's sweep list
    bool progress_held = false;          // a progress value the throttle held back
    ProgressThrottle throttle;
    std::size_t accepted_bytes = 0;
    std::uint64_t capped_entries = 0, capped_bytes = 0;  // dropped past the run's cap
    std::uint64_t full_entries = 0, full_bytes = 0;      // dropped: log buffer full
    std::optional<std::string> agent_error;
    bool timed_out = false;
    bool agent_returned = false;
    bool abandoned = false;  // shutdown gave up on the thread; it must not touch the manager
    std::optional<pthread_t> thread;

    // ---- guarded by the manager's mutex ----
    bool launched = false;  // handed to a worker thread (no longer in the queue)
  };
  using LivePtr = std::shared_ptr<LiveRun>;

  enum class DeadlineKind { timeout, stop_grace };
  struct Deadline {
    DeadlineKind kind;
    std::weak_ptr<LiveRun> run;
  };

  Impl(Catalog& catalog_in, RunStore& store_in, EventBus& bus_in, RunManagerOptions options_in);

  // ---- shared references and options (immutable) ----
  Catalog& catalog;
  RunStore& store;
  EventBus& bus;
  const RunManagerOptions options;

  // ---- counters, any thread ----
  std::atomic<std::uint64_t> starts{0}, stops{0}, completed{0}, failed{0}, cancelled{0};
  std::atomic<std::uint64_t> log_written{0}, log_dropped{0};
  std::atomic<std::size_t> buffered_log_bytes{0};

  // ---- the manager's tables, guarded by `mutex` ----
  // Lock order: a run's mutex, then `mutex`, then `timer_mutex`. Whoever
  // holds `mutex` or `timer_mutex` never waits for a run's mutex or the
  // writer, because a run's mutex may be held while waiting for a commit.
  mutable std::mutex mutex;
  mutable std::condition_variable changed;        // a run retired or a slot freed
  std::unordered_map<std::string, LivePtr> runs;  // every run whose final record is not committed
  std::deque<LivePtr> queue;                      // waiting for a slot, FIFO
  std::size_t slots_used = 0;                     // worker threads (and starts about to launch one)
  std::size_t queue_used = 0;                     // queue entries (and starts about to enqueue)
  bool shutting_down = false;
  bool shut_down = false;

  // ---- writer thread only ----
  std::unordered_set<std::string> published_active;  // runs whose `started` went out
  // Records of runs being deleted, so `deleted` carries the run; guarded by deleted_mutex.
  std::mutex deleted_mutex;
  std::unordered_map<std::string, Run> deleted_records;

  // ---- the watchdog thread's inbox, guarded by `timer_mutex` ----
  std::mutex timer_mutex;
  std::condition_variable timer_cv;
  std::multimap<SteadyClock::time_point, Deadline> deadlines;
  std::vector<LivePtr> sweep_list;
  std::vector<pthread_t> finished_threads;  // to be joined
  bool timer_stop = false;
  std::thread timer_thread;

  // Last: destroyed first, so its final commits still find everything above.
  std::unique_ptr<StoreWriter> writer;

  // ---- operations ----
  Run start(const StartRequest& request);
  Run stop(const std::string& instance_id);
  void remove(const std::string& instance_id);
  std::optional<Run> get(const std::string& instance_id) const;
  std::vector<Run> active(const std::optional<std::string>& agent_id) const;
  LogPage logs(const std::string& instance_id, std::uint64_t after, std::size_t limit) const;
  RunManagerStats stats() const;
  void shutdown(std::chrono::milliseconds grace);
  std::optional<Run> wait(const std::string& instance_id, std::chrono::milliseconds timeout) const;

  // ---- internals ----
  LivePtr make_live_run(const StartRequest& request, ResolvedAgent resolved);
  LivePtr find_live(const std::string& instance_id) const;
  std::vector<LivePtr> live_snapshot() const;
  void admit_after_commit(const LivePtr& run, bool slot_reserved);
  std::vector<LivePtr> take_launchable_locked();
  void launch_all(std::vector<LivePtr> runs_to_launch);
  int launch(const LivePtr& run);
  void release_slot();
  Run stop_locked_run(LiveRun& run, bool count_as_stop);

  // Called with the run's mutex held.
  void submit_logs_locked(LiveRun& run);
  void submit_record_locked(LiveRun& run);
  void finish_locked(LiveRun& run, RunStatus status, std::optional<std::string> error);
  void append_dropped_entry_locked(LiveRun& run);
  void schedule_sweep_locked(LiveRun& run);

  void schedule_deadline(SteadyClock::time_point when, DeadlineKind kind, const LivePtr& run);
  bool reserve_log_buffer(std::size_t bytes);

  // Worker thread.
  static void* worker_entry(void* arg) noexcept;
  static void run_worker(const LivePtr& run);
  bool begin_run(LiveRun& run);
  static std::int32_t call_agent(LiveRun& run, std::optional<std::string>& crash);
  static bool end_run(LiveRun& run, std::int32_t rc, std::optional<std::string> crash);

  // Agent callbacks (the C ABI). Never throw.
  static void on_log(const nightshift_run* c_run, std::int32_t level, const char* message,
                     std::size_t size);
  static void on_progress(const nightshift_run* c_run, double fraction);
  static bool on_cancelled(const nightshift_run* c_run);
  static bool on_sleep_for(const nightshift_run* c_run, std::uint64_t milliseconds);
  static bool on_set_result_json(const nightshift_run* c_run, const char* json, std::size_t size);
  static void on_set_error(const nightshift_run* c_run, const char* message, std::size_t size);

  // Writer thread.
  void on_committed(const std::vector<WriteOp>& ops);
  void retire(const Run& final_record);

  // Watchdog thread.
  void timer_main();
  void fire(const Deadline& deadline);
  void sweep(LiveRun& run);
  void join_threads(std::vector<pthread_t>& threads);
};

// ---------------------------------------------------------------------------
// Construction and start-up recovery

RunManager::Impl::Impl(Catalog& catalog_in, RunStore& store_in, EventBus& bus_in,
                       RunManagerOptions options_in)
    : catalog(catalog_in), store(store_in), bus(bus_in), options(std::move(options_in)) {
  // Before anything else: a run the store still calls active belonged to a
  // host that is gone.
  const std::size_t interrupted = store.mark_interrupted(now_ms(), kRecoveryError);
  if (interrupted > 0) {
    spdlog::warn("marked {} run(s) left active by the previous host as failed (interrupted)",
                 interrupted);
  }
  writer = std::make_unique<StoreWriter>(
      store, [this](const std::vector<WriteOp>& ops) { on_committed(ops); });
  writer->submit(PruneRuns{options.retention, now_ms()});
  timer_thread = std::thread([this] { timer_main(); });
}

// ---------------------------------------------------------------------------
// start

RunManager::Impl::LivePtr RunManager::Impl::make_live_run(const StartRequest& request,
                                                          ResolvedAgent resolved) {
  auto run = std::make_shared<LiveRun>();
  run->owner = this;
  Run& r = run->record;
  r.instance_id = generate_uuid();
  do {
    r.thread_id = generate_uuid();
  } while (r.thread_id == r.instance_id);
  r.agent_id = resolved.info.id;
  r.agent_name = resolved.info.name;
  r.agent_source = resolved.info.source;
  r.task = request.task;
  r.params = std::move(resolved.params);
  r.status = RunStatus::queued;
  r.created_at = now_ms();

  run->instance_id = r.instance_id;
  run->task = request.task;
  run->params_json = boost::json::serialize(r.params);
  run->workspace = options.workspace.string();
  run->plugin = std::move(resolved.plugin);
  if (resolved.limits.timeout_seconds && *resolved.limits.timeout_seconds > 0) {
    run->timeout = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::ceil(*resolved.limits.timeout_seconds * 1000.0)));
  } else if (options.default_timeout && options.default_timeout->count() > 0) {
    run->timeout = options.default_timeout;
  }

  nightshift_run& c = run->c_run;
  c.struct_size = sizeof(nightshift_run);
  c.host_data = run.get();
  c.instance_id = run->instance_id.c_str();
  c.instance_id_size = run->instance_id.size();
  c.task = run->task ? run->task->data() : nullptr;
  c.task_size = run->task ? run->task->size() : 0;
  c.params_json = run->params_json.data();
  c.params_json_size = run->params_json.size();
  c.workspace = run->workspace.data();
  c.workspace_size = run->workspace.size();
  c.log = &on_log;
  c.progress = &on_progress;
  c.cancelled = &on_cancelled;
  c.sleep_for = &on_sleep_for;
  c.set_result_json = &on_set_result_json;
  c.set_error = &on_set_error;
  return run;
}

Run RunManager::Impl::start(const StartRequest& request) {
  ResolvedAgent resolved = catalog.resolve(request.agent_id, request.params);
  LivePtr run = make_live_run(request, std::move(resolved));

  bool slot_reserved = false;
  {
    std::lock_guard lock(mutex);
    if (shutting_down) {
      throw RunError(RunError::Code::shutting_down, "the host is shutting down; start refused");
    }
    if (slots_used < options.max_concurrent) {
      ++slots_used;
      slot_reserved = true;
    } else if (queue_used < options.max_queued) {
      ++queue_used;
    } else {
      throw RunError(RunError::Code::at_capacity,
                     "every worker slot is busy and the queue is full (" +
                         std::to_string(options.max_concurrent) + " running, " +
                         std::to_string(options.max_queued) + " queued); try again later");
    }
    runs.emplace(run->instance_id, run);
  }

  // The run is durable before anyone hears of it. Its mutex is held across
  // the commit so that a concurrent stop() sees it only once it exists.
  Run committed;
  try {
    std::lock_guard run_lock(run->mutex);
    writer->submit_and_wait(UpsertRun{run->record});
    committed = run->record;
  } catch (...) {
    std::lock_guard lock(mutex);
    runs.erase(run->instance_id);
    (slot_reserved ? slots_used : queue_used) -= 1;
    changed.notify_all();
    throw;
  }
  starts.fetch_add(1, std::memory_order_relaxed);
  admit_after_commit(run, slot_reserved);
  return committed;
}

void RunManager::Impl::admit_after_commit(const LivePtr& run, bool slot_reserved) {
  std::vector<LivePtr> to_launch;
  {
    std::lock_guard run_lock(run->mutex);
    std::lock_guard lock(mutex);
    const bool still_queued = run->record.status == RunStatus::queued;
    if (slot_reserved) {
      if (still_queued) {
        run->launched = true;
        to_launch.push_back(run);
      } else {
        --slots_used;  // stopped while being committed
        changed.notify_all();
      }
    } else if (still_queued) {
      queue.push_back(run);
    } else {
      --queue_used;
    }
    auto more = take_launchable_locked();
    to_launch.insert(to_launch.end(), more.begin(), more.end());
  }
  launch_all(std::move(to_launch));
}

// Moves runs from the queue front into free slots. Called with `mutex` held.
std::vector<RunManager::Impl::LivePtr> RunManager::Impl::take_launchable_locked() {
  std::vector<LivePtr> out;
  if (shutting_down) return out;
  while (!queue.empty() && slots_used < options.max_concurrent) {
    LivePtr next = std::move(queue.front());
    queue.pop_front();
    --queue_used;
    ++slots_used;
    next->launched = true;
    out.push_back(std::move(next));
  }
  return out;
}

// Starts a worker for each run; a run whose thread cannot be made fails, and
// its slot goes to the next queued run (a loop, not recursion: the queue may
// be long).
void RunManager::Impl::launch_all(std::vector<LivePtr> runs_to_launch) {
  for (std::size_t i = 0; i < runs_to_launch.size(); ++i) {
    const LivePtr run = runs_to_launch[i];
    const int rc = launch(run);
    if (rc == 0) continue;
    const std::string error = std::string("could not start a worker thread: ") + std::strerror(rc);
    spdlog::error("run {}: {}", run->instance_id, error);
    {
      std::lock_guard run_lock(run->mutex);
      run->agent_returned = true;
      if (run->record.status == RunStatus::queued) finish_locked(*run, RunStatus::failed, error);
    }
    std::lock_guard lock(mutex);
    --slots_used;
    auto more = take_launchable_locked();
    runs_to_launch.insert(runs_to_launch.end(), more.begin(), more.end());
    changed.notify_all();
  }
}

// Returns pthread_create's answer (0 when the thread runs).
int RunManager::Impl::launch(const LivePtr& run) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  const auto min_stack = static_cast<std::size_t>(PTHREAD_STACK_MIN);
  pthread_attr_setstacksize(&attr, std::max(options.worker_stack_bytes, min_stack));
  auto* arg = new LivePtr(run);
  pthread_t thread{};
  const int rc = pthread_create(&thread, &attr, &worker_entry, arg);
  pthread_attr_destroy(&attr);
  if (rc != 0) delete arg;
  return rc;
}

// A worker's slot is free: hand it to the next queued run. The last thing a
// worker thread does with the manager.
void RunManager::Impl::release_slot() {
  std::vector<LivePtr> to_launch;
  {
    std::lock_guard lock(mutex);
    --slots_used;
    to_launch = take_launchable_locked();
    changed.notify_all();
  }
  launch_all(std::move(to_launch));
}

// ---------------------------------------------------------------------------
// The worker thread

void* RunManager::Impl::worker_entry(void* arg) noexcept {
  LivePtr run;
  {
    std::unique_ptr<LivePtr> holder(static_cast<LivePtr*>(arg));
    run = std::move(*holder);
  }
  pthread_setname_np(pthread_self(), "ns-run");
  run_worker(run);
  return nullptr;
}

void RunManager::Impl::run_worker(const LivePtr& run) {
  Impl& impl = *run->owner;  // valid: the run is not abandoned before its agent is called
  std::int32_t rc = NIGHTSHIFT_RUN_OK;
  std::optional<std::string> crash;
  bool agent_called = false;
  try {
    if (impl.begin_run(*run)) {
      agent_called = true;
      rc = call_agent(*run, crash);
    }
  } catch (const std::exception& e) {
    crash = std::string("the host failed to start the run: ") + e.what();
    rc = NIGHTSHIFT_RUN_FAILED;
  }
  if (!agent_called && !crash) {
    // Stopped before it began: the record is already final.
    std::lock_guard run_lock(run->mutex);
    run->agent_returned = true;
  } else if (!end_run(*run, rc, std::move(crash))) {
    return;  // abandoned by shutdown: the manager may be gone
  }
  {
    std::lock_guard timer_lock(impl.timer_mutex);
    impl.finished_threads.push_back(pthread_self());
    if (impl.finished_threads.size() == 1) impl.timer_cv.notify_one();
  }
  impl.release_slot();
}

// queued -> running, committed. False when the run was stopped meanwhile.
bool RunManager::Impl::begin_run(LiveRun& run) {
  std::lock_guard run_lock(run.mutex);
  run.thread = pthread_self();
  if (run.record.status != RunStatus::queued) return false;
  run.record.status = RunStatus::running;
  run.record.started_at = now_ms();
  submit_record_locked(run);
  if (run.timeout) {
    schedule_deadline(SteadyClock::now() + *run.timeout, DeadlineKind::timeout,
                      run.shared_from_this());
  }
  return true;
}

std::int32_t RunManager::Impl::call_agent(LiveRun& run, std::optional<std::string>& crash) {
  try {
    return run.plugin->entry().run(&run.c_run);
  } catch (const std::exception& e) {
    crash = e.what();
  } catch (...) {
    crash = "the agent threw an exception that is not a std::exception";
  }
  return NIGHTSHIFT_RUN_FAILED;
}

// The agent returned: the final record, committed after the run's last log
// entries. False when shutdown abandoned the run (touch nothing of the manager).
bool RunManager::Impl::end_run(LiveRun& run, std::int32_t rc, std::optional<std::string> crash) {
  std::lock_guard run_lock(run.mutex);
  run.agent_returned = true;
  if (run.abandoned) return false;
  Impl& impl = *run.owner;
  if (is_terminal(run.record.status)) return true;
  impl.append_dropped_entry_locked(run);
  if (run.timed_out) {
    impl.finish_locked(run, RunStatus::failed,
                       "timed out after " + format_seconds(*run.timeout) + " s");
  } else if (crash) {
    impl.finish_locked(run, RunStatus::failed, crash->empty() ? kGenericFailure : *crash);
  } else if (rc != NIGHTSHIFT_RUN_OK) {
    std::string error = run.agent_error.value_or("");
    impl.finish_locked(run, RunStatus::failed, error.empty() ? kGenericFailure : error);
  } else if (run.stop.stop_requested()) {
    impl.finish_locked(run, RunStatus::cancelled, std::nullopt);
  } else {
    impl.finish_locked(run, RunStatus::completed, std::nullopt);
  }
  return true;
}

// ---------------------------------------------------------------------------
// Writes, with the run's mutex held (so a run's ops reach the writer in order)

void RunManager::Impl::submit_logs_locked(LiveRun& run) {
  if (run.pending_logs.empty()) return;
  AppendLogs op{run.instance_id, std::move(run.pending_logs)};
  run.pending_logs.clear();
  writer->submit(std::move(op));
}

// Every record change goes after the entries logged before it, so the store
// never shows a log_count ahead of the entries it holds.
void RunManager::Impl::submit_record_locked(LiveRun& run) {
  submit_logs_locked(run);
  run.progress_held = false;
  writer->submit(UpsertRun{run.record});
}

void RunManager::Impl::finish_locked(LiveRun& run, RunStatus status,
                                     std::optional<std::string> error) {
  run.record.status = status;
  run.record.ended_at = now_ms();
  run.record.error = std::move(error);
  submit_record_locked(run);
}

// The one entry the host adds to a run's log: how much the cap dropped.
void RunManager::Impl::append_dropped_entry_locked(LiveRun& run) {
  if (run.capped_entries == 0 && run.full_entries == 0) return;
  std::string message;
  if (run.capped_entries > 0) {
    message = "log cap reached (" + std::to_string(options.log_max_entries) + " entries, " +
              std::to_string(options.log_max_bytes) + " bytes): dropped " +
              std::to_string(run.capped_entries) + " entries (" + std::to_string(run.capped_bytes) +
              " bytes)";
  }
  if (run.full_entries > 0) {
    if (!message.empty()) message += "; ";
    message += "the host's log buffer was full: dropped " + std::to_string(run.full_entries) +
               " entries (" + std::to_string(run.full_bytes) + " bytes)";
  }
  LogEntry entry{run.record.log_count + 1, now_ms(), LogLevel::warn, std::move(message)};
  // Past the cap by design: it is the one entry that says what is missing.
  buffered_log_bytes.fetch_add(buffer_cost(entry), std::memory_order_relaxed);
  run.record.log_count = entry.seq;
  run.pending_logs.push_back(std::move(entry));
}

void RunManager::Impl::schedule_sweep_locked(LiveRun& run) {
  if (run.sweep_scheduled) return;
  run.sweep_scheduled = true;
  std::lock_guard timer_lock(timer_mutex);
  sweep_list.push_back(run.shared_from_this());
  if (sweep_list.size() == 1) timer_cv.notify_one();
}

void RunManager::Impl::schedule_deadline(SteadyClock::time_point when, DeadlineKind kind,
                                         const LivePtr& run) {
  std::lock_guard timer_lock(timer_mutex);
  const bool earliest = deadlines.empty() || when < deadlines.begin()->first;
  deadlines.emplace(when, Deadline{kind, run});
  if (earliest) timer_cv.notify_one();
}

bool RunManager::Impl::reserve_log_buffer(std::size_t bytes) {
  const std::size_t before = buffered_log_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (before + bytes <= options.log_buffer_bytes) return true;
  buffered_log_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  return false;
}

// ---------------------------------------------------------------------------
// Agent callbacks

void RunManager::Impl::on_log(const nightshift_run* c_run, std::int32_t level, const char* message,
                              std::size_t size) {
  auto& run = *static_cast<LiveRun*>(c_run->host_data);
  if (message == nullptr) size = 0;
  try {
    std::lock_guard run_lock(run.mutex);
    if (run.abandoned || is_terminal(run.record.status)) return;
    Impl& impl = *run.owner;
    const RunManagerOptions& opt = impl.options;
    if (run.record.log_count >= opt.log_max_entries ||
        run.accepted_bytes + size > opt.log_max_bytes) {
      ++run.capped_entries;
      run.capped_bytes += size;
      impl.log_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!impl.reserve_log_buffer(size + kLogEntryOverhead)) {
      ++run.full_entries;
      run.full_bytes += size;
      impl.log_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    run.pending_logs.push_back(LogEntry{run.record.log_count + 1, now_ms(), level_from_abi(level),
                                        std::string(message, size)});
    run.record.log_count += 1;
    run.accepted_bytes += size;
    if (run.pending_logs.size() >= kLogBatchEntries) {
      impl.submit_logs_locked(run);
    } else {
      impl.schedule_sweep_locked(run);
    }
  } catch (...) {
    // Out of memory: the entry is lost, the agent carries on.
  }
}

void RunManager::Impl::on_progress(const nightshift_run* c_run, double fraction) {
  if (std::isnan(fraction)) return;
  fraction = std::clamp(fraction, 0.0, 1.0);
  auto& run = *static_cast<LiveRun*>(c_run->host_data);
  try {
    std::lock_guard run_lock(run.mutex);
    if (run.abandoned || is_terminal(run.record.status)) return;
    run.record.progress = fraction;
    if (run.throttle.admit(SteadyClock::now())) {
      run.owner->submit_record_locked(run);
    } else {
      run.progress_held = true;
      run.owner->schedule_sweep_locked(run);
    }
  } catch (...) {
    // A progress update is advisory; the next one carries the value.
  }
}

bool RunManager::Impl::on_cancelled(const nightshift_run* c_run) {
  return static_cast<LiveRun*>(c_run->host_data)->stop.stop_requested();
}

bool RunManager::Impl::on_sleep_for(const nightshift_run* c_run, std::uint64_t milliseconds) {
  auto& run = *static_cast<LiveRun*>(c_run->host_data);
  std::stop_token token = run.stop.get_token();
  if (milliseconds == 0) return !token.stop_requested();
  // A year is "forever" here and keeps the arithmetic far from overflow.
  constexpr std::uint64_t kLongest = 365ull * 24 * 3600 * 1000;
  const auto duration = std::chrono::milliseconds(std::min(milliseconds, kLongest));
  try {
    std::unique_lock lock(run.sleep_mutex);
    const bool stopped =
        run.sleep_cv.wait_for(lock, token, duration, [&] { return token.stop_requested(); });
    return !stopped;
  } catch (...) {
    return !token.stop_requested();
  }
}

bool RunManager::Impl::on_set_result_json(const nightshift_run* c_run, const char* json,
                                          std::size_t size) {
  auto& run = *static_cast<LiveRun*>(c_run->host_data);
  try {
    boost::system::error_code ec;
    boost::json::value value =
        boost::json::parse(std::string_view(json == nullptr ? "" : json, json ? size : 0), ec);
    if (ec) return false;
    std::lock_guard run_lock(run.mutex);
    run.record.result = std::move(value);
    return true;
  } catch (...) {
    return false;
  }
}

void RunManager::Impl::on_set_error(const nightshift_run* c_run, const char* message,
                                    std::size_t size) {
  auto& run = *static_cast<LiveRun*>(c_run->host_data);
  try {
    std::lock_guard run_lock(run.mutex);
    run.agent_error = std::string(message == nullptr ? "" : message, message ? size : 0);
  } catch (...) {
    // Out of memory: the run fails with the generic message instead.
  }
}

// ---------------------------------------------------------------------------
// stop, remove, reads

RunManager::Impl::LivePtr RunManager::Impl::find_live(const std::string& instance_id) const {
  std::lock_guard lock(mutex);
  auto it = runs.find(instance_id);
  return it == runs.end() ? nullptr : it->second;
}

std::vector<RunManager::Impl::LivePtr> RunManager::Impl::live_snapshot() const {
  std::lock_guard lock(mutex);
  std::vector<LivePtr> out;
  out.reserve(runs.size());
  for (const auto& [id, run] : runs) out.push_back(run);
  return out;
}

Run RunManager::Impl::stop(const std::string& instance_id) {
  LivePtr run = find_live(instance_id);
  if (!run) {
    if (store.get_run(instance_id)) {
      throw RunError(RunError::Code::run_not_active, "run " + instance_id + " has already ended");
    }
    throw RunError(RunError::Code::run_not_found, "no run " + instance_id);
  }
  std::lock_guard run_lock(run->mutex);
  if (is_terminal(run->record.status)) {
    throw RunError(RunError::Code::run_not_active, "run " + instance_id + " has already ended");
  }
  return stop_locked_run(*run, true);
}

// Asks a run to stop; with the run's mutex held. Returns the run as it is now.
Run RunManager::Impl::stop_locked_run(LiveRun& run, bool count_as_stop) {
  const RunStatus status = run.record.status;
  if (status == RunStatus::queued) {
    {
      std::lock_guard lock(mutex);
      if (!run.launched) {
        auto it = std::find_if(queue.begin(), queue.end(),
                               [&](const LivePtr& queued) { return queued.get() == &run; });
        if (it != queue.end()) {
          queue.erase(it);
          --queue_used;
        }
      }
    }
    run.stop.request_stop();
    finish_locked(run, RunStatus::cancelled, std::nullopt);
  } else if (status == RunStatus::running) {
    run.stop.request_stop();
    run.record.status = RunStatus::stopping;
    submit_record_locked(run);
    schedule_deadline(SteadyClock::now() + options.stop_grace, DeadlineKind::stop_grace,
                      run.shared_from_this());
  } else {
    return run.record;  // already stopping
  }
  if (count_as_stop) stops.fetch_add(1, std::memory_order_relaxed);
  return run.record;
}

void RunManager::Impl::remove(const std::string& instance_id) {
  std::optional<Run> record;
  if (LivePtr run = find_live(instance_id)) {
    std::lock_guard run_lock(run->mutex);
    if (is_active(run->record.status)) {
      throw RunError(RunError::Code::run_active,
                     "run " + instance_id + " is still active; stop it first");
    }
    record = run->record;
  } else {
    record = store.get_run(instance_id);
    if (!record) throw RunError(RunError::Code::run_not_found, "no run " + instance_id);
    if (is_active(record->status)) {
      throw RunError(RunError::Code::run_active,
                     "run " + instance_id + " is still active; stop it first");
    }
  }
  {
    std::lock_guard lock(deleted_mutex);
    deleted_records[instance_id] = *record;
  }
  writer->submit_and_wait(DeleteRun{instance_id});
}

std::optional<Run> RunManager::Impl::get(const std::string& instance_id) const {
  if (LivePtr run = find_live(instance_id)) {
    std::lock_guard run_lock(run->mutex);
    return run->record;
  }
  return store.get_run(instance_id);
}

std::vector<Run> RunManager::Impl::active(const std::optional<std::string>& agent_id) const {
  std::vector<Run> out;
  for (const LivePtr& run : live_snapshot()) {
    if (agent_id && run->record.agent_id != *agent_id) continue;  // agent_id is immutable
    std::lock_guard run_lock(run->mutex);
    if (is_active(run->record.status)) out.push_back(run->record);
  }
  std::sort(out.begin(), out.end(), [](const Run& a, const Run& b) {
    if (a.created_at != b.created_at) return a.created_at > b.created_at;
    return a.instance_id > b.instance_id;
  });
  return out;
}

LogPage RunManager::Impl::logs(const std::string& instance_id, std::uint64_t after,
                               std::size_t limit) const {
  // The committed record first: once it is terminal, every entry is committed.
  const std::optional<Run> committed = store.get_run(instance_id);
  if (!committed && !find_live(instance_id)) {
    throw RunError(RunError::Code::run_not_found, "no run " + instance_id);
  }
  LogPage page;
  page.entries = store.read_logs(instance_id, after, limit);
  page.next_after = page.entries.empty() ? after : page.entries.back().seq;
  page.complete = committed && is_terminal(committed->status) &&
                  store.read_logs(instance_id, page.next_after, 1).empty();
  return page;
}

RunManagerStats RunManager::Impl::stats() const {
  RunManagerStats s;
  for (const LivePtr& run : live_snapshot()) {
    std::lock_guard run_lock(run->mutex);
    switch (run->record.status) {
      case RunStatus::queued:
        ++s.queued;
        break;
      case RunStatus::running:
        ++s.running;
        break;
      case RunStatus::stopping:
        ++s.stopping;
        break;
      default:
        break;
    }
  }
  s.starts = starts.load();
  s.stops = stops.load();
  s.completed = completed.load();
  s.failed = failed.load();
  s.cancelled = cancelled.load();
  s.log_entries_written = log_written.load();
  s.log_entries_dropped = log_dropped.load();
  return s;
}

std::optional<Run> RunManager::Impl::wait(const std::string& instance_id,
                                          std::chrono::milliseconds timeout) const {
  {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, timeout, [&] { return runs.find(instance_id) == runs.end(); });
  }
  return get(instance_id);
}

// ---------------------------------------------------------------------------
// shutdown

void RunManager::Impl::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex);
    if (shutting_down) return;
    shutting_down = true;
  }
  spdlog::info("shutting down the run manager: stopping every active run");
  for (const LivePtr& run : live_snapshot()) {
    std::lock_guard run_lock(run->mutex);
    if (is_active(run->record.status)) stop_locked_run(*run, false);
  }
  {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, grace, [&] { return slots_used == 0; });
  }

  // What has not ended is recorded as interrupted; its thread is let go.
  std::size_t abandoned = 0;
  for (const LivePtr& run : live_snapshot()) {
    std::lock_guard run_lock(run->mutex);
    const RunStatus status = run->record.status;
    if ((status != RunStatus::running && status != RunStatus::stopping) || run->agent_returned) {
      continue;
    }
    finish_locked(*run, RunStatus::failed, kShutdownError);
    run->abandoned = true;
    if (run->thread) pthread_detach(*run->thread);
    ++abandoned;
    spdlog::warn("run {} did not stop within the shutdown grace period; its thread is detached",
                 run->instance_id);
  }
  {
    std::unique_lock lock(mutex);
    slots_used -= abandoned;
    if (!changed.wait_for(lock, kEpilogueWait, [&] { return slots_used == 0; })) {
      spdlog::error("{} worker thread(s) did not finish after their agent returned", slots_used);
    }
  }
  {
    std::lock_guard timer_lock(timer_mutex);
    timer_stop = true;
    timer_cv.notify_all();
  }
  if (timer_thread.joinable()) timer_thread.join();
  std::vector<pthread_t> threads;
  {
    std::lock_guard timer_lock(timer_mutex);
    threads.swap(finished_threads);
  }
  join_threads(threads);
  writer->flush();
  std::lock_guard lock(mutex);
  shut_down = true;
}

// ---------------------------------------------------------------------------
// The writer thread: events for what is now durable

void RunManager::Impl::on_committed(const std::vector<WriteOp>& ops) {
  const bool publish = bus.subscriber_count() > 0;
  for (const WriteOp& op : ops) {
    if (const auto* upsert = std::get_if<UpsertRun>(&op)) {
      const Run& run = upsert->run;
      RunEventKind kind = RunEventKind::updated;
      if (is_terminal(run.status)) {
        kind = RunEventKind::finished;
        published_active.erase(run.instance_id);
      } else if (published_active.insert(run.instance_id).second) {
        kind = RunEventKind::started;
      }
      if (publish) bus.publish(std::make_shared<const Event>(RunEvent{kind, run}));
      if (kind == RunEventKind::finished) retire(run);
    } else if (const auto* logs = std::get_if<AppendLogs>(&op)) {
      std::size_t bytes = 0;
      for (const LogEntry& entry : logs->entries) bytes += buffer_cost(entry);
      buffered_log_bytes.fetch_sub(bytes, std::memory_order_relaxed);
      log_written.fetch_add(logs->entries.size(), std::memory_order_relaxed);
      if (publish && !logs->entries.empty()) {
        bus.publish(std::make_shared<const Event>(LogEvent{logs->instance_id, logs->entries}));
      }
    } else if (const auto* deletion = std::get_if<DeleteRun>(&op)) {
      std::optional<Run> record;
      {
        std::lock_guard lock(deleted_mutex);
        auto it = deleted_records.find(deletion->instance_id);
        if (it != deleted_records.end()) {
          record = std::move(it->second);
          deleted_records.erase(it);
        }
      }
      if (publish && record) {
        bus.publish(std::make_shared<const Event>(RunEvent{RunEventKind::deleted, *record}));
      }
    }
    // PruneRuns: history the clients already saw as finished; nothing to say.
  }
}

// A run's final record is durable: it leaves the live table.
void RunManager::Impl::retire(const Run& final_record) {
  switch (final_record.status) {
    case RunStatus::completed:
      completed.fetch_add(1, std::memory_order_relaxed);
      break;
    case RunStatus::failed:
      failed.fetch_add(1, std::memory_order_relaxed);
      break;
    case RunStatus::cancelled:
      cancelled.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      break;
  }
  std::lock_guard lock(mutex);
  runs.erase(final_record.instance_id);
  changed.notify_all();
}

// ---------------------------------------------------------------------------
// The watchdog thread: every deadline, the log and progress sweep, thread
// joins and retention pruning, so no run needs a timer of its own.

void RunManager::Impl::timer_main() {
  auto next_prune = SteadyClock::now() + options.prune_interval;
  // Set while runs wait in sweep_list: when they are swept, however often
  // the thread wakes for other reasons meanwhile.
  constexpr auto kNoSweep = SteadyClock::time_point::max();
  auto next_sweep = kNoSweep;
  std::unique_lock lock(timer_mutex);
  while (!timer_stop) {
    if (!sweep_list.empty() && next_sweep == kNoSweep) {
      next_sweep = SteadyClock::now() + kSweepInterval;
    }
    auto wake = next_prune;
    if (!deadlines.empty()) wake = std::min(wake, deadlines.begin()->first);
    wake = std::min(wake, next_sweep);
    timer_cv.wait_until(lock, wake, [&] {
      return timer_stop || !finished_threads.empty() ||
             (!deadlines.empty() && deadlines.begin()->first < wake) ||
             (next_sweep == kNoSweep && !sweep_list.empty());
    });
    if (timer_stop) break;

    const auto now = SteadyClock::now();
    std::vector<Deadline> due;
    while (!deadlines.empty() && deadlines.begin()->first <= now) {
      due.push_back(std::move(deadlines.begin()->second));
      deadlines.erase(deadlines.begin());
    }
    std::vector<pthread_t> threads;
    threads.swap(finished_threads);
    std::vector<LivePtr> to_sweep;
    if (now >= next_sweep) {
      to_sweep.swap(sweep_list);
      next_sweep = kNoSweep;
    }
    const bool prune_now = now >= next_prune;
    if (prune_now) next_prune = now + options.prune_interval;

    lock.unlock();
    try {
      join_threads(threads);
      for (const Deadline& d : due) fire(d);
      for (const LivePtr& run : to_sweep) sweep(*run);
      if (prune_now) writer->submit(PruneRuns{options.retention, now_ms()});
    } catch (const std::exception& e) {
      spdlog::error("run manager watchdog: {}", e.what());
    }
    lock.lock();
  }
}

void RunManager::Impl::join_threads(std::vector<pthread_t>& threads) {
  for (pthread_t thread : threads) pthread_join(thread, nullptr);
  threads.clear();
}

void RunManager::Impl::fire(const Deadline& deadline) {
  LivePtr run = deadline.run.lock();
  if (!run) return;
  std::lock_guard run_lock(run->mutex);
  if (run->abandoned || run->agent_returned) return;
  if (deadline.kind == DeadlineKind::timeout) {
    if (run->record.status != RunStatus::running) return;  // already stopping
    run->timed_out = true;
    stop_locked_run(*run, false);
  } else if (run->record.status == RunStatus::stopping) {
    run->record.error = "did not stop within " + format_seconds(options.stop_grace) +
                        " s of the stop request; its thread is still running";
    submit_record_locked(*run);
  }
}

void RunManager::Impl::sweep(LiveRun& run) {
  std::lock_guard run_lock(run.mutex);
  run.sweep_scheduled = false;
  if (run.abandoned || is_terminal(run.record.status)) return;
  if (run.progress_held) {
    if (run.throttle.admit(SteadyClock::now())) {
      submit_record_locked(run);  // carries the held-back progress and the entries before it
      return;
    }
    schedule_sweep_locked(run);  // try again on the next sweep
  }
  submit_logs_locked(run);
}

// ---------------------------------------------------------------------------
// RunManager: the public face

RunManager::RunManager(Catalog& catalog, RunStore& store, EventBus& bus, RunManagerOptions options)
    : impl_(std::make_unique<Impl>(catalog, store, bus, std::move(options))) {}

RunManager::~RunManager() {
  try {
    impl_->shutdown(impl_->options.stop_grace);
  } catch (const std::exception& e) {
    spdlog::error("run manager shutdown failed: {}", e.what());
  }
}

Run RunManager::start(const StartRequest& request) {
  return impl_->start(request);
}
Run RunManager::stop(const std::string& instance_id) {
  return impl_->stop(instance_id);
}
void RunManager::remove(const std::string& instance_id) {
  impl_->remove(instance_id);
}
std::optional<Run> RunManager::get(const std::string& instance_id) const {
  return impl_->get(instance_id);
}
std::vector<Run> RunManager::active(const std::optional<std::string>& agent_id) const {
  return impl_->active(agent_id);
}
HistoryPage RunManager::history(const HistoryQuery& query) const {
  return impl_->store.list_history(query);
}
LogPage RunManager::logs(const std::string& instance_id, std::uint64_t after,
                         std::size_t limit) const {
  return impl_->logs(instance_id, after, limit);
}
RunManagerStats RunManager::stats() const {
  return impl_->stats();
}
void RunManager::shutdown(std::chrono::milliseconds grace) {
  impl_->shutdown(grace);
}
std::optional<Run> RunManager::wait(const std::string& instance_id,
                                    std::chrono::milliseconds timeout) const {
  return impl_->wait(instance_id, timeout);
}

}  // namespace nightshift
