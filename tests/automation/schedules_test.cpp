// Schedules on a real Host: validation, a real firing at the next minute
// (with overlap skip and queue), manual triggers, enable/disable, and
// persistence with one catch-up run after downtime.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <map>
#include <tuple>

#include "automation_fixture.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using testing::AutomationHost;
using testing::wait_until;

ScheduleInput input(const std::string& agent, const std::string& cron,
                    boost::json::object params = {}) {
  ScheduleInput in;
  in.agent_id = agent;
  in.cron = cron;
  in.params = std::move(params);
  return in;
}

std::size_t runs_of_schedule(AutomationHost& fixture, const std::string& schedule_id) {
  std::size_t count = 0;
  for (const nightshift::Run& run : fixture.all_runs())
    count += run.schedule_id == schedule_id ? 1 : 0;
  return count;
}

TEST(SchedulesTest, CreateRefusesBadCronTimezoneAgentAndParams) {
  AutomationHost fixture;
  fixture.open();
  Scheduler& schedules = fixture.automation().schedules();
  const auto code_of = [&](const ScheduleInput& in) -> std::string {
    try {
      schedules.create(in);
    } catch (const AutomationError& error) {
      return error.code() == AutomationError::Code::invalid_schedule ? "invalid_schedule" : "other";
    } catch (const CatalogError& error) {
      return error.code() == CatalogError::Code::agent_not_found ? "agent_not_found"
                                                                 : "invalid_params";
    }
    return "accepted";
  };
  EXPECT_EQ(code_of(input("installed:echo", "61 * * * *")), "invalid_schedule");
  ScheduleInput zone = input("installed:echo", "0 3 * * *");
  zone.timezone = "Europe/Atlantis";
  EXPECT_EQ(code_of(zone), "invalid_schedule");
  EXPECT_EQ(code_of(input("installed:nope", "0 3 * * *")), "agent_not_found");
  EXPECT_EQ(code_of(input("installed:sleep", "0 3 * * *", {{"seconds", "long"}})),
            "invalid_params");
  EXPECT_TRUE(schedules.list().empty());
}

TEST(SchedulesTest, CreatedScheduleHasItsNextTimeAndDefaults) {
  AutomationHost fixture;
  fixture.open();
  std::vector<ScheduleEventKind> events;
  std::mutex mutex;
  auto subscription = fixture.host().bus().subscribe([&](const EventPtr& event) {
    if (const auto* schedule = std::get_if<ScheduleEvent>(event.get())) {
      std::lock_guard lock(mutex);
      events.push_back(schedule->kind);
    }
  });
  ScheduleInput in = input("installed:echo", "0 3 * * *");
  in.timezone = "America/New_York";
  const Schedule created = fixture.automation().schedules().create(in);
  EXPECT_TRUE(created.enabled);
  EXPECT_EQ(created.overlap, Overlap::skip);
  EXPECT_EQ(created.timezone, "America/New_York");
  ASSERT_TRUE(created.next_run_at);
  EXPECT_GT(*created.next_run_at, now_ms());
  EXPECT_LE(*created.next_run_at, now_ms() + 25h);
  EXPECT_FALSE(created.last_run_id);

  ScheduleInput off;
  off.enabled = false;
  const Schedule disabled = fixture.automation().schedules().update(created.id, off);
  EXPECT_FALSE(disabled.enabled);
  EXPECT_FALSE(disabled.next_run_at) << "a disabled schedule has no next time";
  ScheduleInput on;
  on.enabled = true;
  EXPECT_EQ(fixture.automation().schedules().update(created.id, on).next_run_at,
            created.next_run_at);
  fixture.automation().schedules().remove(created.id);
  EXPECT_FALSE(fixture.automation().schedules().get(created.id));
  EXPECT_THROW(fixture.automation().schedules().remove(created.id), AutomationError);
  std::lock_guard lock(mutex);
  EXPECT_EQ(events, (std::vector<ScheduleEventKind>{
                        ScheduleEventKind::created, ScheduleEventKind::updated,
                        ScheduleEventKind::updated, ScheduleEventKind::deleted}));
}

