// The run store's schema, records, logs, deletion and recovery.
#include "store/run_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

std::vector<std::string> sorted(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

const int kLatestSchemaVersion = on_postgresql() ? 6 : 10;
// What step 7 made besides columns (which a rebuild of the runs table drops),
// taken away so that the step can run again.
constexpr const char* kDropAutomationTables =
    "DROP TABLE pending_retries; DROP TABLE schedules; DROP TABLE deliveries; "
    "DROP TABLE webhooks;";

std::int64_t count_rows(SQLite::Database&& db, const std::string& table) {
  return db.execAndGet("SELECT count(*) FROM " + table).getInt64();
}

void expect_same_run(const nightshift::Run& a, const nightshift::Run& b) {
  EXPECT_EQ(a.instance_id, b.instance_id);
  EXPECT_EQ(a.thread_id, b.thread_id);
  EXPECT_EQ(a.agent_id, b.agent_id);
  EXPECT_EQ(a.agent_name, b.agent_name);
  EXPECT_EQ(a.agent_source, b.agent_source);
  EXPECT_EQ(a.task, b.task);
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.ended_at, b.ended_at);
  EXPECT_EQ(a.progress, b.progress);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.log_count, b.log_count);
}

// The runs mark_interrupted answered, each checked to be as it is now stored
// (failed, interrupted): their ids, sorted.
std::vector<std::string> marked_ids(const Store& store, const std::vector<nightshift::Run>& runs,
                                    Timestamp now, const std::string& error) {
  std::vector<std::string> ids;
  for (const nightshift::Run& run : runs) {
    EXPECT_EQ(run.status, RunStatus::failed) << run.instance_id;
    EXPECT_EQ(run.error, error) << run.instance_id;
    EXPECT_EQ(run.ended_at, now) << run.instance_id;
    const auto stored = store.get_run(run.instance_id);
    EXPECT_TRUE(stored) << run.instance_id;
    if (stored) expect_same_run(run, *stored);
    ids.push_back(run.instance_id);
  }
  return sorted(std::move(ids));
}

TEST(RunStoreSchema, MigratesAnEmptyFileToTheLatestVersionInWalMode) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  EXPECT_EQ(fixture.store().schema_version(), kLatestSchemaVersion);
  EXPECT_EQ(fixture.store().integrity_check(), "ok");
  EXPECT_EQ(fixture.store().count_runs(), 0u);
  auto db = fixture.inspect();
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_TRUE(db.tableExists("runs"));
  EXPECT_TRUE(db.tableExists("logs"));
}

