#include "runs/run_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "runs/admission.hpp"
#include "runs/commit_events.hpp"
#include "runs/live_run.hpp"
#include "runs/watchdog.hpp"
#include "runs/worker_thread.hpp"
#include "store/run_store.hpp"
#include "store/store_writer.hpp"

namespace nightshift {

namespace {

using SteadyClock = std::chrono::steady_clock;

// How long log entries and held-back progress may wait to be batched.
constexpr std::chrono::milliseconds kSweepDelay{10};

const char* const kRecoveryError = "interrupted: the host stopped while this run was active";
const char* const kShutdownError = "interrupted: the host shut down before this run stopped";
const char* const kGenericFailure = "the agent failed without saying why";

// "10", "0.25", "1.5": seconds as people write them.
std::string format_seconds(std::chrono::milliseconds ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ms.count()) / 1000.0);
  std::string text(buf);
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

RunError not_found(const std::string& id) {
  return RunError(RunError::Code::run_not_found, "no run has the id '" + id + "'");
}

RunError already_ended(const std::string& id) {
  return RunError(RunError::Code::run_not_active, "run " + id + " has already ended");
}

}  // namespace

struct RunManager::Impl {
  Impl(Catalog& catalog_in, RunStore& store_in, EventBus& bus_in, RunManagerOptions options_in);

  // ---- shared references and options (immutable) ----
  Catalog& catalog;
  RunStore& store;
  const RunManagerOptions options;

  // ---- counters, any thread ----
  std::atomic<std::uint64_t> starts{0}, stops{0}, completed{0}, failed{0}, cancelled{0};
  LogBudget budget;

  // ---- guarded by `mutex` ----
  mutable std::mutex mutex;
  mutable std::condition_variable changed;        // a run committed, retired, or a worker left
  std::unordered_map<std::string, LivePtr> runs;  // every run whose final record is not committed
  Admission admission;
  // Runs handed to a worker (launched or about to be) whose thread may still
  // touch the manager; shutdown waits for it to reach 0.
  std::size_t workers = 0;
  bool shut_down = false;

  CommitEvents events;
  // Destroyed before `events` and the tables: their last tasks and commits
  // still find everything above.
  std::unique_ptr<StoreWriter> writer;
  std::unique_ptr<Watchdog> watchdog;
  std::unique_ptr<RunServices> services;

  // ---- operations ----
  void start(StartRequest request, StartCallback done);
  Run stop(const std::string& instance_id);
  void remove(const std::string& instance_id);
  std::uint64_t send_message(const std::string& instance_id, std::string text);
  std::optional<Run> get(const std::string& instance_id) const;
  std::vector<Run> active(const std::optional<std::string>& agent_id) const;
  LogPage logs(const std::string& instance_id, std::uint64_t after, std::size_t limit) const;
  RunManagerStats stats() const;
  void shutdown(std::chrono::milliseconds grace);
  std::optional<Run> wait(const std::string& instance_id, std::chrono::milliseconds timeout) const;

  // ---- internals ----
  LivePtr make_live_run(const StartRequest& request, ResolvedAgent resolved);
  // The live run, once its first record is committed (waits for that).
  LivePtr find_committed(const std::string& instance_id) const;
  std::vector<LivePtr> live_snapshot() const;
  void on_start_committed(const LivePtr& run, Admission::Place place, const std::string& error,
                          const StartCallback& done);
  std::vector<LivePtr> take_launchable_locked();
  void launch_all(std::vector<LivePtr> runs_to_launch);
  Run stop_locked_run(LiveRun& run, bool count_as_stop);
  void schedule_deadline(std::chrono::milliseconds after, bool is_timeout, const LivePtr& run);
  void fire(bool is_timeout, const LivePtr& run);
  void retire(const Run& final_record);
  void show_committed(const Run& record);

  // The worker thread's body and its steps.
  void run_worker(const LivePtr& run) noexcept;
  bool begin_run(LiveRun& run);
  static std::int32_t call_agent(LiveRun& run, std::optional<std::string>& crash);
  static bool end_run(LiveRun& run, std::int32_t rc, std::optional<std::string> crash);
  void worker_done(const LivePtr& run);
};

// ---------------------------------------------------------------------------
// Construction and start-up recovery

