#include "automation/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace nightshift {

namespace {

SysSeconds to_seconds(Timestamp t) {
  return std::chrono::floor<std::chrono::seconds>(t);
}

Timestamp to_timestamp(SysSeconds t) {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(t);
}

DueQueue::Clock::time_point wall(Timestamp t) {
  return DueQueue::Clock::time_point{
      std::chrono::duration_cast<DueQueue::Clock::duration>(t.time_since_epoch())};
}

bool same(const Schedule& a, const Schedule& b) {
  return a.id == b.id && a.agent_id == b.agent_id && a.task == b.task && a.params == b.params &&
         a.cron == b.cron && a.timezone == b.timezone && a.enabled == b.enabled &&
         a.overlap == b.overlap && a.created_at == b.created_at && a.next_run_at == b.next_run_at &&
         a.last_run_id == b.last_run_id;
}

AutomationError not_found(const std::string& id) {
  return AutomationError(AutomationError::Code::schedule_not_found,
                         "no schedule has the id '" + id + "'");
}

}  // namespace

std::shared_ptr<const CronSchedule> Scheduler::parse(const std::string& cron,
                                                     const std::string& timezone) {
  try {
    return std::make_shared<const CronSchedule>(cron, timezone);
  } catch (const CronError& error) {
    throw AutomationError(AutomationError::Code::invalid_schedule, error.what());
  }
}

Scheduler::Scheduler(Catalog& catalog, RunManager& runs, EventBus& bus, AutomationStore& store)
    : catalog_(catalog), runs_(runs), bus_(bus), store_(store) {
  due_ = std::make_unique<DueQueue>("ns-schedule", [this](const std::string& id) { fire(id); });
  const Timestamp now = now_ms();
  {
    std::lock_guard lock(mutex_);
    load_locked(now);
  }
  recover_firings();
}

void Scheduler::load_locked(Timestamp now) {
  for (Schedule& schedule : store_.list_schedules()) {
    Entry entry{std::move(schedule), nullptr};
    try {
      entry.cron = parse(entry.schedule.cron, entry.schedule.timezone);
    } catch (const std::exception& error) {
      spdlog::error("schedule {} cannot be used: {}", entry.schedule.id, error.what());
    }
    if (entry.cron && entry.schedule.enabled) {
      if (entry.schedule.next_run_at && *entry.schedule.next_run_at <= now) {
        // Missed while the host was down: one run now (the catch-up).
        due_->set(entry.schedule.id, wall(now));
      } else if (entry.schedule.next_run_at) {
        due_->set(entry.schedule.id, wall(*entry.schedule.next_run_at));
      } else {
        arm_locked(entry, to_seconds(now));
        store_.put_schedule(entry.schedule);
      }
    }
    const std::string id = entry.schedule.id;
    entries_.emplace(id, std::move(entry));
  }
}

// A time this host claimed before it stopped, whose run it may not have
// recorded: the claim named the run, so it is started now under that id
// unless the store has it. A firing meanwhile (a catch-up) claims a time of
// its own and names its own run: the two marks never mix.
void Scheduler::recover_firings() {
  std::vector<Schedule> claimed;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, entry] : entries_) {
      const Schedule& s = entry.schedule;
      if (s.firing_run_id && s.firing_host.value_or("") == runs_.host_name()) claimed.push_back(s);
    }
  }
  for (const Schedule& schedule : claimed) {
    finish_firing(schedule, "the host stopped after claiming a time and before recording its run");
  }
}

// With a shared store: the times claimed by hosts that stopped heartbeating
// before recording their runs, which the store moved to this host.
void Scheduler::take_over_firings() {
  for (const Schedule& schedule : store_.adopt_schedule_firings(runs_.host_name())) {
    finish_firing(schedule,
                  "a host that stopped heartbeating claimed a time and did not record its run; "
                  "this host takes it over");
  }
}

// A claimed time (schedule.firing_run_id, this host's) whose run may not
// have been recorded: linked when the store has the run, else started.
void Scheduler::finish_firing(const Schedule& schedule, std::string_view why) {
  const std::string& run_id = *schedule.firing_run_id;
  std::optional<Run> recorded;
  try {
    recorded = runs_.get(run_id);
  } catch (const std::exception& error) {
    spdlog::warn(
        "schedule {}: cannot tell whether run {} of a claimed time was recorded ({}); "
        "tried again at the next start",
        schedule.id, run_id, error.what());
    return;
  }
  if (recorded) {
    // Recorded: only its link from the schedule was lost.
    try {
      std::lock_guard lock(mutex_);
      settle_firing_locked(schedule.id, run_id, true);
    } catch (const std::exception& error) {
      spdlog::warn("schedule {}: its last run stays unset until the next start: {}", schedule.id,
                   error.what());
    }
    return;
  }
  spdlog::warn("schedule {}: {}; starting that run ({}) now", schedule.id, why, run_id);
  start_claimed(schedule, run_id);
}

