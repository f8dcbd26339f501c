// UpdateProgress: a live run's progress, log count and usage written without
// the rest of its record, by both stores.
#include <gtest/gtest.h>

#include "store/run_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

nightshift::Run running_with_params() {
  nightshift::Run run = queued_run();
  run.status = RunStatus::running;
  run.started_at = run.created_at + std::chrono::milliseconds(1);
  run.task = "the task";
  run.params = boost::json::object{{"seconds", 600}};
  run.host = "this-host";
  return run;
}

TEST(ProgressUpdate, WritesProgressUsageAndCountAndLeavesTheRestOfTheRecord) {
  StoreFixture fixture;
  ASSERT_TRUE(fixture.store().writes_progress_alone());
  const nightshift::Run run = running_with_params();
  fixture.put(run);
  fixture.store().apply({AppendLogs{run.instance_id, log_entries(1, 3)},
                         UpdateProgress{run.instance_id, 0.5, 3, TokenUsage{10, 20}}});
  expect_stored_progress(fixture.store(), run.instance_id, 0.5, 3, TokenUsage{10, 20});
  const auto stored = fixture.store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::running);
  EXPECT_EQ(stored->task, run.task);
  EXPECT_EQ(stored->params, run.params);
  EXPECT_EQ(stored->host, run.host);
  EXPECT_EQ(stored->started_at, run.started_at);
  EXPECT_EQ(fixture.store().read_logs(run.instance_id, 0, 10).size(), 3u);
}

TEST(ProgressUpdate, EntriesItCountsCostNoWriteOfTheirOwn) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  const nightshift::Run run = running_with_params();
  fixture.put(run);
  RowWriteCounter counter(fixture);
  fixture.store().apply({AppendLogs{run.instance_id, log_entries(1, 4)},
                         UpdateProgress{run.instance_id, 0.25, 4, std::nullopt}});
  EXPECT_EQ(counter.writes_of(run.instance_id), 1);
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 4u);
}

TEST(ProgressUpdate, NeverLowersTheLogCount) {
  StoreFixture fixture;
  nightshift::Run run = running_with_params();
  run.log_count = 7;
  fixture.put(run);
  fixture.store().apply({UpdateProgress{run.instance_id, 0.9, 2, std::nullopt}});
  expect_stored_progress(fixture.store(), run.instance_id, 0.9, 7, std::nullopt);
}

TEST(ProgressUpdate, LeavesAFinishedRunAsItIs) {
  StoreFixture fixture;
  nightshift::Run run = running_with_params();
  run.status = RunStatus::completed;
  run.ended_at = run.created_at + std::chrono::milliseconds(2);
  run.progress = 1.0;
  run.log_count = 2;
  fixture.put(run);
  fixture.store().apply({UpdateProgress{run.instance_id, 0.3, 9, TokenUsage{1, 1}}});
  expect_stored_progress(fixture.store(), run.instance_id, 1.0, 2, std::nullopt);
}

TEST(ProgressUpdate, OfARunTheStoreDoesNotHoldWritesNothing) {
  StoreFixture fixture;
  const std::string unknown = generate_uuid();
  EXPECT_NO_THROW(fixture.store().apply({UpdateProgress{unknown, 0.5, 1, std::nullopt}}));
  EXPECT_FALSE(fixture.store().get_run(unknown));
  EXPECT_EQ(fixture.store().count_runs(), 0u);
}

// A record of the run later in the batch was taken later: it carries the
// run's progress as it was then, and the update before it is not written.
TEST(ProgressUpdate, IsSkippedWhenALaterRecordOfItsRunIsInTheBatch) {
  StoreFixture fixture;
  nightshift::Run run = running_with_params();
  fixture.put(run);
  std::optional<RowWriteCounter> counter;
  if (!on_postgresql()) counter.emplace(fixture);  // (it counts in the SQLite file)
  nightshift::Run later = run;
  later.progress = 0.6;
  later.log_count = 2;
  fixture.store().apply({UpdateProgress{run.instance_id, 0.4, 1, std::nullopt},
                         AppendLogs{run.instance_id, log_entries(1, 2)}, UpsertRun{later}});
  if (counter) {
    EXPECT_EQ(counter->writes_of(run.instance_id), 1);
  }
  expect_stored_progress(fixture.store(), run.instance_id, 0.6, 2, std::nullopt);

  // After the record, the update is the newer: written.
  nightshift::Run before = later;
  before.progress = 0.7;
  fixture.store().apply({UpsertRun{before}, UpdateProgress{run.instance_id, 0.8, 2, std::nullopt}});
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->progress, std::optional<double>(0.8));
}

// Several updates of one run in a batch: the newest is what is stored.
TEST(ProgressUpdate, TheNewestOfSeveralInOneBatchIsStored) {
  StoreFixture fixture;
  const nightshift::Run run = running_with_params();
  const nightshift::Run other = running_with_params();
  fixture.put(run);
  fixture.put(other);
  fixture.store().apply({UpdateProgress{run.instance_id, 0.1, 1, std::nullopt},
                         UpdateProgress{other.instance_id, 0.5, 0, TokenUsage{3, 4}},
                         UpdateProgress{run.instance_id, 0.2, 2, TokenUsage{5, 6}},
                         UpdateProgress{run.instance_id, 0.3, 3, TokenUsage{7, 8}}});
  expect_stored_progress(fixture.store(), run.instance_id, 0.3, 3, TokenUsage{7, 8});
  expect_stored_progress(fixture.store(), other.instance_id, 0.5, 0, TokenUsage{3, 4});
}

}  // namespace
}  // namespace nightshift::testing