TEST(RunStoreFiles, DatabaseAndItsWalAreOnlyForTheOwnerWhateverTheUmask) {
  SKIP_UNLESS_SQLITE();
  const mode_t previous = ::umask(022);
  {
    StoreFixture fixture;
    fixture.put(queued_run());  // the WAL now exists
    for (const std::string suffix : {"", "-wal", "-shm"}) {
      struct stat info {};
      const std::string file = fixture.path().string() + suffix;
      ASSERT_EQ(::stat(file.c_str(), &info), 0) << file;
      EXPECT_EQ(info.st_mode & 0777, 0600u) << file;
    }
    // A database an older version left readable by all is made private.
    ::chmod(fixture.path().c_str(), 0644);
    fixture.reopen();
    struct stat info {};
    ASSERT_EQ(::stat(fixture.path().c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
  }
  ::umask(previous);
}

TEST(RunStoreSchema, ReopeningKeepsTheDataAndTheVersion) {
  StoreFixture fixture;
  const nightshift::Run run = queued_run();
  fixture.put(run);
  fixture.reopen();
  EXPECT_EQ(fixture.store().schema_version(), kLatestSchemaVersion);
  ASSERT_TRUE(fixture.store().get_run(run.instance_id));
  EXPECT_EQ(fixture.store().count_runs(), 1u);
}

TEST(RunStoreSchema, RefusesADatabaseNewerThanThisBuildWithAClearMessage) {
  SKIP_UNLESS_SQLITE();
  TempDir dir;
  const auto file = dir / "future.db";
  {
    SQLite::Database db(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = 99");
  }
  try {
    RunStore store(StoreOptions{file, 2});
    FAIL() << "opening a newer database should fail";
  } catch (const std::exception& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("schema version 99"), std::string::npos) << message;
    std::string knows = "newer than this build knows (";
    knows += std::to_string(kLatestSchemaVersion);
    knows += ")";
    EXPECT_NE(message.find(knows), std::string::npos) << message;
  }
}

TEST(RunStoreSchema, UpgradesADatabaseLeftAtAnOlderVersion) {
  SKIP_UNLESS_SQLITE();
  TempDir dir;
  const auto file = dir / "old.db";
  {
    RunStore store(StoreOptions{file, 1});
    store.apply({UpsertRun{queued_run()}});
  }
  {
    // Roll the last step back by hand, as a database made by an older build.
    SQLite::Database db(file.string(), SQLite::OPEN_READWRITE);
    db.exec("DROP TABLE store_meta; ALTER TABLE logs DROP COLUMN source; PRAGMA user_version = 2;");
    db.exec(kDropAutomationTables);
  }
  RunStore store(StoreOptions{file, 1});
  EXPECT_EQ(store.schema_version(), kLatestSchemaVersion);
  EXPECT_EQ(store.count_runs(), 1u);
  EXPECT_EQ(store.integrity_check(), "ok");
}

TEST(RunStoreSchema, RebuildingTheRunsTableKeepsRunsTheirIdsAndTheirLogs) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  const nightshift::Run active = queued_run();
  const nightshift::Run done = finished_run("installed:echo", RunStatus::completed, at_ms(5000));
  fixture.store().apply({UpsertRun{active}, UpsertRun{done},
                         AppendLogs{active.instance_id, log_entries(1, 3)},
                         AppendLogs{done.instance_id, log_entries(1, 4)}});
  const auto ids_before =
      fixture.inspect().execAndGet("SELECT group_concat(id) FROM runs").getString();
  // Step 4 rebuilds the runs table: run it again over data.
  // (and step 5 after it, so its columns are taken away first).
  SQLite::Database(fixture.path().string(), SQLite::OPEN_READWRITE)
      .exec(std::string("ALTER TABLE logs DROP COLUMN source; PRAGMA user_version = 3;") +
            kDropAutomationTables);
  fixture.reopen();
  EXPECT_EQ(fixture.store().schema_version(), kLatestSchemaVersion);
  EXPECT_EQ(fixture.inspect().execAndGet("SELECT group_concat(id) FROM runs").getString(),
            ids_before);
  EXPECT_EQ(fixture.store().read_logs(active.instance_id, 0, 100).size(), 3u);
  EXPECT_EQ(fixture.store().read_logs(done.instance_id, 0, 100).size(), 4u);
  nightshift::Run done_with_logs = done;
  done_with_logs.log_count = 4;
  expect_same_run(*fixture.store().get_run(done.instance_id), done_with_logs);
  EXPECT_EQ(fixture.store().integrity_check(), "ok");
  // Deleting still takes the log with it: the foreign key survived.
  fixture.store().apply({DeleteRun{done.instance_id}});
  EXPECT_EQ(count_rows(fixture.inspect(), "logs"), 3);
}

TEST(RunStoreSchema, TheTableRefusesRowsThatBreakItsRules) {
  SKIP_UNLESS_SQLITE();
  StoreFixture fixture;
  SQLite::Database db(fixture.path().string(), SQLite::OPEN_READWRITE);
  const auto insert = [&db](const std::string& source, const std::string& status, int finished,
                            const char* ended_at) {
    db.exec(
        "INSERT INTO runs (instance_id, thread_id, agent_id, agent_name, agent_source, params, "
        "status, finished, created_at, ended_at) VALUES (lower(hex(randomblob(8))), 't', "
        "'installed:echo', 'echo', '" +
        source + "', '{}', '" + status + "', " + std::to_string(finished) + ", 1, " + ended_at +
        ")");
  };
  EXPECT_NO_THROW(insert("installed", "queued", 0, "NULL"));
  EXPECT_NO_THROW(insert("remix", "cancelled", 1, "5"));
  EXPECT_THROW(insert("elsewhere", "queued", 0, "NULL"), SQLite::Exception);
  EXPECT_THROW(insert("local", "sleeping", 0, "NULL"), SQLite::Exception);
  EXPECT_THROW(insert("local", "running", 1, "5"), SQLite::Exception);
  EXPECT_THROW(insert("local", "failed", 0, "5"), SQLite::Exception);
  EXPECT_THROW(insert("local", "completed", 1, "NULL"), SQLite::Exception);
}

TEST(RunStoreRecords, UpsertAndGetRoundTripEveryField) {
  StoreFixture fixture;
  nightshift::Run run =
      finished_run("remix:strict-echo", RunStatus::failed, at_ms(1'700'000'123'456));
  run.agent_source = AgentSource::remix;
  run.task = "line one\nline two ünïcode";
  run.params = boost::json::object{{"seconds", 3}, {"nested", {{"list", {1, 2.5, "x"}}}}};
  run.progress = 0.625;
  run.error = "it broke";
  run.result = boost::json::object{{"slept", 3}};
  run.log_count = 42;
  fixture.put(run);
  const auto stored = fixture.store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  expect_same_run(*stored, run);
}

TEST(RunStoreRecords, NullFieldsStayNull) {
  StoreFixture fixture;
  const nightshift::Run run = queued_run();
  fixture.put(run);
  const auto stored = fixture.store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  expect_same_run(*stored, run);
  EXPECT_FALSE(stored->task);
  EXPECT_FALSE(stored->started_at);
  EXPECT_FALSE(stored->ended_at);
  EXPECT_FALSE(stored->progress);
  EXPECT_FALSE(stored->error);
  EXPECT_TRUE(stored->result.is_null());
  EXPECT_TRUE(stored->params.empty());
}

TEST(RunStoreRecords, UpsertReplacesTheRecordInPlace) {
  StoreFixture fixture;
  nightshift::Run run = queued_run();
  fixture.put(run);
  run.status = RunStatus::completed;
  run.started_at = run.created_at + std::chrono::milliseconds(5);
  run.ended_at = run.created_at + std::chrono::milliseconds(9);
  run.result = "done";
  fixture.put(run);
  EXPECT_EQ(fixture.store().count_runs(), 1u);
  expect_same_run(*fixture.store().get_run(run.instance_id), run);
  EXPECT_FALSE(fixture.store().get_run(generate_uuid()));
}

TEST(RunStoreRecords, ATerminalRunWithoutEndTimeIsRefusedAndTheBatchRolledBack) {
  StoreFixture fixture;
  const nightshift::Run fine = queued_run();
  nightshift::Run broken = queued_run();
  broken.status = RunStatus::completed;
  EXPECT_THROW(fixture.store().apply({UpsertRun{fine}, UpsertRun{broken}}), std::invalid_argument);
  EXPECT_EQ(fixture.store().count_runs(), 0u);
}

// Another run (its own thread id) under an id the store has: what a host
// that paused past its lease and then started a retry or a claimed time
// another host had started would write.
nightshift::Run another_run_with_the_id_of(const nightshift::Run& recorded) {
  nightshift::Run other = queued_run("installed:sleep");
  other.instance_id = recorded.instance_id;
  return other;
}

TEST(RunStoreFirstRecords, AFirstRecordUnderAnIdAnotherRunHasIsRefusedAndChangesNothing) {
  StoreFixture fixture;
  const nightshift::Run recorded =
      finished_run("installed:echo", RunStatus::completed, at_ms(2'000'000));
  fixture.store().apply({UpsertRun::first(recorded)});
  try {
    fixture.store().apply({UpsertRun::first(another_run_with_the_id_of(recorded))});
    FAIL() << "a second run was recorded under a recorded run's id";
  } catch (const RunIdRecorded& error) {
    EXPECT_NE(std::string(error.what()).find(recorded.instance_id + " is recorded already"),
              std::string::npos)
        << error.what();
  }
  EXPECT_EQ(fixture.store().count_runs(), 1u);
  expect_same_run(*fixture.store().get_run(recorded.instance_id), recorded);
}

TEST(RunStoreFirstRecords, ARefusedFirstRecordFailsItsWholeBatch) {
  StoreFixture fixture;
  const nightshift::Run recorded = queued_run();
  fixture.put(recorded);
  const nightshift::Run fresh = queued_run();
  nightshift::Run later_state = another_run_with_the_id_of(recorded);
  // The refused run's first record and a later state of it, coalesced into
  // one write: still refused.
  const nightshift::Run first_state = later_state;
  later_state.status = RunStatus::running;
  later_state.started_at = later_state.created_at + std::chrono::milliseconds(1);
  EXPECT_ANY_THROW(fixture.store().apply(
      {UpsertRun::first(fresh), UpsertRun::first(first_state), UpsertRun{later_state}}));
  EXPECT_EQ(fixture.store().count_runs(), 1u);
  EXPECT_FALSE(fixture.store().get_run(fresh.instance_id));
  expect_same_run(*fixture.store().get_run(recorded.instance_id), recorded);
}

// A commit whose answer was lost is tried again by the writer: the run's own
// first record, written already, is taken as an update.
TEST(RunStoreFirstRecords, TheSameRunsFirstRecordWrittenAgainIsAccepted) {
  StoreFixture fixture;
  nightshift::Run run = queued_run();
  fixture.store().apply({UpsertRun::first(run)});
  EXPECT_NO_THROW(fixture.store().apply({UpsertRun::first(run)}));
  EXPECT_EQ(fixture.store().count_runs(), 1u);
  expect_same_run(*fixture.store().get_run(run.instance_id), run);
}

// Only a first record is checked: every later record of a run updates it.
TEST(RunStoreFirstRecords, ALaterRecordUpdatesTheRecordedRun) {
  StoreFixture fixture;
  nightshift::Run run = queued_run();
  fixture.store().apply({UpsertRun::first(run)});
  run.status = RunStatus::running;
  run.started_at = run.created_at + std::chrono::milliseconds(1);
  fixture.put(run);
  expect_same_run(*fixture.store().get_run(run.instance_id), run);
}

// A later record of a recorded run rewrites every field of its row, but its
// log count only grows.
TEST(RunStoreRecords, ALaterRecordRewritesEveryFieldButNeverLowersTheLogCount) {
  StoreFixture fixture;
  nightshift::Run run = queued_run();
  run.log_count = 7;
  fixture.store().apply({UpsertRun::first(run)});

  nightshift::Run later =
      finished_run("remix:strict-echo", RunStatus::failed, at_ms(1'700'000'123'456));
  later.instance_id = run.instance_id;
  later.agent_source = AgentSource::remix;
  later.isolation = nightshift::Isolation::process;
  later.task = "the task";
  later.params = boost::json::object{{"seconds", 3}};
  later.accepts_messages = true;
  later.progress = 0.5;
  later.error = "it broke";
  later.result = boost::json::object{{"slept", 3}};
  later.usage = nightshift::TokenUsage{11, 22};
  later.host = "host-b";
  later.attempt = 3;
  later.retry_of = generate_uuid();
  later.rerun_of = generate_uuid();
  later.schedule_id = generate_uuid();
  later.log_count = 3;
  fixture.put(later);

  auto stored = fixture.store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  nightshift::Run expected = later;
  expected.log_count = 7;
  expect_same_run(*stored, expected);
  EXPECT_EQ(stored->isolation, nightshift::Isolation::process);
  EXPECT_TRUE(stored->accepts_messages);
  ASSERT_TRUE(stored->usage);
  EXPECT_EQ(stored->usage->prompt_tokens, 11u);
  EXPECT_EQ(stored->usage->completion_tokens, 22u);
  EXPECT_EQ(stored->host, later.host);
  EXPECT_EQ(stored->attempt, 3u);
  EXPECT_EQ(stored->retry_of, later.retry_of);
  EXPECT_EQ(stored->rerun_of, later.rerun_of);
  EXPECT_EQ(stored->schedule_id, later.schedule_id);
  EXPECT_EQ(fixture.store().count_runs(), 1u);

  later.log_count = 9;
  fixture.put(later);
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 9u);
}

