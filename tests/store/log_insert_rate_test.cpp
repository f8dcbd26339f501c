// A measurement, not a test of speed: disabled by default, run by hand with
//   store_tests --gtest_also_run_disabled_tests --gtest_filter='*InsertRate*'
// It writes log-entry batches the way the writer does for 100 busy runs
// (one apply per batch, cached statements) and prints entries per second.
#include <gtest/gtest.h>

#include <cstdio>

#include "store/run_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

TEST(StoreMeasurement, DISABLED_LogEntryInsertRate) {
  StoreFixture fixture;
  constexpr int kRuns = 100;
  constexpr int kEntriesPerRunPerBatch = 100;  // 10,000 entries per transaction
  constexpr int kBatches = 200;                // 2,000,000 entries
  std::vector<nightshift::Run> runs;
  std::vector<WriteOp> create;
  for (int i = 0; i < kRuns; ++i) {
    runs.push_back(queued_run());
    create.push_back(UpsertRun{runs.back()});
  }
  fixture.store().apply(create);

  std::vector<std::vector<WriteOp>> batches;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<WriteOp> batch;
    for (const nightshift::Run& run : runs) {
      auto entries = log_entries(static_cast<std::uint64_t>(b * kEntriesPerRunPerBatch + 1),
                                 kEntriesPerRunPerBatch);
      for (auto& entry : entries) entry.message = "tick " + std::to_string(entry.seq) + " of work";
      batch.push_back(AppendLogs{run.instance_id, std::move(entries)});
    }
    batches.push_back(std::move(batch));
  }
  const auto start = std::chrono::steady_clock::now();
  for (const auto& batch : batches) fixture.store().apply(batch);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  const double entries = double(kRuns) * kEntriesPerRunPerBatch * kBatches;
  std::printf("log entries: %.0f in %.2f s = %.0f entries/s (%d per transaction)\n", entries,
              took.count(), entries / took.count(), kRuns * kEntriesPerRunPerBatch);
  EXPECT_EQ(fixture.store().read_logs(runs.front().instance_id, 0, 1'000'000).size(),
            static_cast<std::size_t>(kEntriesPerRunPerBatch * kBatches));
}

}  // namespace
}  // namespace nightshift::testing
