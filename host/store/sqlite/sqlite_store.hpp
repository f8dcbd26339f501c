// The SQLite implementation of Store: the embedded, single-host default. It
// is RunStore (run_store.hpp) behind the Store interface, unchanged.
#pragma once

#include "store/run_store.hpp"
#include "store/store.hpp"

namespace nightshift {

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(StoreOptions options) : store_(std::move(options)) {}

  std::string_view kind() const noexcept override { return "sqlite"; }
  bool writes_progress_alone() const noexcept override { return true; }

  void apply(const std::vector<WriteOp>& ops) override { store_.apply(ops); }
  bool apply_reporting_unfinished_prune(const std::vector<WriteOp>& ops) override {
    return store_.apply_reporting_unfinished_prune(ops);
  }
  std::vector<Run> mark_interrupted(Timestamp now, const std::string& error) override {
    return store_.mark_interrupted(now, error);
  }
  std::size_t prune(const RetentionPolicy& policy, Timestamp now) override {
    return store_.prune(policy, now);
  }

  std::optional<Run> get_run(const std::string& instance_id) const override {
    return store_.get_run(instance_id);
  }
  std::vector<Run> list_active(const std::optional<std::string>& agent_id) const override {
    return store_.list_active(agent_id);
  }
  HistoryPage list_history(const HistoryQuery& query) const override {
    return store_.list_history(query);
  }
  std::vector<LogEntry> read_logs(const std::string& instance_id, std::uint64_t after_seq,
                                  std::size_t limit) const override {
    return store_.read_logs(instance_id, after_seq, limit);
  }
  std::size_t count_runs() const override { return store_.count_runs(); }
  int schema_version() const override { return store_.schema_version(); }
  std::string integrity_check() const override { return store_.integrity_check(); }

  // The SQLite store itself, for what only it has.
  RunStore& sqlite() noexcept { return store_; }

 private:
  RunStore store_;
};

}  // namespace nightshift
