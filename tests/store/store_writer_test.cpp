// The writer thread: group commit, order of on_committed (on the publishing
// thread, one batch behind the writer at most), flush, waiting across
// threads, failures, and draining on destruction.
#include "store/store_writer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

// Holds a thread (the writer inside a commit, or the publisher inside
// on_committed) until released, so a test can queue work meanwhile.
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

// The store, with the writer held inside its first commit (written, not
// yet returned) until the gate opens: what is submitted meanwhile waits in
// the writer's queue.
class HoldingStore final : public Store {
 public:
  HoldingStore(Store& inner, Gate& gate) : inner_(inner), gate_(gate) {}

  std::string_view kind() const noexcept override { return inner_.kind(); }
  void apply(const std::vector<WriteOp>& ops) override { apply_reporting_unfinished_prune(ops); }
  bool apply_reporting_unfinished_prune(const std::vector<WriteOp>& ops) override {
    const bool unfinished = inner_.apply_reporting_unfinished_prune(ops);
    if (first_.exchange(false)) gate_.wait_open();
    return unfinished;
  }
  std::vector<Run> mark_interrupted(Timestamp now, const std::string& error) override {
    return inner_.mark_interrupted(now, error);
  }
  std::size_t prune(const RetentionPolicy& policy, Timestamp now) override {
    return inner_.prune(policy, now);
  }
  bool writes_progress_alone() const noexcept override { return inner_.writes_progress_alone(); }
  std::optional<Run> get_run(const std::string& instance_id) const override {
    return inner_.get_run(instance_id);
  }
  std::vector<Run> list_active(const std::optional<std::string>& agent_id) const override {
    return inner_.list_active(agent_id);
  }
  HistoryPage list_history(const HistoryQuery& query) const override {
    return inner_.list_history(query);
  }
  std::vector<LogEntry> read_logs(const std::string& instance_id, std::uint64_t after_seq,
                                  std::size_t limit) const override {
    return inner_.read_logs(instance_id, after_seq, limit);
  }
  std::size_t count_runs() const override { return inner_.count_runs(); }
  int schema_version() const override { return inner_.schema_version(); }
  std::string integrity_check() const override { return inner_.integrity_check(); }

