#include "runs/run_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "isolation/spawner.hpp"
#include "runs/admission.hpp"
#include "runs/commit_events.hpp"
#include "runs/host_link.hpp"
#include "runs/live_run.hpp"
#include "runs/process_agent.hpp"
#include "runs/run_announcements.hpp"
#include "runs/watchdog.hpp"
#include "runs/worker_thread.hpp"
#include "store/store.hpp"
#include "store/store_writer.hpp"

namespace nightshift {

namespace {

using SteadyClock = std::chrono::steady_clock;

// How long log entries and held-back progress may wait to be batched.
constexpr std::chrono::milliseconds kSweepDelay{10};
// How long a run's thread stays parked for the next run of the same agent
// before it ends (see WorkerThread).
constexpr std::chrono::seconds kIdleThreadLife{2};

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

RunError too_many_messages(const std::string& id, std::size_t max_unread) {
  return RunError(RunError::Code::too_many_messages,
                  "run " + id + " already has " + std::to_string(max_unread) +
                      " messages its agent has not read; send more once it has read some");
}

// A RunError's code as text, for answers that cross to another host.
constexpr std::pair<RunError::Code, const char*> kCodeNames[] = {
    {RunError::Code::run_not_found, "run_not_found"},
    {RunError::Code::run_not_active, "run_not_active"},
    {RunError::Code::run_active, "run_active"},
    {RunError::Code::at_capacity, "at_capacity"},
    {RunError::Code::shutting_down, "shutting_down"},
    {RunError::Code::invalid_cursor, "invalid_cursor"},
    {RunError::Code::messages_not_supported, "messages_not_supported"},
    {RunError::Code::too_many_messages, "too_many_messages"},
    {RunError::Code::store_failed, "store_failed"},
};

std::string code_name(RunError::Code code) {
  for (const auto& [each, name] : kCodeNames) {
    if (each == code) return name;
  }
  return "store_failed";
}

// The RunError another host answered with.
RunError run_error_from(const std::string& answer) {
  const auto [code, message] = split_request_error(answer);
  for (const auto& [each, name] : kCodeNames) {
    if (code == name) return RunError(each, message);
  }
  return RunError(RunError::Code::store_failed, "the host executing the run failed: " + answer);
}

// The writers of new runs' first records on a shared store (see start_writers).
constexpr std::size_t kStartWriters = 4;

// How long a stop or a message sent to another host may wait for its answer.
constexpr std::chrono::seconds kRequestTimeout{10};

}  // namespace

struct RunManager::Impl {
  Impl(Catalog& catalog_in, Store& store_in, EventBus& bus_in, RunManagerOptions options_in);

  // ---- shared references and options (immutable) ----
  Catalog& catalog;
  Store& store;
  EventBus& bus;
  const RunManagerOptions options;
  // Marked failed (interrupted) by the start-up recovery; until taken.
  std::mutex interrupted_mutex;
  std::vector<Run> interrupted_at_start;
  // Forks the worker of each process run (started at the first); shared
  // with the runs using it, so that a run let go at shutdown keeps it.
  const std::shared_ptr<isolation::Spawner> spawner =
      options.process_spawner ? std::make_shared<isolation::Spawner>() : nullptr;
  const Timestamp started_at = now_ms();
  // options.host_name as every run this host executes carries it: one text
  // that their records share.
  const OptionalText host_name = options.host_name;

  // ---- counters, any thread ----
  std::atomic<std::uint64_t> starts{0}, stops{0}, completed{0}, failed{0}, cancelled{0};
  LogBudget budget;

  // ---- guarded by `mutex` ----
  mutable std::mutex mutex;
  mutable std::condition_variable changed;  // a run committed, retired, or a worker left
  // Every run whose final record is not committed, by its id (a view of the
  // run's own, which lives as long as the entry).
  std::unordered_map<std::string_view, LivePtr> runs;
  Admission admission;
  // Runs handed to a worker (launched or about to be) whose thread may still
  // touch the manager; shutdown waits for it to reach 0.
  std::size_t workers = 0;
  bool shut_down = false;

  // The one record of which runs this host announced (`started`, and
  // `finished`), for every path that publishes run events: the commit path
  // (`events`), the start writers and the link.
  RunAnnouncements announcements;
  CommitEvents events;
  // Destroyed before `events` and the tables: their last tasks and commits
  // still find everything above.
  std::unique_ptr<StoreWriter> writer;
  std::unique_ptr<Watchdog> watchdog;
  std::unique_ptr<RunServices> services;
  // With a store shared by several hosts: claims, requests and other hosts'
  // events. Stopped first at shutdown.
  std::unique_ptr<HostLink> link;
  // With a store shared by several hosts: the writers of the runs' first
  // records (queued), beside `writer`, round robin. A start waits for a
  // commit; with several transactions committing at once the server flushes
  // them to disk together, so a start waits neither for the flushes of the
  // starts before it nor for the main writer's batches. A run's later
  // records are the main writer's: it is claimed only once its first record
  // is committed. Declared after `link`, so destroyed before it: their
  // completions use it.
  std::vector<std::unique_ptr<StoreWriter>> start_writers;
  std::atomic<std::size_t> next_start_writer{0};

