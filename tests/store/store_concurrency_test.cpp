// Readers on many threads while the writer thread writes: each read sees a
// consistent snapshot (WAL), and nothing races (run under the tsan preset).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "store/store_writer.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

TEST(StoreConcurrency, ReadersOnManyThreadsSeeConsistentDataWhileTheWriterWrites) {
  StoreFixture fixture;
  constexpr int kRuns = 4;
  constexpr int kBatchesPerRun = 40;
  constexpr int kEntriesPerBatch = 25;
  std::vector<nightshift::Run> runs;
  for (int i = 0; i < kRuns; ++i) runs.push_back(queued_run(i % 2 ? "installed:a" : "installed:b"));

  std::atomic<bool> writing{true};
  std::atomic<int> inconsistencies{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 6; ++r) {
    readers.emplace_back([&, r] {
      std::uint64_t after = 0;
      const nightshift::Run& mine = runs[static_cast<std::size_t>(r % kRuns)];
      while (writing.load() || after < kBatchesPerRun * kEntriesPerBatch) {
        // The log grows without gaps: every page continues exactly.
        for (const auto& entry : fixture.store().read_logs(mine.instance_id, after, 50)) {
          if (entry.seq != after + 1) ++inconsistencies;
          after = entry.seq;
        }
        const auto stored = fixture.store().get_run(mine.instance_id);
        if (stored && stored->log_count < after) ++inconsistencies;
        // Runs only move from active to history, and history is read first,
        // so no run can show up in both.
        const auto history = fixture.store().list_history({});
        const auto active = fixture.store().list_active(std::nullopt);
        for (const auto& finished : history.runs) {
          for (const auto& running : active) {
            if (finished.instance_id == running.instance_id) ++inconsistencies;
          }
        }
        ++reads;
        if (!writing.load() && after >= kBatchesPerRun * kEntriesPerBatch) break;
      }
    });
  }
  {
    StoreWriter writer(fixture.store(), nullptr);
    for (const nightshift::Run& run : runs) writer.submit(UpsertRun{run});
    for (int b = 0; b < kBatchesPerRun; ++b) {
      for (nightshift::Run& run : runs) {
        const auto first = static_cast<std::uint64_t>(b * kEntriesPerBatch + 1);
        writer.submit(AppendLogs{run.instance_id, log_entries(first, kEntriesPerBatch)});
        run.log_count = first + kEntriesPerBatch - 1;
        if (b == kBatchesPerRun - 1) {
          run.status = RunStatus::completed;
          run.ended_at = run.created_at + std::chrono::seconds(1);
        }
        writer.submit(UpsertRun{run});
      }
    }
    writer.flush();
    writing = false;
  }
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(inconsistencies.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(fixture.store().list_history({}).runs.size(), static_cast<std::size_t>(kRuns));
  EXPECT_EQ(fixture.store().integrity_check(), "ok");
}

}  // namespace
}  // namespace nightshift::testing
