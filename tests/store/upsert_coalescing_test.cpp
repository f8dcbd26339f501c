// Several upserts of one run in one batch are written once, with the last
// state, where the first one was; the result is what writing them one by one
// gave: same rows, same ids, same logs, same log counts, same refusals.
#include <gtest/gtest.h>

#include "store/run_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

std::int64_t row_id(const StoreFixture& fixture, const std::string& instance_id) {
  auto db = fixture.inspect();
  SQLite::Statement query(db, "SELECT id FROM runs WHERE instance_id = ?1");
  query.bind(1, instance_id);
  if (!query.executeStep()) return -1;
  return query.getColumn(0).getInt64();
}

nightshift::Run running(nightshift::Run run) {
  run.status = RunStatus::running;
  run.started_at = run.created_at + std::chrono::milliseconds(1);
  return run;
}

nightshift::Run completed(nightshift::Run run) {
  run = running(std::move(run));
  run.status = RunStatus::completed;
  run.ended_at = run.created_at + std::chrono::milliseconds(2);
  run.result = boost::json::object{{"echo", "done"}};
  run.progress = 1.0;
  return run;
}

TEST(RunStoreCoalescing, RepeatedUpsertsOfARunWriteItsLastStateOnce) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  RowWriteCounter counter(fixture);
  const nightshift::Run queued = queued_run();
  fixture.store().apply(
      {UpsertRun{queued}, UpsertRun{running(queued)}, UpsertRun{completed(queued)}});
  EXPECT_EQ(counter.writes_of(queued.instance_id), 1);
  const auto stored = fixture.store().get_run(queued.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::completed);
  EXPECT_EQ(stored->started_at, completed(queued).started_at);
  EXPECT_EQ(stored->ended_at, completed(queued).ended_at);
  EXPECT_EQ(stored->result, completed(queued).result);
  EXPECT_EQ(stored->progress, 1.0);
  EXPECT_TRUE(fixture.store().list_active(std::nullopt).empty());
  ASSERT_EQ(fixture.store().list_history({}).runs.size(), 1u);
}

TEST(RunStoreCoalescing, AnExistingRunIsUpdatedOnceWithTheLastState) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  const nightshift::Run queued = queued_run();
  fixture.put(queued);
  RowWriteCounter counter(fixture);
  fixture.store().apply({UpsertRun{running(queued)}, UpsertRun{completed(queued)}});
  EXPECT_EQ(counter.writes_of(queued.instance_id), 1);
  EXPECT_EQ(fixture.store().get_run(queued.instance_id)->status, RunStatus::completed);
}

TEST(RunStoreCoalescing, ARunKeepsTheIdOfItsFirstUpsertsPosition) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  const nightshift::Run first = queued_run();
  const nightshift::Run second = queued_run();
  fixture.store().apply({UpsertRun{first}, UpsertRun{second}, UpsertRun{completed(first)}});
  EXPECT_LT(row_id(fixture, first.instance_id), row_id(fixture, second.instance_id));
}

TEST(RunStoreCoalescing, LogsBetweenTheFirstAndLastUpsertOfANewRunAreAccepted) {
  StoreFixture fixture;
  const nightshift::Run queued = queued_run();
  nightshift::Run started = running(queued);
  started.log_count = 3;
  nightshift::Run done = completed(queued);
  done.log_count = 5;
  fixture.store().apply({UpsertRun{queued}, AppendLogs{queued.instance_id, log_entries(1, 3)},
                         UpsertRun{started}, AppendLogs{queued.instance_id, log_entries(4, 2)},
                         UpsertRun{done}});
  EXPECT_EQ(fixture.store().read_logs(queued.instance_id, 0, 100).size(), 5u);
  const auto stored = fixture.store().get_run(queued.instance_id);
  EXPECT_EQ(stored->status, RunStatus::completed);
  EXPECT_EQ(stored->log_count, 5u);
}

TEST(RunStoreCoalescing, TheLogCountIsTheHighestOfTheGroupAndNeverLowered) {
  StoreFixture fixture;
  nightshift::Run run = queued_run();
  run.log_count = 7;
  nightshift::Run later = running(run);
  later.log_count = 2;  // an older snapshot's count comes last
  fixture.store().apply({UpsertRun{run}, UpsertRun{later}});
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 7u);
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->status, RunStatus::running);

  fixture.store().apply({AppendLogs{run.instance_id, log_entries(1, 25)}});
  nightshift::Run done = completed(run);
  done.log_count = 3;
  fixture.store().apply({UpsertRun{later}, UpsertRun{done}});
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 25u);
}

TEST(RunStoreCoalescing, ADeleteBetweenUpsertsEndsTheFirstRowAndTheNextUpsertIsANewOne) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  const nightshift::Run other = queued_run();
  const nightshift::Run queued = queued_run();
  const nightshift::Run done = completed(queued);
  fixture.store().apply({UpsertRun{queued}, UpsertRun{done},
                         AppendLogs{queued.instance_id, log_entries(1, 4)},
                         DeleteRun{queued.instance_id}, UpsertRun{other}, UpsertRun{queued}});
  const auto stored = fixture.store().get_run(queued.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::queued);
  EXPECT_EQ(stored->log_count, 0u);
  EXPECT_TRUE(fixture.store().read_logs(queued.instance_id, 0, 100).empty());
  // Inserted afresh after `other`, not where the deleted row was.
  EXPECT_GT(row_id(fixture, queued.instance_id), row_id(fixture, other.instance_id));
  EXPECT_EQ(fixture.store().count_runs(), 2u);
}