  // ---- operations ----
  void start(StartRequest request, StartCallback done);
  Run stop(const std::string& instance_id);
  void remove(const std::string& instance_id);
  std::uint64_t send_message(const std::string& instance_id, std::string text);
  std::optional<Run> get(const std::string& instance_id) const;
  std::vector<Run> active(const std::optional<std::string>& agent_id) const;
  std::optional<std::vector<Run>> active_from_memory(const std::optional<std::string>& agent_id,
                                                     std::size_t at_most) const;
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
  std::optional<Run> show_progress(const UpdateProgress& update, bool want_record);
  void show_committed(const Run& record);

  // The worker thread's body and its steps. run_worker returns the run the
  // thread goes on with (see worker_done), or null.
  LivePtr run_worker(const LivePtr& run) noexcept;
  bool begin_run(LiveRun& run);
  static std::int32_t call_agent(LiveRun& run, std::optional<std::string>& crash);
  bool end_run(LiveRun& run, const AgentExit& exit);
  LivePtr worker_done(const LivePtr& run);
  // Ends the threads parked longer than kIdleThreadLife, in a round on the
  // watchdog that comes back while any are parked. [any thread]
  void schedule_idle_retirement();
  std::atomic<bool> idle_retirement_scheduled{false};

  // Several hosts on one store (link is set).
  void start_shared(StartRequest request, StartCallback done);
  void submit_queued(StoreWriter& start_writer, const Run& record, std::optional<std::uint32_t> cap,
                     const StartCallback& done);
  void announce_queued(const std::vector<WriteOp>& committed);
  std::size_t free_slots() const;
  void execute_claimed(std::vector<Run> claimed);
  RequestAnswer answer_request(const RunRequest& request);
  bool is_local(const std::string& instance_id) const;
  void taken_over(const Run& stored);
  // A stop or message for a run not executing here.
  Run stop_elsewhere(const std::string& instance_id);
  std::uint64_t message_elsewhere(const std::string& instance_id, std::string text);
};

// ---------------------------------------------------------------------------
// Construction and start-up recovery

RunManager::Impl::Impl(Catalog& catalog_in, Store& store_in, EventBus& bus_in,
                       RunManagerOptions options_in)
    : catalog(catalog_in),
      store(store_in),
      bus(bus_in),
      options(std::move(options_in)),
      budget(options.log_buffer_bytes),
      admission(options.max_concurrent, options.max_queued),
      announcements(bus_in),
      events(
          bus_in, announcements, budget, [this](const Run& run) { show_committed(run); },
          [this](const UpdateProgress& update, bool want_record) {
            return show_progress(update, want_record);
          },
          [this](const Run& run) { retire(run); }) {
  // Before anything else: a run the store still calls active belonged to a
  // host that is gone.
  interrupted_at_start = store.mark_interrupted(now_ms(), kRecoveryError);
  if (!interrupted_at_start.empty()) {
    spdlog::warn("marked {} run(s) left active by the previous host as failed (interrupted)",
                 interrupted_at_start.size());
  }
  writer = std::make_unique<StoreWriter>(
      store, [this](const std::vector<WriteOp>& ops) { events.on_committed(ops); });
  writer->submit(PruneRuns{options.retention, now_ms()});
  watchdog = std::make_unique<Watchdog>(kSweepDelay, options.prune_interval, [this] {
    writer->submit(PruneRuns{options.retention, now_ms()});
  });
  services = std::make_unique<RunServices>(
      RunServices{options, *writer, *watchdog, budget,
                  std::make_shared<const std::string>(options.workspace.string()),
                  store.writes_progress_alone()});
  if (SharedQueue* queue = store.shared_queue()) {
    HostLink::Callbacks callbacks{
        [this] { return free_slots(); },
        [this](std::vector<Run> claimed) { execute_claimed(std::move(claimed)); },
        [this](const RunRequest& request) { return answer_request(request); },
        [this](const std::string& id) { return is_local(id); },
        [this](const Run& stored) { taken_over(stored); }};
    link = std::make_unique<HostLink>(store, *queue, bus_in, announcements, std::move(callbacks),
                                      HostLink::Options{});
    for (std::size_t i = 0; i < kStartWriters; ++i) {
      start_writers.push_back(std::make_unique<StoreWriter>(
          store, [this](const std::vector<WriteOp>& ops) { announce_queued(ops); }));
    }
    // Last: its thread claims runs, whose workers read `link` and use the
    // start writers.
    link->start();
  }
}

// ---------------------------------------------------------------------------
// start

LivePtr RunManager::Impl::make_live_run(const StartRequest& request, ResolvedAgent resolved) {
  auto run = std::make_shared<LiveRun>();
  run->services = services.get();
  Run& r = run->record;
  r.instance_id = request.instance_id ? *request.instance_id : generate_uuid();
  do {
    r.thread_id = generate_uuid();
  } while (r.thread_id == r.instance_id);
  r.agent_id = resolved.info.id;
  r.agent_name = resolved.info.name;
  r.agent_source = resolved.info.source;
  r.task = request.task;
  // A copy holds exactly its entries (merging left the table room to grow),
  // and the record keeps it for the whole run.
  r.params = boost::json::object(resolved.params);
  r.status = RunStatus::queued;
  r.created_at = now_ms();
  r.accepts_messages = resolved.info.accepts_messages;
  r.isolation = options.force_process_isolation ? Isolation::process : resolved.info.isolation;
  r.attempt = request.attempt;
  r.retry_of = request.retry_of;
  r.rerun_of = request.rerun_of;
  r.schedule_id = request.schedule_id;
  run->max_concurrent = resolved.limits.automation.max_concurrent;

  run->params_json = boost::json::serialize(r.params);
  run->params_json.shrink_to_fit();  // kept for the whole run: without the serializer's slack
  run->workspace = services->workspace;
  run->plugin = std::move(resolved.plugin);
  AgentLimits limits;
  try {
    limits = lower_limits(resolved.limits, request.limits);
  } catch (const std::invalid_argument& e) {
    throw CatalogError(CatalogError::Code::invalid_params, e.what());
  }
  run->process_limits =
      isolation::ProcessLimits{limits.memory_mib.value_or(0), limits.cpu_seconds.value_or(0),
                               limits.sandbox.value_or(false), limits.network.value_or(true)};
  // Only a process can be held to these: a run that asks for them gets one,
  // whatever its manifest says, rather than running without them.
  if (limits.memory_mib || limits.cpu_seconds || limits.sandbox.value_or(false) ||
      !limits.network.value_or(true)) {
    r.isolation = Isolation::process;
  }
  run->isolation = r.isolation;
  if (limits.timeout_seconds && *limits.timeout_seconds > 0) {
    run->timeout = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::ceil(*limits.timeout_seconds * 1000.0)));
  } else if (options.default_timeout && options.default_timeout->count() > 0) {
    run->timeout = *options.default_timeout;
  }
  return run;
}