RunManager::Impl::Impl(Catalog& catalog_in, RunStore& store_in, EventBus& bus_in,
                       RunManagerOptions options_in)
    : catalog(catalog_in),
      store(store_in),
      options(std::move(options_in)),
      budget(options.log_buffer_bytes),
      admission(options.max_concurrent, options.max_queued),
      events(
          bus_in, budget, [this](const Run& run) { show_committed(run); },
          [this](const Run& run) { retire(run); }) {
  // Before anything else: a run the store still calls active belonged to a
  // host that is gone.
  const std::size_t interrupted = store.mark_interrupted(now_ms(), kRecoveryError);
  if (interrupted > 0) {
    spdlog::warn("marked {} run(s) left active by the previous host as failed (interrupted)",
                 interrupted);
  }
  writer = std::make_unique<StoreWriter>(
      store, [this](const std::vector<WriteOp>& ops) { events.on_committed(ops); });
  writer->submit(PruneRuns{options.retention, now_ms()});
  watchdog = std::make_unique<Watchdog>(kSweepDelay, options.prune_interval, [this] {
    writer->submit(PruneRuns{options.retention, now_ms()});
  });
  services = std::make_unique<RunServices>(RunServices{options, *writer, *watchdog, budget});
}

// ---------------------------------------------------------------------------
// start

LivePtr RunManager::Impl::make_live_run(const StartRequest& request, ResolvedAgent resolved) {
  auto run = std::make_shared<LiveRun>();
  run->services = services.get();
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
  r.accepts_messages = resolved.info.accepts_messages;
  r.attempt = request.attempt;
  r.retry_of = request.retry_of;
  r.rerun_of = request.rerun_of;
  r.schedule_id = request.schedule_id;
  run->max_concurrent = resolved.limits.automation.max_concurrent;

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
  run->bind_abi();
  return run;
}

void RunManager::Impl::start(StartRequest request, StartCallback done) {
  LivePtr run;
  Admission::Place place{};
  try {
    if (!writer->healthy()) {
      throw RunError(RunError::Code::store_failed, "the store cannot record new runs right now (" +
                                                       writer->last_error() +
                                                       "); try again once it has recovered");
    }
    run = make_live_run(request, catalog.resolve(request.agent_id, request.params));
    std::lock_guard lock(mutex);
    const auto reserved =
        admission.reserve({run->instance_id, run->record.agent_id, run->max_concurrent});
    if (!reserved) {
      if (admission.closed()) {
        throw RunError(RunError::Code::shutting_down, "the host is shutting down; start refused");
      }
      throw RunError(RunError::Code::at_capacity,
                     "every worker slot is busy and the queue is full (" +
                         std::to_string(options.max_concurrent) + " running, " +
                         std::to_string(options.max_queued) + " queued); try again later");
    }
    place = *reserved;
    runs.emplace(run->instance_id, run);
  } catch (...) {
    done(StartOutcome{std::nullopt, std::current_exception()});
    return;
  }
  // The run is durable before anyone hears of it; until then it is hidden
  // (`committed` is false) and nothing else changes its record.
  writer->submit(UpsertRun{run->record},
                 [this, run, place, done = std::move(done)](const std::string& error) {
                   on_start_committed(run, place, error, done);
                 });
}

// On the writer thread, after the record's commit (and its `started` event).
void RunManager::Impl::on_start_committed(const LivePtr& run, Admission::Place place,
                                          const std::string& error, const StartCallback& done) {
  if (!error.empty()) {
    {
      std::lock_guard lock(mutex);
      runs.erase(run->instance_id);
      admission.cancel(place, run->instance_id);
      changed.notify_all();
    }
    done(StartOutcome{std::nullopt,
                      std::make_exception_ptr(RunError(
                          RunError::Code::store_failed,
                          "the run could not be recorded, so it was not started: " + error))});
    return;
  }
  starts.fetch_add(1, std::memory_order_relaxed);
  Run committed;
  std::vector<LivePtr> to_launch;
  {
    std::lock_guard run_lock(run->mutex);
    std::lock_guard lock(mutex);
    run->committed = true;
    committed = run->record;
    run->shown = committed;
    if (place == Admission::Place::slot) {
      ++workers;
      to_launch.push_back(run);
    } else {
      admission.enqueue(run->instance_id);
    }
    auto more = take_launchable_locked();
    to_launch.insert(to_launch.end(), more.begin(), more.end());
    changed.notify_all();
  }
  // Thread creation is not the writer's job: it commits the next batch meanwhile.
  if (!to_launch.empty()) {
    watchdog->post(
        [this, to_launch = std::move(to_launch)]() mutable { launch_all(std::move(to_launch)); });
  }
  done(StartOutcome{std::move(committed), nullptr});
}