TEST(RunStoreCoalescing, ADeleteSeesTheStateBeforeItNotALaterUpsert) {
  StoreFixture fixture;
  const nightshift::Run queued = queued_run();
  // The run is still active when the delete comes: refused, as one by one.
  EXPECT_THROW(fixture.store().apply({UpsertRun{queued}, DeleteRun{queued.instance_id},
                                      UpsertRun{completed(queued)}}),
               std::logic_error);
  EXPECT_EQ(fixture.store().count_runs(), 0u);
}

TEST(RunStoreCoalescing, APruneSeesTheStateBeforeItNotALaterUpsert) {
  StoreFixture fixture;
  const nightshift::Run queued = queued_run("installed:echo", at_ms(1000));
  const nightshift::Run ended_long_ago = completed(queued);
  // Ended long before the prune's max age: it would go if it were finished
  // when the prune runs, but then it was still queued.
  fixture.store().apply({UpsertRun{queued},
                         PruneRuns{RetentionPolicy{std::chrono::hours(1), 0}, at_ms(1'000'000'000)},
                         UpsertRun{ended_long_ago}});
  const auto stored = fixture.store().get_run(queued.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::completed);
}

TEST(RunStoreCoalescing, AnInvalidUpsertThatIsNotTheLastStillFailsTheBatch) {
  StoreFixture fixture;
  const nightshift::Run queued = queued_run();
  nightshift::Run no_end = completed(queued);
  no_end.ended_at.reset();
  EXPECT_THROW(
      fixture.store().apply({UpsertRun{queued}, UpsertRun{no_end}, UpsertRun{completed(queued)}}),
      std::invalid_argument);
  EXPECT_EQ(fixture.store().count_runs(), 0u);
}

TEST(RunStoreCoalescing, AnInvalidLastStateFailsTheBatch) {
  StoreFixture fixture;
  const nightshift::Run queued = queued_run();
  nightshift::Run no_end = completed(queued);
  no_end.ended_at.reset();
  EXPECT_THROW(fixture.store().apply({UpsertRun{queued}, UpsertRun{no_end}}),
               std::invalid_argument);
  EXPECT_EQ(fixture.store().count_runs(), 0u);
}

// Entries followed in the batch by a record that counts them need no
// UPDATE of their own: the record's upsert writes the count.
TEST(RunStoreCoalescing, EntriesCountedByALaterUpsertInTheBatchCostNoWriteOfTheirOwn) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  RowWriteCounter counter(fixture);
  const nightshift::Run queued = queued_run();
  nightshift::Run done = completed(queued);
  done.log_count = 3;
  fixture.store().apply(
      {UpsertRun{queued}, AppendLogs{queued.instance_id, log_entries(1, 3)}, UpsertRun{done}});
  EXPECT_EQ(counter.writes_of(queued.instance_id), 1);
  EXPECT_EQ(fixture.store().get_run(queued.instance_id)->log_count, 3u);
  EXPECT_EQ(fixture.store().read_logs(queued.instance_id, 0, 100).size(), 3u);
}

TEST(RunStoreCoalescing, EntriesThatNoLaterUpsertCountsRaiseTheCountThemselves) {
  StoreFixture fixture;
  nightshift::Run run = running(queued_run());
  run.log_count = 2;
  fixture.put(run);
  fixture.store().apply({AppendLogs{run.instance_id, log_entries(1, 2)}});
  // Alone in the batch: raised.
  fixture.store().apply({AppendLogs{run.instance_id, log_entries(3, 4)}});
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 6u);
  // Followed by a record whose count is behind them: raised all the same.
  nightshift::Run stale = run;
  stale.log_count = 6;
  fixture.store().apply({AppendLogs{run.instance_id, log_entries(7, 2)}, UpsertRun{stale}});
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 8u);
  // Counted by a record before them, not after: raised.
  nightshift::Run before = run;
  before.log_count = 9;
  fixture.store().apply({UpsertRun{before}, AppendLogs{run.instance_id, log_entries(9, 3)}});
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 11u);
  EXPECT_EQ(fixture.store().read_logs(run.instance_id, 0, 100).size(), 11u);
}

TEST(RunStoreCoalescing, AnUpsertBehindADeleteDoesNotCountTheEntriesBeforeIt) {
  StoreFixture fixture;
  nightshift::Run first = running(queued_run());
  fixture.put(first);
  nightshift::Run other = completed(queued_run());  // only finished runs are deleted
  fixture.put(other);
  nightshift::Run other_counted = other;
  other_counted.log_count = 50;
  // The later upsert of `other` comes after a delete of it: the entries
  // before the delete are raised by themselves (and then deleted with it),
  // and the new row has the upsert's count.
  fixture.store().apply({AppendLogs{other.instance_id, log_entries(1, 2)},
                         DeleteRun{other.instance_id}, UpsertRun{other_counted},
                         AppendLogs{first.instance_id, log_entries(1, 4)}});
  EXPECT_EQ(fixture.store().get_run(other.instance_id)->log_count, 50u);
  EXPECT_TRUE(fixture.store().read_logs(other.instance_id, 0, 100).empty());
  EXPECT_EQ(fixture.store().get_run(first.instance_id)->log_count, 4u);
}

TEST(RunStoreCoalescing, ABatchCanBeAppliedAgainAfterAFailedOne) {
  StoreFixture fixture;
  const nightshift::Run queued = queued_run();
  EXPECT_THROW(
      fixture.store().apply({UpsertRun{queued}, AppendLogs{generate_uuid(), log_entries(1, 1)},
                             UpsertRun{completed(queued)}}),
      std::runtime_error);
  fixture.store().apply({UpsertRun{queued}, UpsertRun{completed(queued)}});
  EXPECT_EQ(fixture.store().get_run(queued.instance_id)->status, RunStatus::completed);
}

}  // namespace
}  // namespace nightshift::testing