void RunManager::Impl::start(StartRequest request, StartCallback done) {
  if (link) {
    start_shared(std::move(request), std::move(done));
    return;
  }
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
        admission.reserve({run->instance_id(), run->record.agent_id, run->max_concurrent});
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
    runs.emplace(run->instance_id(), run);
  } catch (...) {
    done(StartOutcome{std::nullopt, std::current_exception()});
    return;
  }
  // The run is durable before anyone hears of it; until then it is hidden
  // (`committed` is false) and nothing else changes its record.
  writer->submit(UpsertRun::first(run->record),
                 [this, run, place, done = std::move(done)](const std::string& error) {
                   on_start_committed(run, place, error, done);
                 });
}

// On the writer's publisher thread, after the record's commit (and its `started` event).
void RunManager::Impl::on_start_committed(const LivePtr& run, Admission::Place place,
                                          const std::string& error, const StartCallback& done) {
  if (!error.empty()) {
    {
      std::lock_guard lock(mutex);
      runs.erase(run->instance_id());
      admission.cancel(place, run->instance_id());
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
    run->shown.assign(committed);
    if (place == Admission::Place::slot) {
      ++workers;
      to_launch.push_back(run);
    } else {
      admission.enqueue(run->instance_id());
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
      // The handle is in run->thread before the worker may begin (its last
      // steps take it from there), and nobody else uses it before the run
      // is running; no lock is held while the worker wakes, so its first
      // step (which takes the run's mutex) does not sleep again at once.
      WorkerThread::start_into(run->thread, options.worker_stack_bytes, "ns-run", run->plugin,
                               [this, run]() mutable noexcept {
                                 LivePtr current = std::move(run);
                                 while ((current = run_worker(current))) {
                                   WorkerThread::tidy();
                                 }
                               });
      continue;
    } catch (const std::exception& e) {
      const std::string error = std::string("could not start a worker thread: ") + e.what();
      spdlog::error("run {}: {}", run->instance_id(), error);
      std::lock_guard run_lock(run->mutex);
      run->agent_returned = true;
      if (run->record.status == RunStatus::queued) run->finish_locked(RunStatus::failed, error);
    }
    std::lock_guard lock(mutex);
    --workers;
    admission.release_slot(run->instance_id());
    auto more = take_launchable_locked();
    runs_to_launch.insert(runs_to_launch.end(), more.begin(), more.end());
    changed.notify_all();
  }
}

// ---------------------------------------------------------------------------
// The worker thread

LivePtr RunManager::Impl::run_worker(const LivePtr& run) noexcept {
  AgentExit exit;
  bool agent_called = false;
  try {
    if (begin_run(*run)) {
      agent_called = true;
      if (run->isolation == Isolation::process) {
        exit = run_agent_in_process(*run, options, spawner);
      } else {
        exit.rc = call_agent(*run, exit.failure);
      }
    }
  } catch (const std::exception& e) {
    exit.failure = std::string("the host failed to start the run: ") + e.what();
    exit.rc = NIGHTSHIFT_RUN_FAILED;
  }
  if (!agent_called && !exit.failure) {
    // Stopped before it began: the record is already final.
    std::lock_guard run_lock(run->mutex);
    run->agent_returned = true;
  } else if (!end_run(*run, exit)) {
    return nullptr;  // abandoned by shutdown: the manager may be gone
  }
  return worker_done(run);
}

// queued -> running, committed. False when the run was stopped meanwhile.
bool RunManager::Impl::begin_run(LiveRun& run) {
  std::lock_guard run_lock(run.mutex);
  if (run.record.status != RunStatus::queued) return false;
  run.record.status = RunStatus::running;
  run.record.started_at = now_ms();
  if (!options.host_name.empty()) run.record.host = host_name;
  run.submit_record_locked();
  if (run.timeout.count() > 0) schedule_deadline(run.timeout, true, run.shared_from_this());
  return true;
}

std::int32_t RunManager::Impl::call_agent(LiveRun& run, std::optional<std::string>& crash) {
  try {
    const nightshift_run view = run.abi_view();
    return run.plugin->entry().run(&view);
  } catch (const std::exception& e) {
    crash = e.what();
  } catch (...) {
    crash = "the agent threw an exception that is not a std::exception";
  }
  return NIGHTSHIFT_RUN_FAILED;
}

// The agent returned: the final record, committed after the run's last log
// entries. False when shutdown abandoned the run (touch nothing of the manager).
bool RunManager::Impl::end_run(LiveRun& run, const AgentExit& exit) {
  std::lock_guard run_lock(run.mutex);
  run.agent_returned = true;
  if (run.abandoned) return false;
  if (is_terminal(run.record.status)) return true;
  run.append_dropped_entry_locked();
  const std::int32_t rc = exit.rc;
  if (run.timed_out) {
    run.finish_locked(RunStatus::failed, "timed out after " + format_seconds(run.timeout) + " s");
  } else if (exit.killed) {
    run.killed = true;
    run.finish_locked(RunStatus::cancelled, "killed after " + format_seconds(options.stop_grace) +
                                                " s: the agent did not stop");
  } else if (exit.failure) {
    run.finish_locked(RunStatus::failed, exit.failure->empty() ? kGenericFailure : *exit.failure);
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

// The worker's last steps with this run: its slot goes to the next queued
// run. When that run is of the same agent library, this thread goes on with
// it (the thread's handle moves to it; nothing is made, parked or woken);
// otherwise the thread is let go, to park itself for a later run once the
// body returns (nobody waits for it). Once `workers` drops, a thread that
// does not go on touches nothing of the manager (one that does is counted
// for its next run first).
LivePtr RunManager::Impl::worker_done(const LivePtr& run) {
  std::vector<LivePtr> to_launch;
  {
    std::lock_guard lock(mutex);
    admission.release_slot(run->instance_id());
    to_launch = take_launchable_locked();
  }
  LivePtr next;
  if (!to_launch.empty() && to_launch.front()->plugin == run->plugin) {
    next = std::move(to_launch.front());
    to_launch.erase(to_launch.begin());
    std::scoped_lock run_locks(run->mutex, next->mutex);
    next->thread = std::move(run->thread);
  } else {
    WorkerThread self;
    {
      std::lock_guard run_lock(run->mutex);
      self = std::move(run->thread);
    }
    self.park_when_done();
    schedule_idle_retirement();
  }
  launch_all(std::move(to_launch));
  if (link) link->wake();  // a slot is free for the shared queue
  std::lock_guard lock(mutex);
  --workers;
  changed.notify_all();
  return next;
}

void RunManager::Impl::schedule_idle_retirement() {
  // Sequentially consistent with the round below: a thread let go after the
  // round's count is seen by the flag, or counted by the round.
  if (idle_retirement_scheduled.exchange(true)) return;
  watchdog->at(SteadyClock::now() + kIdleThreadLife, [this] {
    WorkerThread::retire_idle(kIdleThreadLife);
    idle_retirement_scheduled.store(false);
    if (WorkerThread::idle_threads() > 0) schedule_idle_retirement();
  });
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
  } else if (run->record.status == RunStatus::stopping && run->isolation == Isolation::thread) {
    // (A process run is killed by its supervisor instead.)
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
    if (link) return stop_elsewhere(instance_id);
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
      admission.remove_queued(run.instance_id());  // false: it holds a slot already
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
    if (link) return message_elsewhere(instance_id, std::move(text));
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
    // Bounded: a client faster than the agent is told to wait rather than
    // growing the host's memory without end.
    if (!run->reserve_message(options.max_unread_messages)) {
      throw too_many_messages(instance_id, options.max_unread_messages);
    }
    // Recorded in the log in order with the agent's entries; it counts
    // against the run's log like any entry, but is never dropped.
    try {
      LogEntry entry{run->record.log_count + 1, now_ms(), LogLevel::info, text, LogSource::user};
      run->pending_logs.push_back(std::move(entry));
    } catch (...) {
      run->unreserve_message();
      throw;
    }
    const LogEntry& entry = run->pending_logs.back();
    services->budget.force(LogBudget::cost(entry));
    run->record.log_count = entry.seq;
    run->accepted_bytes += entry.message.size();
    seq = entry.seq;
    run->submit_progress_locked();
  }
  run->deliver_message(std::move(text));
  return seq;
}

std::optional<Run> RunManager::Impl::get(const std::string& instance_id) const {
  if (LivePtr run = find_committed(instance_id)) {
    std::lock_guard run_lock(run->mutex);
    return run->shown_locked();
  }
  return store.get_run(instance_id);
}

namespace {

// Active runs newest createdAt first, the order api.md gives the list.
void sort_newest_first(std::vector<Run>& runs) {
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) {
    if (a.created_at != b.created_at) return a.created_at > b.created_at;
    return a.instance_id > b.instance_id;
  });
}

// The committed, active runs among `live`, as they are shown, and those that
// ended here whose final record is committed but who have not left the live
// table yet: until then their `finished` may not have gone out, nor the API's
// history cache heard of it, so a list that left them out could show them
// nowhere (the API leaves them out of its active runs once its history page
// holds them).
std::vector<Run> shown_active(const std::vector<LivePtr>& live,
                              const std::optional<std::string>& agent_id) {
  std::vector<Run> out;
  for (const LivePtr& run : live) {
    std::lock_guard run_lock(run->mutex);
    if (agent_id && run->record.agent_id != *agent_id) continue;
    if (!run->committed) continue;
    const bool ended_here = is_terminal(run->shown.status) && is_terminal(run->record.status);
    if (is_active(run->shown.status) || ended_here) out.push_back(run->shown_locked());
  }
  return out;
}

}  // namespace