// Runs that Admission moved from the queue into slots, counted as workers.
// With `mutex` held.
std::vector<LivePtr> RunManager::Impl::take_launchable_locked() {
  std::vector<LivePtr> out;
  for (const std::string& id : admission.take_launchable()) {
    auto it = runs.find(id);
    if (it != runs.end()) {
      ++workers;
      out.push_back(it->second);
    } else {
      admission.release_slot(id);  // cannot happen: a queued run leaves the queue first
    }
  }
  return out;
}

// Starts a worker for each run; a run whose thread cannot be made fails, and
// its slot goes to the next queued run (a loop, not recursion: the queue may
// be long).
void RunManager::Impl::launch_all(std::vector<LivePtr> runs_to_launch) {
  for (std::size_t i = 0; i < runs_to_launch.size(); ++i) {
    const LivePtr run = runs_to_launch[i];
    try {
      // The run's mutex is held until the handle is stored: the worker's
      // first step takes it, so it never runs without its handle in place.
      std::lock_guard run_lock(run->mutex);
      run->thread = WorkerThread::start(options.worker_stack_bytes, "ns-run",
                                        [this, run]() noexcept { run_worker(run); });
      continue;
    } catch (const std::exception& e) {
      const std::string error = std::string("could not start a worker thread: ") + e.what();
      spdlog::error("run {}: {}", run->instance_id, error);
      std::lock_guard run_lock(run->mutex);
      run->agent_returned = true;
      if (run->record.status == RunStatus::queued) run->finish_locked(RunStatus::failed, error);
    }
    std::lock_guard lock(mutex);
    --workers;
    admission.release_slot(run->instance_id);
    auto more = take_launchable_locked();
    runs_to_launch.insert(runs_to_launch.end(), more.begin(), more.end());
    changed.notify_all();
  }
}

// ---------------------------------------------------------------------------
// The worker thread