TEST(SchedulesTest, TriggerStartsARunNowWithTheScheduleId) {
  AutomationHost fixture;
  fixture.open();
  ScheduleInput in = input("installed:echo", "0 3 1 1 *");
  in.task = std::string("nightly report");
  in.enabled = false;
  const Schedule schedule = fixture.automation().schedules().create(in);
  const nightshift::Run run = fixture.automation().schedules().trigger(schedule.id);
  EXPECT_EQ(run.schedule_id, std::optional<std::string>(schedule.id));
  EXPECT_EQ(run.task, std::optional<std::string>("nightly report"));
  EXPECT_EQ(fixture.finish(run).status, RunStatus::completed);
  EXPECT_EQ(fixture.automation().schedules().get(schedule.id)->last_run_id,
            std::optional<std::string>(run.instance_id));
  EXPECT_THROW(fixture.automation().schedules().trigger(generate_uuid()), AutomationError);
}

// Waits for the next minute boundary: up to a minute.
TEST(SchedulesTest, SchedulesFireAtTheirTimeSkippingOrQueueingOverAnActiveRun) {
  AutomationHost fixture;
  fixture.open();
  Scheduler& schedules = fixture.automation().schedules();
  const Schedule plain = schedules.create(input("installed:echo", "* * * * *"));
  ScheduleInput skip_in = input("installed:sleep", "* * * * *", {{"seconds", 120}});
  const Schedule skipping = schedules.create(skip_in);
  ScheduleInput queue_in = skip_in;
  queue_in.overlap = Overlap::queue;
  const Schedule queueing = schedules.create(queue_in);
  // Their previous runs are active when the minute comes.
  const nightshift::Run skip_first = schedules.trigger(skipping.id);
  const nightshift::Run queue_first = schedules.trigger(queueing.id);
  ASSERT_TRUE(plain.next_run_at);
  const Timestamp due = *plain.next_run_at;
  EXPECT_LE(due - now_ms(), 60s);

  const auto fired = fixture.wait_for_run(
      [&](const nightshift::Run& r) { return r.schedule_id == plain.id; }, 90s);
  ASSERT_TRUE(fired) << "the schedule did not fire";
  EXPECT_GE(fired->created_at, due);
  // A schedule's time is claimed (its next time moved on) before its run
  // starts, and the run is recorded as its last one (and counted) after:
  // wait for all of it; the checks below say what did not come.
  wait_until(
      [&] {
        return schedules.get(skipping.id)->next_run_at > due &&
               schedules.get(queueing.id)->next_run_at > due &&
               schedules.get(plain.id)->next_run_at > due &&
               schedules.get(plain.id)->last_run_id.has_value() &&
               runs_of_schedule(fixture, queueing.id) == 2u &&
               fixture.automation().stats().scheduled_starts == 2u &&
               fixture.automation().stats().scheduled_skips == 1u;
      },
      20s);
  EXPECT_EQ(*schedules.get(plain.id)->next_run_at, due + 60s);
  EXPECT_EQ(schedules.get(plain.id)->last_run_id, std::optional<std::string>(fired->instance_id));
  EXPECT_EQ(runs_of_schedule(fixture, skipping.id), 1u)
      << "skip: nothing started over the active run";
  EXPECT_EQ(schedules.get(skipping.id)->last_run_id,
            std::optional<std::string>(skip_first.instance_id));
  EXPECT_EQ(runs_of_schedule(fixture, queueing.id), 2u) << "queue: a second run beside the first";
  const AutomationStats stats = fixture.automation().stats();
  EXPECT_EQ(stats.scheduled_starts, 2u);
  EXPECT_EQ(stats.scheduled_skips, 1u);
  for (const nightshift::Run& run : fixture.runs().active()) {
    if (run.agent_id == "installed:sleep") fixture.runs().stop(run.instance_id);
  }
}

TEST(SchedulesTest, SchedulesPersistAndAMissedTimeStartsOneRunAfterDowntime) {
  AutomationHost fixture;
  fixture.open();
  ScheduleInput hourly = input("installed:echo", "@hourly");
  hourly.task = std::string("catch up");
  const Schedule missed = fixture.automation().schedules().create(hourly);
  ScheduleInput off = input("installed:echo", "@hourly");
  off.enabled = false;
  const Schedule disabled = fixture.automation().schedules().create(off);
  fixture.close();
  {
    // The host was down for three of its times.
    SQLite::Database db(fixture.database().string(), SQLite::OPEN_READWRITE);
    SQLite::Statement past(db, "UPDATE schedules SET next_run_at = ?1 WHERE id = ?2");
    past.bind(1, static_cast<std::int64_t>((now_ms() - 3h - 5min).time_since_epoch().count()));
    past.bind(2, missed.id);
    ASSERT_EQ(past.exec(), 1);
  }
  fixture.open();
  const auto after = fixture.automation().schedules().list();
  ASSERT_EQ(after.size(), 2u);
  const auto caught_up =
      fixture.wait_for_run([&](const nightshift::Run& r) { return r.schedule_id == missed.id; });
  ASSERT_TRUE(caught_up);
  EXPECT_EQ(caught_up->task, std::optional<std::string>("catch up"));
  ASSERT_TRUE(wait_until([&] {
    const auto schedule = fixture.automation().schedules().get(missed.id);
    return schedule->last_run_id == caught_up->instance_id && schedule->next_run_at > now_ms();
  }));
  EXPECT_EQ(runs_of_schedule(fixture, missed.id), 1u) << "one run, not one per missed time";
  const auto still_off = fixture.automation().schedules().get(disabled.id);
  EXPECT_FALSE(still_off->enabled);
  EXPECT_FALSE(still_off->next_run_at);
  EXPECT_EQ(runs_of_schedule(fixture, disabled.id), 0u);
}