std::optional<std::vector<Run>> RunManager::Impl::active_from_memory(
    const std::optional<std::string>& agent_id, std::size_t at_most) const {
  if (link) return std::nullopt;
  std::vector<LivePtr> live;
  {
    std::lock_guard lock(mutex);
    if (runs.size() > at_most) return std::nullopt;
    live.reserve(runs.size());
    for (const auto& [id, run] : runs) live.push_back(run);
  }
  std::vector<Run> out = shown_active(live, agent_id);
  sort_newest_first(out);
  return out;
}

std::vector<Run> RunManager::Impl::active(const std::optional<std::string>& agent_id) const {
  std::vector<Run> out = shown_active(live_snapshot(), agent_id);
  if (link) {
    // Every host's active runs; this host's own as it shows them.
    std::unordered_set<std::string> here;
    for (const Run& run : out) here.insert(run.instance_id);
    for (Run& run : store.list_active(agent_id)) {
      if (!here.contains(run.instance_id)) out.push_back(std::move(run));
    }
  }
  sort_newest_first(out);
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
  s.store_ok = writer->healthy() && store.available();
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

// On the writer's publisher thread: what readers are shown of a live run is what is durable.
void RunManager::Impl::show_committed(const Run& record) {
  LivePtr run;
  {
    std::lock_guard lock(mutex);
    auto it = runs.find(record.instance_id);
    if (it == runs.end()) return;
    run = it->second;
  }
  std::lock_guard run_lock(run->mutex);
  run->shown.assign(record);
}

// On the writer's publisher thread: a progress update is durable; readers are shown it.
std::optional<Run> RunManager::Impl::show_progress(const UpdateProgress& update, bool want_record) {
  LivePtr run;
  {
    std::lock_guard lock(mutex);
    auto it = runs.find(update.instance_id);
    if (it == runs.end()) return std::nullopt;
    run = it->second;
  }
  std::lock_guard run_lock(run->mutex);
  run->shown.progress = update.progress;
  run->shown.log_count = update.log_count;
  run->shown.usage = update.usage;
  if (!want_record) return std::nullopt;
  return run->shown_locked();
}

// On the writer's publisher thread: a run's final record is durable, it leaves the live table.
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
  if (link) link->stop();  // no more claims or requests
  spdlog::info("shutting down the run manager: stopping every active run");
  // Starts whose commit is still in flight are settled first.
  for (const auto& start_writer : start_writers) start_writer->flush();
  writer->flush();
  bool processes = false;
  for (const LivePtr& run : live_snapshot()) {
    std::lock_guard run_lock(run->mutex);
    if (run->committed && is_active(run->record.status)) {
      stop_locked_run(*run, false);
      processes = processes || run->isolation == Isolation::process;
    }
  }
  {
    // A process run that ignores the stop is killed at the stop grace; it
    // gets the time that takes, so that it ends as killed, not interrupted.
    const auto wait = processes && grace >= options.stop_grace
                          ? grace + options.kill_grace + std::chrono::seconds(1)
                          : grace;
    std::unique_lock lock(mutex);
    changed.wait_for(lock, wait, [&] { return workers == 0; });
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
                 run->instance_id());
  }
  {
    // Every other worker's agent has returned: its last steps are short, and
    // it must be done with the manager before the manager goes.
    std::unique_lock lock(mutex);
    workers -= std::min(abandoned, workers);
    changed.wait(lock, [&] { return workers == 0; });
  }
  watchdog->stop();
  // The parked threads hold their agents' libraries: none outlives the host.
  WorkerThread::retire_idle(SteadyClock::duration::zero());
  writer->flush();
  std::lock_guard lock(mutex);
  shut_down = true;
}

