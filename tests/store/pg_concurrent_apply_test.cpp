// The PostgreSQL store applies batches from several threads at once (the
// run manager's start writers beside its main writer), each in a
// transaction on a connection of its own: nothing is lost or mixed up.
#include <gtest/gtest.h>

#include <thread>

#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

TEST(PostgresConcurrentApply, BatchesFromSeveralThreadsAllLand) {
  StoreFixture fixture;
  constexpr int kThreads = 4;
  constexpr int kBatches = 25;
  constexpr int kRunsPerBatch = 4;
  std::vector<std::vector<std::string>> ids(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int b = 0; b < kBatches; ++b) {
          std::vector<WriteOp> ops;
          for (int r = 0; r < kRunsPerBatch; ++r) {
            nightshift::Run run = queued_run();
            ids[static_cast<std::size_t>(t)].push_back(run.instance_id);
            ops.push_back(UpsertRun{run});
            ops.push_back(AppendLogs{run.instance_id, log_entries(1, 3)});
            run.status = RunStatus::completed;
            run.started_at = at_ms(1'000'100);
            run.ended_at = at_ms(1'000'200);
            run.log_count = 3;
            ops.push_back(UpsertRun{run});
          }
          fixture.store().apply(ops);
        }
      });
    }
  }
  EXPECT_EQ(fixture.store().count_runs(),
            static_cast<std::size_t>(kThreads * kBatches * kRunsPerBatch));
  EXPECT_EQ(fixture.count_rows("logs"), kThreads * kBatches * kRunsPerBatch * 3);
  for (const auto& list : ids) {
    for (const std::string& id : list) {
      const auto run = fixture.store().get_run(id);
      ASSERT_TRUE(run.has_value()) << id;
      EXPECT_EQ(run->status, RunStatus::completed) << id;
      EXPECT_EQ(run->log_count, 3u) << id;
      EXPECT_FALSE(run->error.has_value()) << id;
    }
  }
  EXPECT_EQ(fixture.store().integrity_check(), "ok");
}

}  // namespace
}  // namespace nightshift::testing
