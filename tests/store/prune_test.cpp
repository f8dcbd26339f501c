// Retention: a finished run goes only when it is both older than max_age and
// not among the newest keep_at_least finished runs.
#include <gtest/gtest.h>

#include "store/run_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

using std::chrono::hours;

const Timestamp kNow = at_ms(1'800'000'000'000);

// `old_runs` ended 40 days ago (oldest first), `recent_runs` ended in the last
// hours; each has three log entries. Returns them oldest first.
std::vector<nightshift::Run> seed(StoreFixture& fixture, int old_runs, int recent_runs) {
  std::vector<nightshift::Run> runs;
  std::vector<WriteOp> ops;
  for (int i = 0; i < old_runs + recent_runs; ++i) {
    const Timestamp ended = i < old_runs ? kNow - hours(24 * 40) + std::chrono::seconds(i)
                                         : kNow - hours(old_runs + recent_runs - i);
    runs.push_back(finished_run("installed:echo", RunStatus::completed, ended));
    ops.push_back(UpsertRun{runs.back()});
    ops.push_back(AppendLogs{runs.back().instance_id, log_entries(1, 3)});
  }
  fixture.store().apply(ops);
  return runs;
}

RetentionPolicy policy(int days, std::size_t keep_at_least) {
  return RetentionPolicy{hours(24 * days), keep_at_least};
}

std::int64_t log_rows(const StoreFixture& fixture) {
  return fixture.count_rows("logs");
}

TEST(RunStorePrune, MaxAgeWinsWhenKeepAtLeastIsSmall) {
  StoreFixture fixture;
  const auto runs = seed(fixture, 10, 5);
  EXPECT_EQ(fixture.store().prune(policy(30, 3), kNow), 10u);
  EXPECT_EQ(fixture.store().count_runs(), 5u);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(fixture.store().get_run(runs[i].instance_id));
  for (int i = 10; i < 15; ++i) EXPECT_TRUE(fixture.store().get_run(runs[i].instance_id));
  EXPECT_EQ(log_rows(fixture), 5 * 3);
}

TEST(RunStorePrune, KeepAtLeastWinsOverMaxAge) {
  StoreFixture fixture;
  const auto runs = seed(fixture, 10, 5);
  EXPECT_EQ(fixture.store().prune(policy(30, 12), kNow), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(fixture.store().get_run(runs[i].instance_id));
  for (int i = 3; i < 15; ++i) EXPECT_TRUE(fixture.store().get_run(runs[i].instance_id));
  EXPECT_EQ(log_rows(fixture), 12 * 3);
}

TEST(RunStorePrune, NothingGoesWhileFewerRunsThanKeepAtLeastExist) {
  StoreFixture fixture;
  seed(fixture, 10, 0);
  EXPECT_EQ(fixture.store().prune(policy(30, 10), kNow), 0u);
  EXPECT_EQ(fixture.store().prune(policy(30, 100), kNow), 0u);
  EXPECT_EQ(fixture.store().count_runs(), 10u);
}

TEST(RunStorePrune, NothingYoungerThanMaxAgeGoesEvenWithKeepAtLeastZero) {
  StoreFixture fixture;
  seed(fixture, 4, 6);
  EXPECT_EQ(fixture.store().prune(policy(30, 0), kNow), 4u);
  EXPECT_EQ(fixture.store().count_runs(), 6u);
}

TEST(RunStorePrune, ActiveRunsAreNeverPruned) {
  StoreFixture fixture;
  seed(fixture, 3, 0);
  nightshift::Run ancient = queued_run("installed:sleep", kNow - hours(24 * 400));
  ancient.status = RunStatus::running;
  fixture.put(ancient);
  EXPECT_EQ(fixture.store().prune(policy(1, 0), kNow), 3u);
  EXPECT_TRUE(fixture.store().get_run(ancient.instance_id));
}

TEST(RunStorePrune, ABigPruneRunsInBoundedChunksAndPruneFinishesIt) {
  StoreFixture fixture;
  seed(fixture, 700, 2);
  // Through apply, one PruneRuns op deletes one bounded chunk.
  fixture.store().apply({PruneRuns{policy(30, 0), kNow}});
  const std::size_t after_one_chunk = fixture.store().count_runs();
  EXPECT_GT(after_one_chunk, 2u);
  EXPECT_LT(after_one_chunk, 702u);
  // prune() loops over chunks until done.
  EXPECT_EQ(fixture.store().prune(policy(30, 0), kNow), after_one_chunk - 2);
  EXPECT_EQ(fixture.store().count_runs(), 2u);
  EXPECT_EQ(log_rows(fixture), 2 * 3);
  EXPECT_EQ(fixture.store().integrity_check(), "ok");
}

}  // namespace
}  // namespace nightshift::testing