TEST(RunStoreRecords, ListActiveIsNewestCreatedFirstAndNarrowsByAgent) {
  StoreFixture fixture;
  const nightshift::Run old_echo = queued_run("installed:echo", at_ms(1000));
  nightshift::Run new_sleep = queued_run("installed:sleep", at_ms(3000));
  new_sleep.status = RunStatus::running;
  nightshift::Run mid_echo = queued_run("installed:echo", at_ms(2000));
  mid_echo.status = RunStatus::stopping;
  const nightshift::Run done = finished_run("installed:echo", RunStatus::completed, at_ms(4000));
  fixture.store().apply(
      {UpsertRun{old_echo}, UpsertRun{new_sleep}, UpsertRun{mid_echo}, UpsertRun{done}});

  const auto all = fixture.store().list_active(std::nullopt);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].instance_id, new_sleep.instance_id);
  EXPECT_EQ(all[1].instance_id, mid_echo.instance_id);
  EXPECT_EQ(all[2].instance_id, old_echo.instance_id);

  const auto echo = fixture.store().list_active(std::string("installed:echo"));
  ASSERT_EQ(echo.size(), 2u);
  EXPECT_EQ(echo[0].instance_id, mid_echo.instance_id);
  EXPECT_EQ(echo[1].instance_id, old_echo.instance_id);
  EXPECT_TRUE(fixture.store().list_active(std::string("installed:none")).empty());
}