// ---------------------------------------------------------------------------
// Several hosts on one store

// The run joins the shared queue; whichever host has a free slot first
// (this one included) claims and executes it.
void RunManager::Impl::start_shared(StartRequest request, StartCallback done) {
  try {
    StoreWriter& start_writer =
        *start_writers[next_start_writer.fetch_add(1, std::memory_order_relaxed) %
                       start_writers.size()];
    if (!writer->healthy() || !start_writer.healthy() || !store.available()) {
      const std::string error =
          writer->healthy() ? start_writer.last_error() : writer->last_error();
      throw RunError(RunError::Code::store_failed,
                     "the shared store cannot be reached right now (" + error +
                         "); try again once it is back");
    }
    {
      std::lock_guard lock(mutex);
      if (admission.closed()) {
        throw RunError(RunError::Code::shutting_down, "the host is shutting down; start refused");
      }
    }
    const LivePtr run = make_live_run(request, catalog.resolve(request.agent_id, request.params));
    // The place is answered at once, or after the link thread counted this
    // host's queued runs again in the store (the queue was full by the
    // estimate); either way no thread here waits on the store.
    link->reserve_queue_place(options.max_queued, [this, start_writer = &start_writer,
                                                   record = run->record, cap = run->max_concurrent,
                                                   done](bool placed) {
      if (!placed) {
        bool closed = false;
        {
          std::lock_guard lock(mutex);
          closed = admission.closed();
        }
        const RunError refusal =
            closed
                ? RunError(RunError::Code::shutting_down,
                           "the host is shutting down; start refused")
                : RunError(RunError::Code::at_capacity,
                           "the shared queue already holds " + std::to_string(options.max_queued) +
                               " runs started on this host; try again later");
        done(StartOutcome{std::nullopt, std::make_exception_ptr(refusal)});
        return;
      }
      submit_queued(*start_writer, record, cap, done);
    });
  } catch (...) {
    done(StartOutcome{std::nullopt, std::current_exception()});
  }
}

