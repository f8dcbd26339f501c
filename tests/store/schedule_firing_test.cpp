// A schedule's firing mark, on either store: the claim of a time names the
// run it will start and the host that claimed it, until that run is linked
// from the schedule or the time is given up; edits leave the mark alone.
#include <gtest/gtest.h>

#include "store/automation_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

using namespace std::chrono_literals;

TEST(ScheduleFiringStore, AClaimMarksItsRunUntilThatRunIsLinked) {
  StoreFixture fixture;
  const auto store = open_test_automation_store(fixture.path(), fixture.database());
  const Timestamp due = now_ms();
  Schedule s = schedule_due_at(due);
  store->put_schedule(s);
  EXPECT_FALSE(store->get_schedule(s.id)->firing_run_id) << "a new schedule has no mark";

  const auto claimed = store->claim_schedule_time(s.id, due, due + 5min, "run-1", "host-a");
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->firing_run_id, std::optional<std::string>("run-1"));
  EXPECT_EQ(claimed->firing_host, std::optional<std::string>("host-a"));

  // An edit made from a copy without the mark keeps it.
  s.task = "edited";
  s.next_run_at = due + 5min;
  store->put_schedule(s);
  auto stored = store->get_schedule(s.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->task, std::optional<std::string>("edited"));
  EXPECT_EQ(stored->firing_run_id, std::optional<std::string>("run-1"));
  EXPECT_EQ(stored->firing_host, std::optional<std::string>("host-a"));
  ASSERT_EQ(store->list_schedules().size(), 1u);
  EXPECT_EQ(store->list_schedules()[0].firing_run_id, std::optional<std::string>("run-1"));

  // Another run linked (a "run now" meanwhile) leaves the mark.
  store->set_schedule_last_run(s.id, "run-now");
  stored = store->get_schedule(s.id);
  EXPECT_EQ(stored->last_run_id, std::optional<std::string>("run-now"));
  EXPECT_EQ(stored->firing_run_id, std::optional<std::string>("run-1"));
  // The marked run linked: the mark is gone.
  store->set_schedule_last_run(s.id, "run-1");
  stored = store->get_schedule(s.id);
  EXPECT_EQ(stored->last_run_id, std::optional<std::string>("run-1"));
  EXPECT_FALSE(stored->firing_run_id);
  EXPECT_FALSE(stored->firing_host);
}

TEST(ScheduleFiringStore, AGivenUpTimeClearsOnlyItsOwnMark) {
  StoreFixture fixture;
  const auto store = open_test_automation_store(fixture.path(), fixture.database());
  const Timestamp due = now_ms();
  const Schedule s = schedule_due_at(due);
  store->put_schedule(s);
  ASSERT_TRUE(store->claim_schedule_time(s.id, due, due + 5min, "run-1", "host-a"));
  // A later time's claim names its own run; giving up the earlier one
  // must not clear it.
  ASSERT_TRUE(store->claim_schedule_time(s.id, due + 5min, due + 10min, "run-2", "host-a"));
  store->clear_schedule_firing(s.id, "run-1");
  EXPECT_EQ(store->get_schedule(s.id)->firing_run_id, std::optional<std::string>("run-2"));
  store->clear_schedule_firing(s.id, "run-2");
  const auto stored = store->get_schedule(s.id);
  EXPECT_FALSE(stored->firing_run_id);
  EXPECT_FALSE(stored->firing_host);
  EXPECT_FALSE(stored->last_run_id) << "a time given up links no run";
  // A claim that loses marks nothing.
  EXPECT_FALSE(store->claim_schedule_time(s.id, due, due + 5min, "run-3", "host-b"));
  EXPECT_FALSE(store->get_schedule(s.id)->firing_run_id);
}

}  // namespace
}  // namespace nightshift::testing