TEST(RunStoreLogs, ReadLogsPagesBySeqAndRaisesTheLogCount) {
  StoreFixture fixture;
  const nightshift::Run run = queued_run();
  fixture.store().apply({UpsertRun{run}, AppendLogs{run.instance_id, log_entries(1, 10)}});
  fixture.store().apply({AppendLogs{run.instance_id, log_entries(11, 10)},
                         AppendLogs{run.instance_id, log_entries(21, 5)}});

  std::vector<LogEntry> all;
  std::uint64_t after = 0;
  for (;;) {
    const auto page = fixture.store().read_logs(run.instance_id, after, 7);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 7u);
    all.insert(all.end(), page.begin(), page.end());
    after = page.back().seq;
  }
  const auto expected = log_entries(1, 25);
  ASSERT_EQ(all.size(), expected.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, expected[i].seq);
    EXPECT_EQ(all[i].ts, expected[i].ts);
    EXPECT_EQ(all[i].level, expected[i].level);
    EXPECT_EQ(all[i].message, expected[i].message);
  }
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 25u);
  EXPECT_EQ(fixture.store().read_logs(run.instance_id, 20, 1000).size(), 5u);
  EXPECT_TRUE(fixture.store().read_logs(generate_uuid(), 0, 10).empty());

  // An upsert carrying an older count does not lower it.
  fixture.put(run);
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, 25u);
}