// The run's first record (queued), on a start writer; `done` once committed.
void RunManager::Impl::submit_queued(StoreWriter& start_writer, const Run& record,
                                     std::optional<std::uint32_t> cap, const StartCallback& done) {
  try {
    start_writer.submit(
        UpsertRun::first(record, cap), [this, record, done](const std::string& error) {
          link->queue_place_settled(error.empty());
          if (!error.empty()) {
            done(StartOutcome{std::nullopt, std::make_exception_ptr(RunError(
                                                RunError::Code::store_failed,
                                                "the run could not be recorded, so it was not "
                                                "started: " +
                                                    error))});
            return;
          }
          starts.fetch_add(1, std::memory_order_relaxed);
          done(StartOutcome{record, nullptr});
          link->wake();
        });
  } catch (...) {
    link->queue_place_settled(false);
    done(StartOutcome{std::nullopt, std::current_exception()});
  }
}

// On a start writer's thread: runs joined the shared queue. Their `started`
// (as queued), unless this host already announced the run: then a newer
// state went out first (the link relayed another host's claim, or this
// host's own commit path its start), and this queued record is old news.
void RunManager::Impl::announce_queued(const std::vector<WriteOp>& committed) {
  for (const WriteOp& op : committed) {
    if (const auto* upsert = std::get_if<UpsertRun>(&op)) {
      announcements.announce(upsert->run(), true);
    }
  }
}