void RunManager::Impl::run_worker(const LivePtr& run) noexcept {
  std::int32_t rc = NIGHTSHIFT_RUN_OK;
  std::optional<std::string> crash;
  bool agent_called = false;
  try {
    if (begin_run(*run)) {
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
  worker_done(run);
}

// queued -> running, committed. False when the run was stopped meanwhile.
bool RunManager::Impl::begin_run(LiveRun& run) {
  std::lock_guard run_lock(run.mutex);
  if (run.record.status != RunStatus::queued) return false;
  run.record.status = RunStatus::running;
  run.record.started_at = now_ms();
  run.submit_record_locked();
  if (run.timeout) schedule_deadline(*run.timeout, true, run.shared_from_this());
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
  if (is_terminal(run.record.status)) return true;
  run.append_dropped_entry_locked();
  if (run.timed_out) {
    run.finish_locked(RunStatus::failed, "timed out after " + format_seconds(*run.timeout) + " s");
  } else if (crash) {
    run.finish_locked(RunStatus::failed, crash->empty() ? kGenericFailure : *crash);
  } else if (rc != NIGHTSHIFT_RUN_OK) {
    std::string error = run.agent_error.value_or("");
    run.finish_locked(RunStatus::failed, error.empty() ? kGenericFailure : error);
  } else if (run.stop.stop_requested()) {
    run.finish_locked(RunStatus::cancelled, std::nullopt);
  } else {
    run.finish_locked(RunStatus::completed, std::nullopt);
  }
  return true;
}

// The worker's last steps with the manager: its thread handle goes to the
// watchdog to be joined, its slot to the next queued run. Once `workers`
// drops, this thread touches nothing of the manager.
void RunManager::Impl::worker_done(const LivePtr& run) {
  watchdog->post([run] {
    WorkerThread thread;
    {
      std::lock_guard run_lock(run->mutex);
      thread = std::move(run->thread);
    }
    thread.join();
  });
  std::vector<LivePtr> to_launch;
  {
    std::lock_guard lock(mutex);
    admission.release_slot(run->instance_id);
    to_launch = take_launchable_locked();
  }
  launch_all(std::move(to_launch));
  std::lock_guard lock(mutex);
  --workers;
  changed.notify_all();
}

// ---------------------------------------------------------------------------
// Deadlines

void RunManager::Impl::schedule_deadline(std::chrono::milliseconds after, bool is_timeout,
                                         const LivePtr& run) {
  watchdog->at(SteadyClock::now() + after, [this, is_timeout, weak = std::weak_ptr(run)] {
    if (LivePtr live = weak.lock()) fire(is_timeout, live);
  });
}

void RunManager::Impl::fire(bool is_timeout, const LivePtr& run) {
  std::lock_guard run_lock(run->mutex);
  if (run->abandoned || run->agent_returned) return;
  if (is_timeout) {
    if (run->record.status != RunStatus::running) return;  // already stopping
    run->timed_out = true;
    stop_locked_run(*run, false);
  } else if (run->record.status == RunStatus::stopping) {
    run->record.error = "did not stop within " + format_seconds(options.stop_grace) +
                        " s of the stop request; its thread is still running";
    run->submit_record_locked();
  }
}

// ---------------------------------------------------------------------------
// stop, remove, messages, reads

LivePtr RunManager::Impl::find_committed(const std::string& instance_id) const {
  std::unique_lock lock(mutex);
  LivePtr run;
  // A run whose start is being committed is only moments from durable.
  changed.wait(lock, [&] {
    auto it = runs.find(instance_id);
    run = it == runs.end() ? nullptr : it->second;
    return !run || run->committed.load();
  });
  return run;
}

std::vector<LivePtr> RunManager::Impl::live_snapshot() const {
  std::lock_guard lock(mutex);
  std::vector<LivePtr> out;
  out.reserve(runs.size());
  for (const auto& [id, run] : runs) out.push_back(run);
  return out;
}

Run RunManager::Impl::stop(const std::string& instance_id) {
  LivePtr run = find_committed(instance_id);
  if (!run) {
    if (store.get_run(instance_id)) throw already_ended(instance_id);
    throw not_found(instance_id);
  }
  std::lock_guard run_lock(run->mutex);
  if (is_terminal(run->record.status)) throw already_ended(instance_id);
  return stop_locked_run(*run, true);
}

// Asks a run to stop; with the run's mutex held. Returns the run as it is now.
Run RunManager::Impl::stop_locked_run(LiveRun& run, bool count_as_stop) {
  const RunStatus status = run.record.status;
  if (status == RunStatus::queued) {
    {
      std::lock_guard lock(mutex);
      admission.remove_queued(run.instance_id);  // false: it holds a slot already
    }
    run.stop.request_stop();
    run.finish_locked(RunStatus::cancelled, std::nullopt);
  } else if (status == RunStatus::running) {
    run.stop.request_stop();
    run.record.status = RunStatus::stopping;
    run.submit_record_locked();
    schedule_deadline(options.stop_grace, false, run.shared_from_this());
  } else {
    return run.record;  // already stopping
  }
  if (count_as_stop) stops.fetch_add(1, std::memory_order_relaxed);
  return run.record;
}

void RunManager::Impl::remove(const std::string& instance_id) {
  std::optional<Run> record;
  if (LivePtr run = find_committed(instance_id)) {
    std::lock_guard run_lock(run->mutex);
    if (is_active(run->record.status)) {
      throw RunError(RunError::Code::run_active,
                     "run " + instance_id + " is still active; stop it first");
    }
    record = run->record;
  } else {
    record = store.get_run(instance_id);
    if (!record) throw not_found(instance_id);
    if (is_active(record->status)) {
      throw RunError(RunError::Code::run_active,
                     "run " + instance_id + " is still active; stop it first");
    }
  }
  events.remember_deleted(*record);
  writer->submit_and_wait(DeleteRun{instance_id});
}

std::uint64_t RunManager::Impl::send_message(const std::string& instance_id, std::string text) {
  LivePtr run = find_committed(instance_id);
  if (!run) {
    if (store.get_run(instance_id)) throw already_ended(instance_id);
    throw not_found(instance_id);
  }
  std::uint64_t seq = 0;
  {
    std::lock_guard run_lock(run->mutex);
    if (!is_active(run->record.status)) throw already_ended(instance_id);
    if (!run->record.accepts_messages) {
      throw RunError(RunError::Code::messages_not_supported,
                     "agent " + run->record.agent_id +
                         " does not take messages (its manifest does not say \"messages\": true)");
    }
    // Recorded in the log in order with the agent's entries; it counts
    // against the run's log like any entry, but is never dropped.
    LogEntry entry{run->record.log_count + 1, now_ms(), LogLevel::info, text, LogSource::user};
    services->budget.force(LogBudget::cost(entry));
    run->record.log_count = entry.seq;
    run->accepted_bytes += entry.message.size();
    seq = entry.seq;
    run->pending_logs.push_back(std::move(entry));
    run->submit_record_locked();
  }
  run->deliver_message(std::move(text));
  return seq;
}

std::optional<Run> RunManager::Impl::get(const std::string& instance_id) const {
  if (LivePtr run = find_committed(instance_id)) {
    std::lock_guard run_lock(run->mutex);
    return run->shown;
  }
  return store.get_run(instance_id);
}

std::vector<Run> RunManager::Impl::active(const std::optional<std::string>& agent_id) const {
  std::vector<Run> out;
  for (const LivePtr& run : live_snapshot()) {
    std::lock_guard run_lock(run->mutex);
    if (agent_id && run->record.agent_id != *agent_id) continue;
    if (run->committed && is_active(run->shown.status)) out.push_back(run->shown);
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
  if (!committed && !find_committed(instance_id)) throw not_found(instance_id);
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
    if (!run->committed) continue;
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
  s.log_entries_written = budget.written();
  s.log_entries_dropped = budget.dropped();
  s.store_ok = writer->healthy();
  s.store_failures = writer->failures();
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
// Retiring runs and shutdown

// On the writer thread: what readers are shown of a live run is what is durable.
void RunManager::Impl::show_committed(const Run& record) {
  LivePtr run;
  {
    std::lock_guard lock(mutex);
    auto it = runs.find(record.instance_id);
    if (it == runs.end()) return;
    run = it->second;
  }
  std::lock_guard run_lock(run->mutex);
  run->shown = record;
}

// On the writer thread: a run's final record is durable, it leaves the live table.
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

void RunManager::Impl::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex);
    if (admission.closed()) return;
    admission.close();
  }
  spdlog::info("shutting down the run manager: stopping every active run");
  // Starts whose commit is still in flight are settled first.
  writer->flush();
  for (const LivePtr& run : live_snapshot()) {
    std::lock_guard run_lock(run->mutex);
    if (run->committed && is_active(run->record.status)) stop_locked_run(*run, false);
  }
  {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, grace, [&] { return workers == 0; });
  }

  // What has not ended is recorded as interrupted; its thread is let go and
  // never touches the manager again (it sees `abandoned` under its mutex).
  std::size_t abandoned = 0;
  for (const LivePtr& run : live_snapshot()) {
    std::lock_guard run_lock(run->mutex);
    const RunStatus status = run->record.status;
    if ((status != RunStatus::running && status != RunStatus::stopping) || run->agent_returned) {
      continue;
    }
    run->finish_locked(RunStatus::failed, kShutdownError);
    run->abandoned = true;
    run->thread.detach();
    ++abandoned;
    spdlog::warn("run {} did not stop within the shutdown grace period; its thread is detached",
                 run->instance_id);
  }
  {
    // Every other worker's agent has returned: its last steps are short, and
    // it must be done with the manager before the manager goes.
    std::unique_lock lock(mutex);
    workers -= std::min(abandoned, workers);
    changed.wait(lock, [&] { return workers == 0; });
  }
  watchdog->stop();
  writer->flush();
  std::lock_guard lock(mutex);
  shut_down = true;
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

void RunManager::start(StartRequest request, StartCallback done) {
  impl_->start(std::move(request), std::move(done));
}

Run RunManager::start(const StartRequest& request) {
  std::promise<StartOutcome> promise;
  auto outcome = promise.get_future();
  impl_->start(request, [&promise](StartOutcome result) { promise.set_value(std::move(result)); });
  StartOutcome result = outcome.get();
  if (result.error) std::rethrow_exception(result.error);
  return std::move(*result.run);
}
Run RunManager::stop(const std::string& instance_id) {
  return impl_->stop(instance_id);
}
void RunManager::remove(const std::string& instance_id) {
  impl_->remove(instance_id);
}
std::uint64_t RunManager::send_message(const std::string& instance_id, std::string text) {
  return impl_->send_message(instance_id, std::move(text));
}
std::optional<Run> RunManager::get(const std::string& instance_id) const {
  return impl_->get(instance_id);
}
std::vector<Run> RunManager::active(const std::optional<std::string>& agent_id) const {
  return impl_->active(agent_id);
}
HistoryPage RunManager::history(const HistoryQuery& query) const {
  try {
    return impl_->store.list_history(query);
  } catch (const InvalidCursor& error) {
    throw RunError(RunError::Code::invalid_cursor, error.what());
  }
}
LogPage RunManager::logs(const std::string& instance_id, std::uint64_t after,
                         std::size_t limit) const {
  return impl_->logs(instance_id, after, limit);
}
RunManagerStats RunManager::stats() const {
  return impl_->stats();
}
bool RunManager::store_ok() const noexcept {
  return impl_->writer->healthy();
}
void RunManager::shutdown(std::chrono::milliseconds grace) {
  impl_->shutdown(grace);
}
std::optional<Run> RunManager::wait(const std::string& instance_id,
                                    std::chrono::milliseconds timeout) const {
  return impl_->wait(instance_id, timeout);
}

}  // namespace nightshift