TEST(RunStoreLogs, ALargeAppendKeepsEveryEntryInOrder) {
  StoreFixture fixture;
  const nightshift::Run run = queued_run();
  const auto written = log_entries(1, 1000 + 7);  // not a multiple of any group size
  fixture.store().apply({UpsertRun{run}, AppendLogs{run.instance_id, written}});
  const auto stored = fixture.store().read_logs(run.instance_id, 0, 5000);
  ASSERT_EQ(stored.size(), written.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    ASSERT_EQ(stored[i].seq, written[i].seq);
    ASSERT_EQ(stored[i].ts, written[i].ts);
    ASSERT_EQ(stored[i].level, written[i].level);
    ASSERT_EQ(stored[i].message, written[i].message);
  }
  EXPECT_EQ(fixture.store().get_run(run.instance_id)->log_count, written.size());
}

TEST(RunStoreLogs, LogsForAnUnknownRunFailTheWholeBatch) {
  StoreFixture fixture;
  const nightshift::Run run = queued_run();
  EXPECT_THROW(
      fixture.store().apply({UpsertRun{run}, AppendLogs{generate_uuid(), log_entries(1, 2)}}),
      std::runtime_error);
  EXPECT_FALSE(fixture.store().get_run(run.instance_id));
}

TEST(RunStoreLogs, ARepeatedSeqIsRefused) {
  StoreFixture fixture;
  const nightshift::Run run = queued_run();
  fixture.store().apply({UpsertRun{run}, AppendLogs{run.instance_id, log_entries(1, 3)}});
  EXPECT_ANY_THROW(fixture.store().apply({AppendLogs{run.instance_id, log_entries(3, 1)}}));
  EXPECT_EQ(fixture.store().read_logs(run.instance_id, 0, 10).size(), 3u);
}