std::size_t RunManager::Impl::free_slots() const {
  std::lock_guard lock(mutex);
  if (admission.closed()) return 0;
  const std::size_t taken = admission.running() + admission.queued();
  return taken >= admission.max_running() ? 0 : admission.max_running() - taken;
}

bool RunManager::Impl::is_local(const std::string& instance_id) const {
  std::lock_guard lock(mutex);
  return runs.contains(instance_id);
}

// On the link thread: runs this host claimed. Each becomes a live run here,
// as if started here, and starts on a worker (or waits for a local slot).
void RunManager::Impl::execute_claimed(std::vector<Run> claimed) {
  std::vector<LivePtr> to_launch;
  for (Run& record : claimed) {
    LivePtr run;
    try {
      // Where the run came from, as the admitting host recorded it. (Made
      // whole at once: GCC 12 at -O1 took assigning the optional texts
      // afterwards for a use of uninitialized memory.)
      const StartRequest request{.agent_id = record.agent_id,
                                 .task = std::optional<std::string>(record.task),
                                 .params = record.params,
                                 .attempt = record.attempt,
                                 .retry_of = std::optional<std::string>(record.retry_of),
                                 .rerun_of = std::optional<std::string>(record.rerun_of),
                                 .schedule_id = std::optional<std::string>(record.schedule_id)};
      run = make_live_run(request, catalog.resolve(record.agent_id, record.params));
      run->record.instance_id = record.instance_id;
      run->record.thread_id = record.thread_id;
      run->record.created_at = record.created_at;
      // Messages sent while it waited unclaimed are in its log already
      // (source user): its entries continue after them, and the agent gets
      // them as if they had been sent to it here.
      run->record.log_count = record.log_count;
      if (record.log_count > 0) {
        for (LogEntry& entry : store.read_logs(record.instance_id, 0, record.log_count)) {
          if (entry.source != LogSource::user) continue;
          run->accepted_bytes += entry.message.size();
          // Recorded already: unread from now on, whatever the bound.
          run->reserve_message(std::numeric_limits<std::size_t>::max());
          run->deliver_message(std::move(entry.message));
        }
      }
    } catch (const std::exception& e) {
      // This host cannot run it: it fails, under this host's claim.
      record.status = RunStatus::failed;
      record.host = host_name;
      record.ended_at = now_ms();
      record.error =
          "host " + options.host_name + " cannot run " + record.agent_id + ": " + e.what();
      writer->submit(UpsertRun{record});
      continue;
    }
    std::lock_guard run_lock(run->mutex);
    std::lock_guard lock(mutex);
    const auto place = admission.reserve();
    if (!place) {
      // Closed (shutting down) since the claim: the run ends here.
      run->record.host = host_name;
      run->finish_locked(RunStatus::failed,
                         "interrupted: host " + options.host_name + " shut down as it claimed it");
      continue;
    }
    run->committed = true;
    run->shown.assign(record);
    runs.emplace(run->instance_id(), run);
    if (*place == Admission::Place::slot) {
      ++workers;
      to_launch.push_back(run);
    } else {
      admission.enqueue(run->instance_id());
    }
    changed.notify_all();
  }
  if (!to_launch.empty()) {
    watchdog->post(
        [this, to_launch = std::move(to_launch)]() mutable { launch_all(std::move(to_launch)); });
  }
}

// On the link thread: another host failed a run executing here (this host
// missed its lease, e.g. paused). The store keeps the rescuer's record (this
// host's writes carry the old fence and change nothing); readers here are
// shown it, and the agent is asked to stop.
void RunManager::Impl::taken_over(const Run& stored) {
  LivePtr run;
  {
    std::lock_guard lock(mutex);
    const auto it = runs.find(stored.instance_id);
    if (it == runs.end()) return;
    run = it->second;
  }
  std::lock_guard run_lock(run->mutex);
  run->shown.assign(stored);
  if (run->record.status == RunStatus::running) {
    spdlog::warn("run {} was taken over by another host ({}); stopping it here", stored.instance_id,
                 stored.error ? *stored.error : std::string(to_string(stored.status)));
    stop_locked_run(*run, false);
  }
}

// On the link thread: another host asks for a run executing here.
RequestAnswer RunManager::Impl::answer_request(const RunRequest& request) {
  RequestAnswer answer;
  try {
    if (!is_local(request.instance_id)) {
      throw RunError(
          RunError::Code::run_not_active,
          "run " + request.instance_id + " is not executing on host " + options.host_name);
    }
    if (request.kind == RunRequest::Kind::stop) {
      stop(request.instance_id);
    } else {
      answer.seq = send_message(request.instance_id, request.text);
    }
  } catch (const RunError& e) {
    answer.error = request_error(code_name(e.code()), e.what());
  }
  return answer;
}

