// The writer thread: group commit, order of on_committed, flush, waiting
// across threads, failures, and draining on destruction.
#include "store/store_writer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

// Holds the writer thread inside on_committed until released, so a test can
// queue work while a commit is in progress.
class Gate {
 public:
  void wait_open() {
    std::unique_lock lock(mutex_);
    entered_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void wait_entered() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return entered_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool entered_ = false;
  bool open_ = false;
};

// Collects what on_committed saw; read by the test after flush().
class CommitLog {
 public:
  void record(const std::vector<WriteOp>& ops) {
    std::lock_guard lock(mutex_);
    batches_.push_back(ops.size());
    for (const auto& op : ops) {
      if (const auto* logs = std::get_if<AppendLogs>(&op)) {
        for (const auto& entry : logs->entries) seqs_.push_back(entry.seq);
      }
      if (const auto* upsert = std::get_if<UpsertRun>(&op)) ids_.push_back(upsert->run.instance_id);
    }
  }
  std::vector<std::uint64_t> seqs() const {
    std::lock_guard lock(mutex_);
    return seqs_;
  }
  std::vector<std::string> ids() const {
    std::lock_guard lock(mutex_);
    return ids_;
  }
  std::vector<std::size_t> batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> seqs_;
  std::vector<std::string> ids_;
  std::vector<std::size_t> batches_;
};

TEST(StoreWriter, SubmitAndWaitReturnsOnceTheRunIsDurable) {
  StoreFixture fixture;
  StoreWriter writer(fixture.store(), nullptr);
  const nightshift::Run run = queued_run();
  writer.submit_and_wait(UpsertRun{run});
  EXPECT_TRUE(fixture.store().get_run(run.instance_id));
  EXPECT_GE(writer.committed_batches(), 1u);
}

TEST(StoreWriter, OnCommittedSeesEveryOpInSubmissionOrder) {
  StoreFixture fixture;
  CommitLog seen;
  const nightshift::Run run = queued_run();
  StoreWriter writer(fixture.store(), [&seen](const auto& ops) { seen.record(ops); });
  writer.submit(UpsertRun{run});
  for (std::uint64_t seq = 1; seq <= 2000; ++seq) {
    writer.submit(AppendLogs{run.instance_id, log_entries(seq, 1)});
  }
  writer.flush();
  const auto seqs = seen.seqs();
  ASSERT_EQ(seqs.size(), 2000u);
  for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1);
  EXPECT_EQ(fixture.store().read_logs(run.instance_id, 0, 5000).size(), 2000u);
  EXPECT_EQ(writer.pending_ops(), 0u);
}

TEST(StoreWriter, OpsSubmittedDuringACommitGoIntoTheNextTransactionTogether) {
  StoreFixture fixture;
  Gate gate;
  CommitLog seen;
  std::atomic<bool> first{true};
  StoreWriter writer(fixture.store(), [&](const auto& ops) {
    seen.record(ops);
    if (first.exchange(false)) gate.wait_open();
  });
  writer.submit(UpsertRun{queued_run()});
  gate.wait_entered();  // the first batch is committed, the writer is busy

  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&writer] {
      for (int i = 0; i < kPerThread; ++i) writer.submit(UpsertRun{queued_run()});
    });
  }
  for (auto& thread : submitters) thread.join();
  EXPECT_EQ(writer.pending_ops(), static_cast<std::size_t>(kThreads * kPerThread));
  gate.open();
  writer.flush();
  EXPECT_EQ(seen.batches(), (std::vector<std::size_t>{1, kThreads * kPerThread}));
  EXPECT_EQ(writer.committed_batches(), 2u);
  EXPECT_EQ(fixture.store().count_runs(), static_cast<std::size_t>(1 + kThreads * kPerThread));
}

TEST(StoreWriter, OnCommittedSeesEveryUpsertOfARunUnchangedEvenWhenTheStoreWritesItOnce) {
  StoreFixture fixture;
  Gate gate;
  std::mutex seen_mutex;
  std::vector<std::vector<WriteOp>> seen;  // every committed batch, as handed over
  std::atomic<bool> first{true};
  StoreWriter writer(fixture.store(), [&](const std::vector<WriteOp>& ops) {
    {
      std::lock_guard lock(seen_mutex);
      seen.push_back(ops);
    }
    if (first.exchange(false)) gate.wait_open();
  });
  writer.submit(UpsertRun{queued_run()});
  gate.wait_entered();  // the next ops all go into one batch

  nightshift::Run run = queued_run();
  std::vector<WriteOp> submitted;
  submitted.push_back(UpsertRun{run});
  submitted.push_back(AppendLogs{run.instance_id, log_entries(1, 2)});
  run.status = RunStatus::running;
  run.started_at = run.created_at;
  run.log_count = 2;
  submitted.push_back(UpsertRun{run});
  submitted.push_back(AppendLogs{run.instance_id, log_entries(3, 1)});
  run.status = RunStatus::completed;
  run.ended_at = run.created_at + std::chrono::milliseconds(3);
  run.log_count = 3;
  submitted.push_back(UpsertRun{run});
  for (const WriteOp& op : submitted) writer.submit(op);
  gate.open();
  writer.flush();

  std::lock_guard lock(seen_mutex);
  ASSERT_EQ(seen.size(), 2u);
  const std::vector<WriteOp>& batch = seen[1];
  ASSERT_EQ(batch.size(), submitted.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    ASSERT_EQ(batch[i].index(), submitted[i].index()) << "op " << i;
    if (const auto* upsert = std::get_if<UpsertRun>(&batch[i])) {
      const nightshift::Run& expected = std::get<UpsertRun>(submitted[i]).run;
      EXPECT_EQ(upsert->run.instance_id, expected.instance_id) << "op " << i;
      EXPECT_EQ(upsert->run.status, expected.status) << "op " << i;
      EXPECT_EQ(upsert->run.log_count, expected.log_count) << "op " << i;
    } else {
      const auto& logs = std::get<AppendLogs>(batch[i]);
      EXPECT_EQ(logs.entries.front().seq, std::get<AppendLogs>(submitted[i]).entries.front().seq);
    }
  }
  const auto stored = fixture.store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::completed);
  EXPECT_EQ(stored->log_count, 3u);
  EXPECT_EQ(fixture.store().read_logs(run.instance_id, 0, 10).size(), 3u);
}

