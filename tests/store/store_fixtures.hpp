// Runs and stores for the store tests.
#pragma once

#include <SQLiteCpp/Database.h>

#include <memory>
#include <string>

#include "model/run.hpp"
#include "store/run_store.hpp"
#include "test_support.hpp"

namespace nightshift::testing {

inline Timestamp at_ms(std::int64_t ms) {
  return Timestamp{std::chrono::milliseconds{ms}};
}

// A queued run with only the required fields set.
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

// A store in its own temporary directory.
class StoreFixture {
 public:
  StoreFixture() : store_(std::make_unique<RunStore>(StoreOptions{path(), 4})) {}
  std::filesystem::path path() const { return dir_ / "nightshift.db"; }
  RunStore& store() { return *store_; }
  void reopen() {
    store_.reset();
    store_ = std::make_unique<RunStore>(StoreOptions{path(), 4});
  }
  void put(const Run& run) { store_->apply({UpsertRun{run}}); }
  // A separate connection, for looking at what the store wrote.
  SQLite::Database inspect() const { return SQLite::Database(path().string()); }

 private:
  TempDir dir_;
  std::unique_ptr<RunStore> store_;
};

}  // namespace nightshift::testing