// The host stopped between claiming a time and recording its run: the claim
// named the run, so the next start starts that run, once; a run that was
// recorded is only linked; a mark left by another host is not this host's.
TEST(SchedulesTest, ATimeClaimedBeforeTheHostStoppedStartsItsNamedRunAtTheNextStart) {
  AutomationHost fixture;
  fixture.open();
  ScheduleInput daily = input("installed:echo", "@daily");
  daily.task = std::string("claimed, then the host stopped");
  const Schedule lost = fixture.automation().schedules().create(daily);
  const Schedule linked =
      fixture.automation().schedules().create(input("installed:echo", "@daily"));
  const Schedule elsewhere =
      fixture.automation().schedules().create(input("installed:echo", "@daily"));
  StartRequest of_linked;
  of_linked.agent_id = "installed:echo";
  of_linked.schedule_id = linked.id;
  const std::string recorded = fixture.runs().start(of_linked).instance_id;
  const std::string host = fixture.runs().host_name();
  fixture.close();

  const std::string lost_run = generate_uuid();
  {
    SQLite::Database db(fixture.database().string(), SQLite::OPEN_READWRITE);
    SQLite::Statement mark(
        db, "UPDATE schedules SET firing_run_id = ?1, firing_host = ?2 WHERE id = ?3");
    for (const auto& [schedule, run, by] :
         {std::tuple{lost.id, lost_run, host}, std::tuple{linked.id, recorded, host},
          std::tuple{elsewhere.id, std::string("run-of-another-host"), host + "-other"}}) {
      mark.bind(1, run);
      mark.bind(2, by);
      mark.bind(3, schedule);
      ASSERT_EQ(mark.exec(), 1);
      mark.reset();
    }
  }
  fixture.open();
  const auto started =
      fixture.wait_for_run([&](const nightshift::Run& r) { return r.instance_id == lost_run; });
  ASSERT_TRUE(started) << "the claimed time's run was not started";
  EXPECT_EQ(started->schedule_id, std::optional<std::string>(lost.id));
  EXPECT_EQ(started->task, std::optional<std::string>("claimed, then the host stopped"));
  ASSERT_TRUE(wait_until([&] {
    return fixture.automation().schedules().get(lost.id)->last_run_id ==
           std::optional<std::string>(lost_run);
  }));
  EXPECT_EQ(fixture.automation().schedules().get(linked.id)->last_run_id,
            std::optional<std::string>(recorded));
  EXPECT_EQ(runs_of_schedule(fixture, linked.id), 1u) << "a recorded run is not started again";
  EXPECT_EQ(runs_of_schedule(fixture, elsewhere.id), 0u);
  const auto marks = [&] {
    std::map<std::string, std::optional<std::string>> out;
    SQLite::Database db(fixture.database().string(), SQLite::OPEN_READONLY);
    SQLite::Statement read(db, "SELECT id, firing_run_id FROM schedules");
    while (read.executeStep()) {
      out[read.getColumn(0).getString()] =
          read.getColumn(1).isNull() ? std::nullopt
                                     : std::optional<std::string>(read.getColumn(1).getString());
    }
    return out;
  };
  auto after = marks();
  EXPECT_FALSE(after[lost.id]);
  EXPECT_FALSE(after[linked.id]);
  EXPECT_EQ(after[elsewhere.id], std::optional<std::string>("run-of-another-host"));

  // Started once: another restart starts nothing more.
  fixture.close();
  fixture.open();
  EXPECT_EQ(runs_of_schedule(fixture, lost.id), 1u);
  EXPECT_EQ(runs_of_schedule(fixture, linked.id), 1u);
}

}  // namespace
}  // namespace nightshift
