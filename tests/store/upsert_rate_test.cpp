// A measurement, not a test of speed: disabled by default, run by hand with
//   store_tests --gtest_also_run_disabled_tests --gtest_filter='*UpsertRate*'
// It writes batches shaped like the engine's no-op runs (each run: a queued
// upsert in one batch; running, one log entry and the final upsert in the
// next) and prints runs per second, by wall clock and by CPU time.
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>

#include "store/run_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

// Bytes this process has handed to write calls (Linux), which unlike time
// does not depend on what else the machine is doing: the WAL frames the
// commits wrote plus the checkpoints' copies. 0 where unknown.
double bytes_written() {
  std::ifstream io("/proc/self/io");
  std::string key;
  double value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

TEST(StoreMeasurement, DISABLED_RunUpsertRate) {
  StoreFixture fixture;
  constexpr int kRunsPerBatch = 64;
  constexpr int kBatches = 1000;  // 64,000 runs
  std::vector<std::vector<WriteOp>> batches(kBatches + 1);
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kRunsPerBatch; ++i) {
      nightshift::Run run = queued_run("installed:echo", at_ms(1'000'000 + b * kRunsPerBatch + i));
      batches[b].emplace_back(std::in_place_type<UpsertRun>, run);
      std::vector<WriteOp>& next = batches[b + 1];
      run.status = RunStatus::running;
      run.started_at = run.created_at;
      next.emplace_back(std::in_place_type<UpsertRun>, run);
      next.push_back(AppendLogs{run.instance_id, log_entries(1, 1)});
      run.status = RunStatus::completed;
      run.ended_at = run.created_at + std::chrono::milliseconds(1);
      run.log_count = 1;
      run.result = boost::json::object{{"echo", "x"}};
      next.emplace_back(std::in_place_type<UpsertRun>, run);
    }
  }
  const double written_before = bytes_written();
  const std::clock_t cpu_start = std::clock();
  const auto start = std::chrono::steady_clock::now();
  for (const auto& batch : batches) fixture.store().apply(batch);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  const double cpu = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double written = bytes_written() - written_before;
  const double runs = double(kRunsPerBatch) * kBatches;
  std::printf(
      "runs: %.0f in %.2f s = %.0f runs/s wall, %.0f runs/s of CPU time, %.0f bytes written per "
      "run\n",
      runs, took.count(), runs / took.count(), runs / cpu, written / runs);
  EXPECT_EQ(fixture.store().list_history({}).runs.size(), 50u);
  EXPECT_EQ(fixture.store().count_runs(), static_cast<std::size_t>(runs));
}

}  // namespace
}  // namespace nightshift::testing