TEST(RunStoreDelete, DeletesAFinishedRunWithItsLogs) {
  StoreFixture fixture;
  const nightshift::Run keep = finished_run("installed:echo", RunStatus::completed, at_ms(5000));
  const nightshift::Run gone = finished_run("installed:echo", RunStatus::cancelled, at_ms(6000));
  fixture.store().apply({UpsertRun{keep}, UpsertRun{gone},
                         AppendLogs{keep.instance_id, log_entries(1, 4)},
                         AppendLogs{gone.instance_id, log_entries(1, 6)}});
  fixture.store().apply({DeleteRun{gone.instance_id}});
  EXPECT_FALSE(fixture.store().get_run(gone.instance_id));
  EXPECT_TRUE(fixture.store().read_logs(gone.instance_id, 0, 100).empty());
  EXPECT_EQ(fixture.count_rows("logs"), 4);
  EXPECT_EQ(fixture.store().count_runs(), 1u);
  // Deleting what is already gone is not an error.
  EXPECT_NO_THROW(fixture.store().apply({DeleteRun{gone.instance_id}}));
}

TEST(RunStoreDelete, RefusesToDeleteAnActiveRun) {
  StoreFixture fixture;
  nightshift::Run run = queued_run();
  run.status = RunStatus::running;
  fixture.put(run);
  EXPECT_THROW(fixture.store().apply({DeleteRun{run.instance_id}}), std::logic_error);
  EXPECT_TRUE(fixture.store().get_run(run.instance_id));
}

TEST(RunStoreRecovery, MarkInterruptedFailsEveryActiveRunAndNothingElse) {
  StoreFixture fixture;
  nightshift::Run queued = queued_run();
  nightshift::Run running = queued_run();
  running.status = RunStatus::running;
  running.started_at = running.created_at;
  nightshift::Run stopping = queued_run();
  stopping.status = RunStatus::stopping;
  const nightshift::Run done = finished_run("installed:echo", RunStatus::completed, at_ms(5000));
  fixture.store().apply(
      {UpsertRun{queued}, UpsertRun{running}, UpsertRun{stopping}, UpsertRun{done}});

  const Timestamp now = at_ms(9'000'000);
  if (on_postgresql()) {
    // A shared store's queued runs belong to the queue, not to the host
    // that stopped: another host (or this one, restarted) runs them.
    const std::string error = "interrupted: the host stopped";
    EXPECT_EQ(marked_ids(fixture.store(), fixture.store().mark_interrupted(now, error), now, error),
              sorted({running.instance_id, stopping.instance_id}));
    expect_same_run(*fixture.store().get_run(queued.instance_id), queued);
    EXPECT_EQ(fixture.store().list_active(std::nullopt).size(), 1u);
    EXPECT_EQ(fixture.store().list_history({}).runs.size(), 3u);
    return;
  }
  const std::string error = "interrupted: the host stopped";
  EXPECT_EQ(marked_ids(fixture.store(), fixture.store().mark_interrupted(now, error), now, error),
            sorted({queued.instance_id, running.instance_id, stopping.instance_id}));
  for (const nightshift::Run& run : {queued, running, stopping}) {
    const auto stored = fixture.store().get_run(run.instance_id);
    EXPECT_EQ(stored->status, RunStatus::failed);
    EXPECT_EQ(stored->error, "interrupted: the host stopped");
    EXPECT_EQ(stored->ended_at, now);
    EXPECT_EQ(stored->started_at, run.started_at);
  }
  expect_same_run(*fixture.store().get_run(done.instance_id), done);
  EXPECT_TRUE(fixture.store().list_active(std::nullopt).empty());
  EXPECT_EQ(fixture.store().list_history({}).runs.size(), 4u);
  EXPECT_TRUE(fixture.store().mark_interrupted(now, "again").empty());
}

}  // namespace
}  // namespace nightshift::testing