Run RunManager::Impl::stop_elsewhere(const std::string& instance_id) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::optional<Run> record = store.get_run(instance_id);
    if (!record) throw not_found(instance_id);
    if (is_terminal(record->status)) throw already_ended(instance_id);
    if (!record->host) {
      if (auto cancelled = store.shared_queue()->cancel_unclaimed(instance_id, now_ms())) {
        stops.fetch_add(1, std::memory_order_relaxed);
        return *cancelled;
      }
      continue;  // claimed meanwhile: ask its host
    }
    if (*record->host == options.host_name) {
      // Claimed here a moment ago: it is live here now, or about to be.
      if (LivePtr run = find_committed(instance_id)) {
        std::lock_guard run_lock(run->mutex);
        if (is_terminal(run->record.status)) throw already_ended(instance_id);
        return stop_locked_run(*run, true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto answer =
        link->request(*record->host, {0, RunRequest::Kind::stop, instance_id, {}}, kRequestTimeout);
    if (answer && !answer->error.empty()) throw run_error_from(answer->error);
    stops.fetch_add(1, std::memory_order_relaxed);
    return store.get_run(instance_id).value_or(*record);
  }
  return store.get_run(instance_id).value_or(Run{});
}

std::uint64_t RunManager::Impl::message_elsewhere(const std::string& instance_id,
                                                  std::string text) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::optional<Run> record = store.get_run(instance_id);
    if (!record) throw not_found(instance_id);
    if (is_terminal(record->status)) throw already_ended(instance_id);
    if (!record->accepts_messages) {
      throw RunError(RunError::Code::messages_not_supported,
                     "agent " + record->agent_id +
                         " does not take messages (its manifest does not say \"messages\": true)");
    }
    if (!record->host) {
      // Queued and claimed by no host: as on a single host, the message
      // waits in the run's log, and the host that claims the run hands it
      // to the agent.
      const UnclaimedMessage recorded = store.shared_queue()->record_unclaimed_message(
          instance_id, text, now_ms(), options.max_unread_messages);
      if (recorded.outcome == UnclaimedMessage::Outcome::recorded) return recorded.seq;
      if (recorded.outcome == UnclaimedMessage::Outcome::full) {
        throw too_many_messages(instance_id, options.max_unread_messages);
      }
      continue;  // claimed meanwhile: send it to its host
    }
    if (*record->host == options.host_name) {
      // Claimed here a moment ago: it is live here now, or about to be.
      if (find_committed(instance_id)) return send_message(instance_id, std::move(text));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto answer =
        link->request(*record->host, {0, RunRequest::Kind::message, instance_id, std::move(text)},
                      kRequestTimeout);
    if (!answer) {
      throw RunError(RunError::Code::store_failed, "host " + *record->host + " executing run " +
                                                       instance_id +
                                                       " did not answer; it may have stopped");
    }
    if (!answer->error.empty()) throw run_error_from(answer->error);
    return answer->seq;
  }
  throw RunError(RunError::Code::store_failed,
                 "run " + instance_id + " changed hosts while the message was sent; send it again");
}

// ---------------------------------------------------------------------------
// RunManager: the public face

RunManager::RunManager(Catalog& catalog, Store& store, EventBus& bus, RunManagerOptions options)
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
std::optional<std::vector<Run>> RunManager::active_from_memory(
    const std::optional<std::string>& agent_id, std::size_t at_most) const {
  return impl_->active_from_memory(agent_id, at_most);
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
std::vector<Run> RunManager::take_interrupted_at_start() {
  std::lock_guard lock(impl_->interrupted_mutex);
  return std::exchange(impl_->interrupted_at_start, {});
}

RunManagerStats RunManager::stats() const {
  return impl_->stats();
}
bool RunManager::store_ok() const noexcept {
  return impl_->writer->healthy() && impl_->store.available();
}
std::string_view RunManager::store_kind() const noexcept {
  return impl_->store.kind();
}
const std::string& RunManager::host_name() const noexcept {
  return impl_->options.host_name;
}
std::vector<HostRecord> RunManager::hosts() const {
  if (impl_->store.shared()) return impl_->store.list_hosts();
  const RunManagerStats now = stats();
  HostRecord self;
  self.name = impl_->options.host_name;
  self.started_at = impl_->started_at;
  self.last_seen_at = now_ms();
  self.alive = true;
  self.active_runs = now.queued + now.running + now.stopping;
  self.version = impl_->options.host_version;
  return {self};
}
void RunManager::shutdown(std::chrono::milliseconds grace) {
  impl_->shutdown(grace);
}
std::optional<Run> RunManager::wait(const std::string& instance_id,
                                    std::chrono::milliseconds timeout) const {
  return impl_->wait(instance_id, timeout);
}

}  // namespace nightshift