TEST(StoreWriter, SubmitAndWaitFromManyThreadsEachSeesItsOwnRun) {
  StoreFixture fixture;
  StoreWriter writer(fixture.store(), nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20;
  std::atomic<int> missing{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        const nightshift::Run run = queued_run();
        writer.submit_and_wait(UpsertRun{run});
        if (!fixture.store().get_run(run.instance_id)) ++missing;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(fixture.store().count_runs(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(StoreWriter, ABadOpIsRefusedAloneItsWaiterHearsWhyAndTheRestOfItsBatchCommits) {
  StoreFixture fixture;
  Gate gate;
  CommitLog seen;
  std::atomic<bool> first{true};
  StoreWriter writer(fixture.store(), [&](const auto& ops) {
    seen.record(ops);
    if (first.exchange(false)) gate.wait_open();
  });
  writer.submit(UpsertRun{queued_run()});
  gate.wait_entered();

  // A good op and a bad one in the same batch: the batch fails, then each op
  // is tried alone, so only the bad one is refused.
  const nightshift::Run good = queued_run();
  std::atomic<int> failures{0};
  std::thread good_waiter([&] {
    try {
      writer.submit_and_wait(UpsertRun{good});
    } catch (const std::runtime_error&) {
      ++failures;
    }
  });
  ASSERT_TRUE(wait_until([&] { return writer.pending_ops() == 1; }));
  std::thread bad_waiter([&] {
    try {
      writer.submit_and_wait(AppendLogs{generate_uuid(), log_entries(1, 1)});
    } catch (const std::runtime_error&) {
      ++failures;
    }
  });
  ASSERT_TRUE(wait_until([&] { return writer.pending_ops() == 2; }));
  gate.open();
  good_waiter.join();
  bad_waiter.join();
  EXPECT_EQ(failures.load(), 1) << "only the bad op's waiter hears of a failure";
  EXPECT_TRUE(fixture.store().get_run(good.instance_id));
  EXPECT_EQ(seen.ids().back(), good.instance_id) << "the good op is published once committed";
  EXPECT_TRUE(writer.healthy()) << "a refused op is not a store that cannot write";

  const nightshift::Run after = queued_run();
  EXPECT_NO_THROW(writer.submit_and_wait(UpsertRun{after}));
  EXPECT_TRUE(fixture.store().get_run(after.instance_id));
  EXPECT_EQ(seen.ids().back(), after.instance_id);
}

TEST(StoreWriter, FlushWaitsForEverythingSubmittedBefore) {
  StoreFixture fixture;
  StoreWriter writer(fixture.store(), nullptr);
  for (int i = 0; i < 300; ++i) writer.submit(UpsertRun{queued_run()});
  writer.flush();
  EXPECT_EQ(fixture.store().count_runs(), 300u);
  EXPECT_EQ(writer.pending_ops(), 0u);
}

TEST(StoreWriter, DestructorCommitsWhatIsPending) {
  StoreFixture fixture;
  Gate gate;
  std::atomic<bool> first{true};
  {
    StoreWriter writer(fixture.store(), [&](const auto&) {
      if (first.exchange(false)) gate.wait_open();
    });
    writer.submit(UpsertRun{queued_run()});
    gate.wait_entered();
    for (int i = 0; i < 100; ++i) writer.submit(UpsertRun{queued_run()});
    EXPECT_EQ(writer.pending_ops(), 100u);
    gate.open();
  }
  fixture.reopen();
  EXPECT_EQ(fixture.store().count_runs(), 101u);
}

TEST(StoreWriter, ABigPruneFinishesInChunksBeforeFlushReturns) {
  StoreFixture fixture;
  const Timestamp now = at_ms(1'800'000'000'000);
  std::vector<WriteOp> seed;
  for (int i = 0; i < 900; ++i) {
    seed.push_back(
        UpsertRun{finished_run("installed:echo", RunStatus::completed,
                               now - std::chrono::hours(24 * 60) + std::chrono::milliseconds(i))});
  }
  fixture.store().apply(seed);
  CommitLog seen;
  StoreWriter writer(fixture.store(), [&seen](const auto& ops) { seen.record(ops); });
  writer.submit(PruneRuns{RetentionPolicy{std::chrono::hours(24 * 30), 100}, now});
  const nightshift::Run meanwhile = queued_run();
  writer.submit(UpsertRun{meanwhile});
  writer.flush();
  EXPECT_EQ(fixture.store().count_runs(), 101u);
  EXPECT_TRUE(fixture.store().get_run(meanwhile.instance_id));
  EXPECT_EQ(seen.ids(), std::vector<std::string>{meanwhile.instance_id});
}

}  // namespace
}  // namespace nightshift::testing