// Starts the run of a claimed time (or skips it, as the overlap says), links
// it from the schedule and clears the firing mark.
void Scheduler::start_claimed(Schedule schedule, const std::string& run_id) {
  const std::string id = schedule.id;
  bool started = false;
  try {
    bool skip = false;
    if (schedule.overlap == Overlap::skip && schedule.last_run_id) {
      const auto previous = runs_.get(*schedule.last_run_id);
      skip = previous && is_active(previous->status);
    }
    if (skip) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("schedule {}: its previous run {} is still active; this time is skipped", id,
                   *schedule.last_run_id);
    } else {
      start_run(schedule, run_id);
      started = true;
      scheduled_starts_.fetch_add(1, std::memory_order_relaxed);
      schedule.last_run_id = run_id;
    }
    std::lock_guard lock(mutex_);
    settle_firing_locked(id, run_id, started);
  } catch (const std::exception& error) {
    const auto* refused = dynamic_cast<const RunError*>(&error);
    if (!started && refused && refused->code() == RunError::Code::shutting_down) {
      // The host is stopping: the mark stays, and its next start starts the run.
      spdlog::info(
          "schedule {}: the host is stopping; run {} of this time starts at its next start", id,
          run_id);
      return;
    }
    if (started) {
      spdlog::warn("schedule {} started run {} but could not record it as its last run: {}", id,
                   run_id, error.what());
    } else {
      spdlog::warn("schedule {} could not start its run: {}", id, error.what());
      try {
        std::lock_guard lock(mutex_);
        settle_firing_locked(id, run_id, false);
      } catch (const std::exception& clear_error) {
        // Left marked: the next start of this host starts the run then.
        spdlog::warn("schedule {}: its firing mark stays until the next start: {}", id,
                     clear_error.what());
      }
    }
  }
  schedule.firing_run_id.reset();
  schedule.firing_host.reset();
  publish(ScheduleEventKind::updated, schedule);
}

// What became of a claimed time: its run linked from the schedule
// (`linked`), or the time given up. Either way the firing mark goes, in the
// store and in the entry. Callers hold mutex_; throws what the store throws.
void Scheduler::settle_firing_locked(const std::string& id, const std::string& run_id,
                                     bool linked) {
  if (linked) {
    store_.set_schedule_last_run(id, run_id);
  } else {
    store_.clear_schedule_firing(id, run_id);
  }
  if (auto it = entries_.find(id); it != entries_.end()) {
    if (linked) it->second.schedule.last_run_id = run_id;
    it->second.schedule.firing_run_id.reset();
    it->second.schedule.firing_host.reset();
  }
}

Scheduler::~Scheduler() {
  stop();
}

void Scheduler::stop() {
  due_->stop();
}

void Scheduler::refresh() {
  if (!store_.shared()) return;
  std::vector<std::pair<ScheduleEventKind, Schedule>> changes;
  bool others_marked = false;
  {
    // The store is read under the lock, as this host's own writes are
    // made: a schedule created here meanwhile is never taken for deleted.
    std::lock_guard lock(mutex_);
    std::vector<Schedule> stored = store_.list_schedules();
    // Only a mark of another host can be one to take over: without one, no
    // query for hosts that stopped heartbeating.
    others_marked = std::any_of(stored.begin(), stored.end(), [&](const Schedule& s) {
      return s.firing_run_id && s.firing_host != runs_.host_name();
    });
    changes = refresh_locked(std::move(stored));
  }
  publish_all(changes);
  if (others_marked) take_over_firings();
}

std::vector<std::pair<ScheduleEventKind, Schedule>> Scheduler::refresh_locked(
    std::vector<Schedule> stored) {
  std::map<std::string, Schedule> by_id;
  for (Schedule& schedule : stored) {
    const std::string id = schedule.id;
    by_id.emplace(id, std::move(schedule));
  }
  std::vector<std::pair<ScheduleEventKind, Schedule>> changes;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (by_id.contains(it->first)) {
      ++it;
      continue;
    }
    due_->remove(it->first);
    changes.emplace_back(ScheduleEventKind::deleted, it->second.schedule);
    it = entries_.erase(it);
  }
  for (auto& [id, schedule] : by_id) {
    const bool known = entries_.contains(id);
    if (adopt_locked(schedule)) {
      changes.emplace_back(known ? ScheduleEventKind::updated : ScheduleEventKind::created,
                           schedule);
    }
  }
  return changes;
}

