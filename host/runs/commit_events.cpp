#include "runs/commit_events.hpp"

namespace nightshift {

CommitEvents::CommitEvents(EventBus& bus, LogBudget& budget, std::function<void(const Run&)> retire)
    : bus_(bus), budget_(budget), retire_(std::move(retire)) {}

void CommitEvents::remember_deleted(const Run& record) {
  std::lock_guard lock(deleted_mutex_);
  deleted_[record.instance_id] = record;
}

void CommitEvents::on_committed(const std::vector<WriteOp>& ops) {
  const bool publish = bus_.subscriber_count() > 0;
  for (const WriteOp& op : ops) {
    if (const auto* upsert = std::get_if<UpsertRun>(&op)) {
      const Run& run = upsert->run;
      RunEventKind kind = RunEventKind::updated;
      if (is_terminal(run.status)) {
        kind = RunEventKind::finished;
        announced_.erase(run.instance_id);
      } else if (announced_.insert(run.instance_id).second) {
        kind = RunEventKind::started;
      }
      if (publish) bus_.publish(std::make_shared<const Event>(RunEvent{kind, run}));
      if (kind == RunEventKind::finished) retire_(run);
    } else if (const auto* logs = std::get_if<AppendLogs>(&op)) {
      std::size_t bytes = 0;
      for (const LogEntry& entry : logs->entries) bytes += LogBudget::cost(entry);
      budget_.release(bytes);
      budget_.count_written(logs->entries.size());
      if (publish && !logs->entries.empty()) {
        bus_.publish(std::make_shared<const Event>(LogEvent{logs->instance_id, logs->entries}));
      }
    } else if (const auto* deletion = std::get_if<DeleteRun>(&op)) {
      std::optional<Run> record;
      {
        std::lock_guard lock(deleted_mutex_);
        auto it = deleted_.find(deletion->instance_id);
        if (it != deleted_.end()) {
          record = std::move(it->second);
          deleted_.erase(it);
        }
      }
      if (publish && record) {
        bus_.publish(std::make_shared<const Event>(RunEvent{RunEventKind::deleted, *record}));
      }
    }
    // PruneRuns: history the clients already saw as finished; nothing to say.
  }
}

}  // namespace nightshift