 private:
  Store& inner_;
  Gate& gate_;
  std::atomic<bool> first_{true};
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
      if (const auto* upsert = std::get_if<UpsertRun>(&op))
        ids_.push_back(upsert->run().instance_id);
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
  HoldingStore holding(fixture.store(), gate);
  CommitLog seen;
  StoreWriter writer(holding, [&](const auto& ops) { seen.record(ops); });
  writer.submit(UpsertRun{queued_run()});
  gate.wait_entered();  // the first batch is written, the writer is busy

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

// A writer whose publisher is held inside on_committed of its first batch
// until the gate opens; what on_committed saw goes to `seen`.
struct HeldPublisher {
  StoreFixture fixture;
  Gate gate;
  CommitLog seen;
  std::atomic<bool> first{true};
  StoreWriter writer{fixture.store(), [this](const std::vector<WriteOp>& ops) {
                       if (first.exchange(false)) gate.wait_open();
                       seen.record(ops);
                     }};
};

// on_committed runs on a thread of its own: while it handles one batch, the
// writer commits the next, and flush() returns once both are handed over.
TEST(StoreWriter, TheNextBatchIsCommittedWhileOnCommittedHandlesTheLastAndFlushWaitsForBoth) {
  HeldPublisher held;
  StoreFixture& fixture = held.fixture;
  Gate& gate = held.gate;
  CommitLog& seen = held.seen;
  StoreWriter& writer = held.writer;
  const nightshift::Run a = queued_run();
  writer.submit(UpsertRun{a});
  gate.wait_entered();  // a is committed; its publication is held

  const nightshift::Run b = queued_run();
  writer.submit(UpsertRun{b});
  ASSERT_TRUE(wait_until([&] { return fixture.store().get_run(b.instance_id).has_value(); }))
      << "the writer commits while on_committed still handles the batch before";
  std::atomic<bool> flushed{false};
  std::thread flusher([&] {
    writer.flush();
    flushed = true;
  });
  EXPECT_FALSE(flushed.load()) << "nothing is flushed before on_committed has seen it";
  EXPECT_TRUE(seen.ids().empty());
  gate.open();
  flusher.join();
  EXPECT_EQ(seen.ids(), (std::vector<std::string>{a.instance_id, b.instance_id}));
  EXPECT_EQ(seen.batches(), (std::vector<std::size_t>{1, 1}));
}

// The writer runs at most one batch ahead of on_committed: with one batch
// being handled and the next one committed and waiting, what comes next
// stays queued (and so joins one larger batch).
TEST(StoreWriter, TheWriterRunsAtMostOneCommittedBatchAheadOfOnCommitted) {
  HeldPublisher held;
  StoreFixture& fixture = held.fixture;
  Gate& gate = held.gate;
  CommitLog& seen = held.seen;
  StoreWriter& writer = held.writer;
  writer.submit(UpsertRun{queued_run()});
  gate.wait_entered();
  const nightshift::Run waiting = queued_run();
  writer.submit(UpsertRun{waiting});
  ASSERT_TRUE(wait_until([&] { return fixture.store().get_run(waiting.instance_id).has_value(); }));
  std::vector<nightshift::Run> later;
  for (int i = 0; i < 3; ++i) {
    later.push_back(queued_run());
    writer.submit(UpsertRun{later.back()});
  }
  // Committed batches are handed over in order, one at a time: the writer
  // cannot take these while the batch before waits to be handed over.
  EXPECT_EQ(writer.pending_ops(), 3u);
  for (const nightshift::Run& run : later) EXPECT_FALSE(fixture.store().get_run(run.instance_id));
  gate.open();
  writer.flush();
  EXPECT_EQ(seen.batches(), (std::vector<std::size_t>{1, 1, 3}));
  for (const nightshift::Run& run : later) EXPECT_TRUE(fixture.store().get_run(run.instance_id));
}

TEST(StoreWriter, OnCommittedSeesEveryUpsertOfARunUnchangedEvenWhenTheStoreWritesItOnce) {
  StoreFixture fixture;
  Gate gate;
  HoldingStore holding(fixture.store(), gate);
  std::mutex seen_mutex;
  std::vector<std::vector<WriteOp>> seen;  // every committed batch, as handed over
  StoreWriter writer(holding, [&](const std::vector<WriteOp>& ops) {
    std::lock_guard lock(seen_mutex);
    seen.push_back(ops);
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
      const nightshift::Run& expected = std::get<UpsertRun>(submitted[i]).run();
      EXPECT_EQ(upsert->run().instance_id, expected.instance_id) << "op " << i;
      EXPECT_EQ(upsert->run().status, expected.status) << "op " << i;
      EXPECT_EQ(upsert->run().log_count, expected.log_count) << "op " << i;
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

// What one committed batch held, op by op: "logs 3", "running 0.25 3".
std::vector<std::string> describe(const std::vector<WriteOp>& ops) {
  std::vector<std::string> out;
  for (const WriteOp& op : ops) {
    if (const auto* logs = std::get_if<AppendLogs>(&op)) {
      out.push_back("logs " + std::to_string(logs->entries.front().seq));
    } else if (const auto* upsert = std::get_if<UpsertRun>(&op)) {
      const nightshift::Run& run = upsert->run();
      char progress[16];
      std::snprintf(progress, sizeof progress, "%.2f", run.progress.value_or(-1));
      out.push_back(std::string(to_string(run.status)) + " " + progress + " " +
                    std::to_string(run.log_count));
    } else if (const auto* update = std::get_if<UpdateProgress>(&op)) {
      char progress[16];
      std::snprintf(progress, sizeof progress, "%.2f", update->progress.value_or(-1));
      std::string text = "progress ";
      text.append(progress).append(" ").append(std::to_string(update->log_count));
      out.push_back(std::move(text));
    } else {
      out.push_back("other");
    }
  }
  return out;
}

// A writer that has written the first record of a running run and is held
// inside that commit until release(): what is submitted meanwhile waits in
// its queue. Keeps every committed batch, described.
class HeldWriter {
 public:
  HeldWriter()
      : writer_(holding_, [this](const std::vector<WriteOp>& ops) {
          std::lock_guard lock(mutex_);
          batches_.push_back(describe(ops));
          progress_ids_.clear();
          for (const WriteOp& op : ops) {
            if (const auto* update = std::get_if<UpdateProgress>(&op)) {
              progress_ids_.push_back(update->instance_id);
            }
          }
        }) {}

  // A running run whose first record is committed; the writer is then held.
  nightshift::Run first_record() {
    nightshift::Run run = running_run();
    writer_.submit(UpsertRun{run});
    gate_.wait_entered();
    return run;
  }
  static nightshift::Run running_run() {
    nightshift::Run run = queued_run();
    run.status = RunStatus::running;
    run.started_at = run.created_at;
    return run;
  }
  // Lets the writer go on and waits for what was queued; returns the batch
  // that held it.
  std::vector<std::string> release() {
    gate_.open();
    writer_.flush();
    std::lock_guard lock(mutex_);
    EXPECT_EQ(batches_.size(), 2u);
    return batches_.empty() ? std::vector<std::string>{} : batches_.back();
  }
  // The runs of the progress updates in the last batch, in order.
  std::vector<std::string> progress_ids() {
    std::lock_guard lock(mutex_);
    return progress_ids_;
  }
  StoreWriter& writer() { return writer_; }
  Store& store() { return fixture_.store(); }

 private:
  StoreFixture fixture_;
  Gate gate_;
  HoldingStore holding_{fixture_.store(), gate_};
  std::mutex mutex_;
  std::vector<std::vector<std::string>> batches_;
  std::vector<std::string> progress_ids_;
  StoreWriter writer_;  // last: its thread calls into the members above
};

TEST(StoreWriter, AnUpdateReplacesTheRunsQueuedUpdateOfTheSameStatusBehindItsLogEntries) {
  HeldWriter held;
  StoreWriter& writer = held.writer();
  nightshift::Run run = held.first_record();

  // A run ticking while the store is behind: a log entry and a progress
  // update each time.
  for (std::uint64_t tick = 1; tick <= 3; ++tick) {
    writer.submit(AppendLogs{run.instance_id, log_entries(tick, 1)});
    run.log_count = tick;
    run.progress = 0.25 * static_cast<double>(tick);
    writer.submit_update(UpsertRun{run});
  }
  run.status = RunStatus::completed;
  run.ended_at = run.created_at + std::chrono::milliseconds(5);
  writer.submit_update(UpsertRun{run});  // a change of status: kept
  run.usage = TokenUsage{1, 2};
  writer.submit_update(UpsertRun{run});  // replaces the one before
  EXPECT_EQ(writer.pending_ops(), 5u);
  EXPECT_EQ(writer.superseded_records(), 3u);

  EXPECT_EQ(held.release(), (std::vector<std::string>{"logs 1", "logs 2", "logs 3",
                                                      "running 0.75 3", "completed 0.75 3"}));
  const auto stored = held.store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::completed);
  EXPECT_EQ(stored->log_count, 3u);
  EXPECT_TRUE(stored->usage) << "the last update, not the one it replaced, was written";
  EXPECT_EQ(held.store().read_logs(run.instance_id, 0, 10).size(), 3u);
}

// A host with thousands of runs logging has that many writes queued at once:
// a batch of log entries must not take the room of a whole run record (a
// third of one, now that a record keeps its rarely set texts in a pointer
// each: 344 bytes, where a queued write takes 88).
TEST(StoreWriter, AQueuedLogBatchIsNotTheSizeOfARunRecord) {
  EXPECT_LT(sizeof(WriteOp), sizeof(nightshift::Run) / 3)
      << "sizeof(WriteOp) " << sizeof(WriteOp) << ", sizeof(Run) " << sizeof(nightshift::Run);
  // Copies of an upsert share its record, which never changes.
  const UpsertRun upsert{HeldWriter::running_run()};
  const WriteOp copy = upsert;
  EXPECT_EQ(&std::get<UpsertRun>(copy).run(), &upsert.run());
}

TEST(StoreWriter, UpdatesOfSeveralRunsReplacedInAnyOrderLeaveTheRestInOrder) {
  HeldWriter held;
  StoreWriter& writer = held.writer();
  nightshift::Run a = held.first_record();
  nightshift::Run b = HeldWriter::running_run();
  writer.submit(UpsertRun{b});  // b's first record, queued
  a.progress = 0.1;
  writer.submit_update(UpsertRun{a});
  b.progress = 0.2;
  writer.submit_update(UpsertRun{b});
  b.progress = 0.3;
  writer.submit_update(UpsertRun{b});  // replaces b's 0.2, queued after a's 0.1
  a.progress = 0.4;
  writer.submit_update(UpsertRun{a});  // replaces a's 0.1
  EXPECT_EQ(writer.superseded_records(), 2u);

  EXPECT_EQ(held.release(),
            (std::vector<std::string>{"running -1.00 0", "running 0.30 0", "running 0.40 0"}));
  EXPECT_EQ(held.store().get_run(a.instance_id)->progress, 0.4);
  EXPECT_EQ(held.store().get_run(b.instance_id)->progress, 0.3);
}

TEST(StoreWriter, AnUpdateNeverMovesPastAnotherRecordOfItsRun) {
  HeldWriter held;
  StoreWriter& writer = held.writer();
  nightshift::Run run = held.first_record();

  run.progress = 0.1;
  writer.submit_update(UpsertRun{run});
  run.progress = 0.2;
  writer.submit(UpsertRun{run});  // a plain record: the update before it stays
  run.progress = 0.3;
  writer.submit_update(UpsertRun{run});
  nightshift::Run other = HeldWriter::running_run();
  writer.submit(UpsertRun{other});
  other.progress = 0.5;
  writer.submit_update(UpsertRun{other});  // another run's update replaces nothing
  EXPECT_EQ(writer.pending_ops(), 5u);
  EXPECT_EQ(writer.superseded_records(), 0u);

  EXPECT_EQ(held.release(),
            (std::vector<std::string>{"running 0.10 0", "running 0.20 0", "running 0.30 0",
                                      "running -1.00 0", "running 0.50 0"}));
}

// A run ticking while the store is behind, on a store that takes progress
// alone: one progress update waits per run, behind the entries it counts,
// and a record replaces it; it never replaces a record. The same whether
// the caller made the update (submit_update) or the writer did
// (submit_progress, the run's own path, which takes over the replaced
// update's copy of the id).
TEST(StoreWriter, AProgressUpdateReplacesTheRunsQueuedProgressUpdateAndNeverARecord) {
  if (on_postgresql()) GTEST_SKIP() << "the PostgreSQL store takes progress in records only";
  HeldWriter held;
  StoreWriter& writer = held.writer();
  nightshift::Run run = held.first_record();
  const auto submit_progress = [&](double progress, std::uint64_t log_count,
                                   std::optional<TokenUsage> usage, bool made_here) {
    if (made_here) {
      writer.submit_progress(run.instance_id, progress, log_count, usage);
    } else {
      writer.submit_update(UpdateProgress{run.instance_id, progress, log_count, usage});
    }
  };

  run.progress = 0.1;
  writer.submit_update(UpsertRun{run});  // a record: stays
  for (std::uint64_t tick = 1; tick <= 3; ++tick) {
    writer.submit(AppendLogs{run.instance_id, log_entries(tick, 1)});
    submit_progress(0.1 + 0.1 * static_cast<double>(tick), tick, std::nullopt, tick != 2);
  }
  submit_progress(0.45, 3, TokenUsage{1, 2}, true);  // takes the id of one the writer made
  EXPECT_EQ(writer.pending_ops(), 5u);
  EXPECT_EQ(writer.superseded_records(), 3u);
  run.progress = 0.5;
  run.log_count = 3;
  writer.submit_update(UpsertRun{run});  // replaces the progress update, not the record
  EXPECT_EQ(writer.pending_ops(), 5u);
  EXPECT_EQ(writer.superseded_records(), 4u);
  submit_progress(0.6, 3, TokenUsage{4, 5}, true);
  submit_progress(0.7, 3, TokenUsage{6, 7}, false);
  submit_progress(0.8, 3, TokenUsage{8, 9}, true);
  EXPECT_EQ(writer.superseded_records(), 6u);

  EXPECT_EQ(held.release(),
            (std::vector<std::string>{"running 0.10 0", "logs 1", "logs 2", "logs 3",
                                      "running 0.50 3", "progress 0.80 3"}));
  EXPECT_EQ(held.progress_ids(), std::vector<std::string>{run.instance_id});
  expect_stored_progress(held.store(), run.instance_id, 0.8, 3, TokenUsage{8, 9});
}

// Runs whose ids are short enough to live inside the op itself: the queue
// keys them by views into the queued ops, which must not move, and follows
// an id that submit_progress moves from the replaced update to the new one.
TEST(StoreWriter, ProgressUpdatesOfManyRunsReplaceTheirOwnOnlyHoweverLongTheQueue) {
  if (on_postgresql()) GTEST_SKIP() << "the PostgreSQL store takes progress in records only";
  HeldWriter held;
  StoreWriter& writer = held.writer();
  const nightshift::Run run = held.first_record();
  // Many other ops first, so that the queue grows well past its first block.
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    writer.submit(AppendLogs{run.instance_id, log_entries(seq, 1)});
  }
  constexpr int kRuns = 64;
  for (int round = 1; round <= 4; ++round) {
    for (int i = 0; i < kRuns; ++i) {
      const std::string id = std::to_string(1000 + i);
      const double progress = static_cast<double>(round) / 4;
      if ((round + i) % 3 == 0) {
        writer.submit_update(UpdateProgress{id, progress, 0, std::nullopt});
      } else {
        writer.submit_progress(id, progress, 0, std::nullopt);
      }
    }
  }
  EXPECT_EQ(writer.superseded_records(), 3u * kRuns);
  EXPECT_EQ(writer.pending_ops(), 200u + kRuns);
  const std::vector<std::string> batch = held.release();
  ASSERT_EQ(batch.size(), 200u + kRuns);
  for (std::size_t i = 200; i < batch.size(); ++i) EXPECT_EQ(batch[i], "progress 1.00 0");
  std::vector<std::string> expected;
  for (int i = 0; i < kRuns; ++i) expected.push_back(std::to_string(1000 + i));
  EXPECT_EQ(held.progress_ids(), expected) << "each update kept its own run's id";
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
  HoldingStore holding(fixture.store(), gate);
  CommitLog seen;
  StoreWriter writer(holding, [&](const auto& ops) { seen.record(ops); });
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

// Two hosts started a run under the same chosen id (a retry, a claimed
// time): the second first record is refused alone, its starter hears why,
// and the first record beside it in the batch commits.
TEST(StoreWriter, AFirstRecordUnderARecordedIdIsRefusedAloneAndItsStarterHearsWhy) {
  HeldWriter held;
  const nightshift::Run recorded = held.first_record();
  const nightshift::Run fresh = queued_run();
  nightshift::Run same_id = queued_run("installed:sleep");
  same_id.instance_id = recorded.instance_id;
  std::string fresh_error = "not answered", same_id_error = "not answered";
  held.writer().submit(UpsertRun::first(fresh), [&](const std::string& e) { fresh_error = e; });
  held.writer().submit(UpsertRun::first(same_id), [&](const std::string& e) { same_id_error = e; });
  held.release();
  EXPECT_EQ(fresh_error, "");
  EXPECT_NE(same_id_error.find("a run with id " + recorded.instance_id + " is recorded already"),
            std::string::npos)
      << same_id_error;
  EXPECT_TRUE(held.store().get_run(fresh.instance_id));
  EXPECT_EQ(held.store().get_run(recorded.instance_id)->agent_id, recorded.agent_id);
  EXPECT_TRUE(held.writer().healthy()) << "a refused record is not a store that cannot write";
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
  HoldingStore holding(fixture.store(), gate);
  {
    StoreWriter writer(holding, nullptr);
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