void Scheduler::publish_all(const std::vector<std::pair<ScheduleEventKind, Schedule>>& changes) {
  for (const auto& [kind, schedule] : changes) publish(kind, schedule);
}

std::size_t Scheduler::enabled_count() const {
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& [id, entry] : entries_) count += entry.schedule.enabled ? 1 : 0;
  return count;
}

// Sets the entry's next time after `after` and queues it (or clears it when
// disabled or when no time matches).
void Scheduler::arm_locked(Entry& entry, SysSeconds after) {
  entry.schedule.next_run_at.reset();
  if (entry.schedule.enabled && entry.cron) {
    if (const auto next = entry.cron->next_after(after)) {
      entry.schedule.next_run_at = to_timestamp(*next);
    }
  }
  if (entry.schedule.next_run_at) {
    due_->set(entry.schedule.id, wall(*entry.schedule.next_run_at));
  } else {
    due_->remove(entry.schedule.id);
  }
}

void Scheduler::publish(ScheduleEventKind kind, const Schedule& schedule) {
  bus_.publish(std::make_shared<const Event>(ScheduleEvent{kind, schedule}));
}

Schedule Scheduler::create(const ScheduleInput& input) {
  if (!input.agent_id) {
    throw AutomationError(AutomationError::Code::invalid_schedule,
                          "a schedule needs an agentId, e.g. \"installed:echo\"");
  }
  if (!input.cron) {
    throw AutomationError(AutomationError::Code::invalid_schedule,
                          "a schedule needs a cron expression, e.g. \"0 3 * * *\"");
  }
  Entry entry;
  Schedule& s = entry.schedule;
  s.id = generate_uuid();
  s.agent_id = *input.agent_id;
  s.task = input.task.value_or(std::nullopt);
  s.params = input.params.value_or(boost::json::object{});
  s.cron = *input.cron;
  s.timezone = input.timezone.value_or("UTC");
  s.enabled = input.enabled.value_or(true);
  s.overlap = input.overlap.value_or(Overlap::skip);
  s.created_at = now_ms();
  entry.cron = parse(s.cron, s.timezone);
  // Refuses an unknown agent or params it does not take, now rather than at 3 am.
  catalog_.resolve(s.agent_id, s.params);
  Schedule created;
  {
    std::lock_guard lock(mutex_);
    arm_locked(entry, to_seconds(now_ms()));
    store_.put_schedule(s);
    created = s;
    entries_.emplace(s.id, std::move(entry));
  }
  publish(ScheduleEventKind::created, created);
  return created;
}

Schedule Scheduler::update(const std::string& id, const ScheduleInput& change) {
  Schedule updated;
  {
    std::unique_lock lock(mutex_);
    if (store_.shared()) sync_one_locked(id);  // another host may have changed it
    auto it = entries_.find(id);
    if (it == entries_.end()) throw not_found(id);
    Entry next = it->second;
    Schedule& s = next.schedule;
    if (change.task) s.task = *change.task;
    if (change.params) s.params = *change.params;
    if (change.cron) s.cron = *change.cron;
    if (change.timezone) s.timezone = *change.timezone;
    if (change.enabled) s.enabled = *change.enabled;
    if (change.overlap) s.overlap = *change.overlap;
    if (change.cron || change.timezone) next.cron = parse(s.cron, s.timezone);
    if (change.params) {
      lock.unlock();  // the catalog may load a plugin
      catalog_.resolve(s.agent_id, s.params);
      lock.lock();
      it = entries_.find(id);
      if (it == entries_.end()) throw not_found(id);
    }
    arm_locked(next, to_seconds(now_ms()));
    store_.put_schedule(s);
    it->second = next;
    updated = s;
  }
  publish(ScheduleEventKind::updated, updated);
  return updated;
}

void Scheduler::remove(const std::string& id) {
  Schedule removed;
  {
    std::lock_guard lock(mutex_);
    if (store_.shared()) sync_one_locked(id);
    auto it = entries_.find(id);
    if (it == entries_.end()) throw not_found(id);
    removed = it->second.schedule;
    store_.delete_schedule(id);
    due_->remove(id);
    entries_.erase(it);
  }
  publish(ScheduleEventKind::deleted, removed);
}

