// Schedules (api.md v1.1): runs started by cron expressions in IANA time
// zones. Each enabled schedule has its next time; when it comes, the
// schedule starts a run with `scheduleId` set (unless `overlap` is `skip`
// and its previous run is still active) and moves to its next time. Times
// are persisted, so a time missed while the host was down starts one run at
// the next start (not one per missed time). Every change is published on
// the bus as a ScheduleEvent.
//
// Under a shared store (several hosts on one PostgreSQL database) every
// host's scheduler holds every schedule: each time is claimed in the store
// (compare and set of its next time) before a run starts, so exactly one
// host starts it, with the schedule as the store holds it then. The others'
// changes (created, edited, deleted, fired) reach this host's due queue at
// the next refresh(), which Automation calls about every second; list()
// and get() read the store, so they show them at once.
//
// Thread safety: every public member is [thread-safe]. Runs are started on
// the scheduler's own thread (or the caller's, for trigger).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "automation/cron.hpp"
#include "automation/due_queue.hpp"
#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "model/automation.hpp"
#include "runs/run_manager.hpp"
#include "store/automation_store.hpp"

namespace nightshift {

// Why a schedule or webhook request was refused. `code` is the API error code.
class AutomationError : public std::runtime_error {
 public:
  enum class Code { schedule_not_found, webhook_not_found, invalid_schedule, invalid_webhook };
  AutomationError(Code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  Code code() const noexcept { return code_; }

 private:
  Code code_;
};

// A new schedule, or the fields of a change (unset: unchanged).
struct ScheduleInput {
  std::optional<std::string> agent_id;  // create only
  std::optional<std::optional<std::string>> task;
  std::optional<boost::json::object> params;
  std::optional<std::string> cron;
  std::optional<std::string> timezone;
  std::optional<bool> enabled;
  std::optional<Overlap> overlap;
};

class Scheduler {
 public:
  Scheduler(Catalog& catalog, RunManager& runs, EventBus& bus, AutomationStore& store);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Throws AutomationError (invalid_schedule: a bad cron, time zone or
  // overlap) or CatalogError (agent_not_found, invalid_params).
  Schedule create(const ScheduleInput& input);
  // Throws AutomationError (schedule_not_found, invalid_schedule), CatalogError.
  Schedule update(const std::string& id, const ScheduleInput& change);
  // Throws AutomationError(schedule_not_found).
  void remove(const std::string& id);
  std::vector<Schedule> list() const;
  std::optional<Schedule> get(const std::string& id) const;
  // Starts a run of the schedule now (whatever its overlap and enabled
  // state). Throws AutomationError(schedule_not_found), RunError, CatalogError.
  Run trigger(const std::string& id);

  // No more scheduled starts. Idempotent.
  void stop();

  // Re-reads every schedule from a shared store (other hosts' changes) and
  // moves the due queue to match, then finishes the times that hosts which
  // stopped heartbeating claimed and did not record a run for (the store
  // gives each to one host); does nothing on a single-host store.
  void refresh();

  std::uint64_t scheduled_starts() const { return scheduled_starts_.load(); }
  std::uint64_t skipped_overlaps() const { return skipped_.load(); }
  std::size_t enabled_count() const;

 private:
  struct Entry {
    Schedule schedule;
    std::shared_ptr<const CronSchedule> cron;
  };
  static std::shared_ptr<const CronSchedule> parse(const std::string& cron,
                                                   const std::string& timezone);
  void arm_locked(Entry& entry, SysSeconds after);
  // Makes the entries match `stored` (the store's schedules); returns what
  // changed, to publish. Callers hold mutex_.
  std::vector<std::pair<ScheduleEventKind, Schedule>> refresh_locked(std::vector<Schedule> stored);
  // Makes the entry of `id` what the store holds. Callers hold mutex_.
  void sync_one_locked(const std::string& id);
  bool adopt_locked(const Schedule& stored);
  void publish_all(const std::vector<std::pair<ScheduleEventKind, Schedule>>& changes);
  void fire(const std::string& id);
  void load_locked(Timestamp now);  // the store's schedules into entries_, queued
  void recover_firings();
  void take_over_firings();
  void finish_firing(const Schedule& schedule, std::string_view why);
  void start_claimed(Schedule schedule, const std::string& run_id);
  void settle_firing_locked(const std::string& id, const std::string& run_id, bool linked);
  Run start_run(const Schedule& schedule, std::optional<std::string> instance_id = std::nullopt);
  void publish(ScheduleEventKind kind, const Schedule& schedule);

  Catalog& catalog_;
  RunManager& runs_;
  EventBus& bus_;
  AutomationStore& store_;
  std::atomic<std::uint64_t> scheduled_starts_{0};
  std::atomic<std::uint64_t> skipped_{0};

  mutable std::mutex mutex_;  // guards entries_; held for store writes of a schedule
  std::map<std::string, Entry> entries_;
  std::unique_ptr<DueQueue> due_;
};

}  // namespace nightshift
