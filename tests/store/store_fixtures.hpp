// Runs and stores for the store tests.
#pragma once

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "model/run.hpp"
#include "store/automation_store.hpp"
#include "store/run_store.hpp"
#include "store/store.hpp"
#include "test_support.hpp"

namespace nightshift::testing {

// The store the tests run on. The tests shared by both programs are
// compiled once and linked into each; each program defines these in a file
// of its own: sqlite_backend.cpp (store_tests) or postgres_environment.cpp
// (store_tests_postgresql, each test on a fresh database of a private
// server that the program starts and stops).
bool on_postgresql();
// The run store of a fixture: SQLite at `file`, or on PostgreSQL the
// database named by `database` (created, and named there, when empty).
std::unique_ptr<Store> open_test_store(const std::filesystem::path& file, std::string& database);
// The automation store beside it (the same file or database).
std::unique_ptr<AutomationStore> open_test_automation_store(const std::filesystem::path& file,
                                                            const std::string& database);
// Rows in one of the store's tables.
std::int64_t count_test_rows(const std::filesystem::path& file, const std::string& database,
                             const std::string& table);

inline Timestamp at_ms(std::int64_t ms) {
  return Timestamp{std::chrono::milliseconds{ms}};
}

// A queued run with only the required fields set.
// An enabled every-five-minutes schedule of installed:echo whose next time is `due`.
inline Schedule schedule_due_at(Timestamp due) {
  Schedule s;
  s.id = generate_uuid();
  s.agent_id = "installed:echo";
  s.params = {{"n", 1}};
  s.cron = "*/5 * * * *";
  s.created_at = now_ms();
  s.next_run_at = due;
  return s;
}

inline Run queued_run(const std::string& agent_id = "installed:echo",
                      Timestamp created = at_ms(1'000'000)) {
  Run run;
  run.instance_id = generate_uuid();
  run.thread_id = generate_uuid();
  run.agent_id = agent_id;
  run.agent_name = agent_id.substr(agent_id.find(':') + 1);
  run.created_at = created;
  return run;
}

inline Run finished_run(const std::string& agent_id, RunStatus status, Timestamp ended) {
  Run run = queued_run(agent_id, ended - std::chrono::seconds(10));
  run.status = status;
  run.started_at = ended - std::chrono::seconds(5);
  run.ended_at = ended;
  return run;
}

inline std::vector<LogEntry> log_entries(std::uint64_t first_seq, std::size_t count) {
  std::vector<LogEntry> entries;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t seq = first_seq + i;
    entries.push_back(LogEntry{seq, at_ms(2'000'000 + static_cast<std::int64_t>(seq)),
                               static_cast<LogLevel>(seq % 5), "line " + std::to_string(seq)});
  }
  return entries;
}

// For a test that looks into the SQLite file itself.
#define SKIP_UNLESS_SQLITE() \
  if (on_postgresql()) GTEST_SKIP() << "looks into the SQLite file; the PostgreSQL run skips it"

// A store in its own temporary directory (SQLite) or its own database
// (PostgreSQL).
class StoreFixture {
 public:
  StoreFixture() { open(); }
  std::filesystem::path path() const { return dir_ / "nightshift.db"; }
  Store& store() { return *store_; }
  void reopen() {
    store_.reset();
    open();
  }
  void put(const Run& run) { store_->apply({UpsertRun{run}}); }
  // The store's database on the test server (PostgreSQL; empty on SQLite).
  const std::string& database() const { return database_; }
  // A separate connection, for looking at what the store wrote (SQLite).
  SQLite::Database inspect() const { return SQLite::Database(path().string()); }
  // Rows in one of the store's tables, on either store.
  std::int64_t count_rows(const std::string& table) const {
    return count_test_rows(path(), database_, table);
  }

 private:
  void open() { store_ = open_test_store(path(), database_); }

  TempDir dir_;
  std::string database_;
  std::unique_ptr<Store> store_;
};

// Counts the row writes the SQLite store makes to `runs`, through triggers that a
// separate connection adds to the database.
class RowWriteCounter {
 public:
  explicit RowWriteCounter(const StoreFixture& fixture)
      : db_(fixture.path().string(), SQLite::OPEN_READWRITE) {
    db_.exec(
        "CREATE TABLE row_writes (run TEXT NOT NULL);"
        "CREATE TRIGGER count_inserts AFTER INSERT ON runs "
        "BEGIN INSERT INTO row_writes VALUES (new.instance_id); END;"
        "CREATE TRIGGER count_updates AFTER UPDATE ON runs "
        "BEGIN INSERT INTO row_writes VALUES (new.instance_id); END;");
  }
  std::int64_t writes_of(const std::string& instance_id) {
    SQLite::Statement count(db_, "SELECT count(*) FROM row_writes WHERE run = ?1");
    count.bind(1, instance_id);
    count.executeStep();
    return count.getColumn(0).getInt64();
  }

 private:
  SQLite::Database db_;
};

// Checks the stored run's progress, log count and token usage (none: the
// store holds no usage for it).
inline void expect_stored_progress(const Store& store, const std::string& instance_id,
                                   std::optional<double> progress, std::uint64_t log_count,
                                   std::optional<TokenUsage> usage) {
  const auto stored = store.get_run(instance_id);
  ASSERT_TRUE(stored) << instance_id;
  EXPECT_EQ(stored->progress, progress);
  EXPECT_EQ(stored->log_count, log_count);
  ASSERT_EQ(stored->usage.has_value(), usage.has_value());
  if (usage) {
    EXPECT_EQ(stored->usage->prompt_tokens, usage->prompt_tokens);
    EXPECT_EQ(stored->usage->completion_tokens, usage->completion_tokens);
  }
}

}  // namespace nightshift::testing