std::vector<Schedule> Scheduler::list() const {
  if (store_.shared()) return store_.list_schedules();  // every host's, as they are now
  std::lock_guard lock(mutex_);
  std::vector<Schedule> out;
  out.reserve(entries_.size());
  for (const auto& [id, entry] : entries_) out.push_back(entry.schedule);
  std::sort(out.begin(), out.end(), [](const Schedule& a, const Schedule& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  return out;
}

std::optional<Schedule> Scheduler::get(const std::string& id) const {
  if (store_.shared()) return store_.get_schedule(id);
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.schedule;
}

Run Scheduler::start_run(const Schedule& schedule, std::optional<std::string> instance_id) {
  StartRequest request;
  request.instance_id = std::move(instance_id);
  request.agent_id = schedule.agent_id;
  request.task = schedule.task;
  request.params = schedule.params;
  request.schedule_id = schedule.id;
  return runs_.start(request);
}

Run Scheduler::trigger(const std::string& id) {
  const auto schedule = get(id);
  if (!schedule) throw not_found(id);
  Run run = start_run(*schedule);
  Schedule updated = *schedule;
  updated.last_run_id = run.instance_id;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    // Gone meanwhile; in a shared store perhaps made elsewhere and not yet
    // seen here (the store has the last say: no row, nothing recorded).
    if (it == entries_.end() && !store_.shared()) return run;
    store_.set_schedule_last_run(id, run.instance_id);
    if (it != entries_.end()) {
      it->second.schedule.last_run_id = run.instance_id;
      updated = it->second.schedule;
    }
  }
  publish(ScheduleEventKind::updated, updated);
  return run;
}

// On the due queue's thread: the schedule's time has come.
void Scheduler::fire(const std::string& id) {
  Schedule schedule;
  // The run this time starts, named in the claim (see recover_firings).
  const std::string run_id = generate_uuid();
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end() || !it->second.schedule.enabled || !it->second.cron) return;
    // The next time after now, not after the time that fired: a host that
    // was down starts one run, not one per missed time.
    std::optional<Timestamp> next;
    if (const auto after = it->second.cron->next_after(to_seconds(now_ms()))) {
      next = to_timestamp(*after);
    }
    // The claim: of the hosts whose queues fire this time, the one that
    // moves the stored next time from the one it knew starts the run, with
    // the schedule as stored (another host may have edited it).
    std::optional<Schedule> claimed;
    try {
      claimed = store_.claim_schedule_time(id, it->second.schedule.next_run_at, next, run_id,
                                           runs_.host_name());
    } catch (const std::exception& error) {
      // The store cannot be reached: the time is tried again shortly (its
      // copy here is unchanged, so a refresh would not queue it again).
      spdlog::warn("schedule {}: its time could not be claimed (tried again in 5 s): {}", id,
                   error.what());
      due_->set(id, DueQueue::Clock::now() + std::chrono::seconds(5));
      return;
    }
    if (!claimed) {
      // Fired by another host, or changed meanwhile: as the store has it.
      sync_one_locked(id);
      return;
    }
    schedule = *claimed;
    adopt_locked(schedule);  // queued at its new time
  }
  start_claimed(std::move(schedule), run_id);
}

// Makes the entry of `id` what the store holds (gone when it is gone).
void Scheduler::sync_one_locked(const std::string& id) {
  if (const std::optional<Schedule> stored = store_.get_schedule(id)) {
    adopt_locked(*stored);
  } else if (entries_.erase(id) > 0) {
    due_->remove(id);
  }
}

// Makes the entry what the store holds, queued at the stored time (whichever
// host fires it claims it); false when it already was.
bool Scheduler::adopt_locked(const Schedule& stored) {
  const auto it = entries_.find(stored.id);
  if (it != entries_.end() && same(it->second.schedule, stored)) return false;
  Entry entry{stored, nullptr};
  if (it != entries_.end() && it->second.cron && it->second.schedule.cron == stored.cron &&
      it->second.schedule.timezone == stored.timezone) {
    entry.cron = it->second.cron;
  } else {
    try {
      entry.cron = parse(stored.cron, stored.timezone);
    } catch (const std::exception& error) {
      spdlog::error("schedule {} cannot be used: {}", stored.id, error.what());
    }
  }
  if (entry.cron && stored.enabled && stored.next_run_at) {
    due_->set(stored.id, wall(*stored.next_run_at));
  } else {
    due_->remove(stored.id);
  }
  entries_.insert_or_assign(stored.id, std::move(entry));
  return true;
}

}  // namespace nightshift
