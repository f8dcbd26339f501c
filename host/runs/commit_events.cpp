#include "runs/commit_events.hpp"

namespace nightshift {

CommitEvents::CommitEvents(EventBus& bus, RunAnnouncements& announcements, LogBudget& budget,
                           std::function<void(const Run&)> committed, Progressed progressed,
                           std::function<void(const Run&)> retire)
    : bus_(bus),
      announcements_(announcements),
      budget_(budget),
      committed_(std::move(committed)),
      progressed_(std::move(progressed)),
      retire_(std::move(retire)) {}

void CommitEvents::remember_deleted(const Run& record) {
  std::lock_guard lock(deleted_mutex_);
  deleted_[record.instance_id] = record;
}

void CommitEvents::on_committed(const std::vector<WriteOp>& ops) {
  const bool publish = bus_.subscriber_count() > 0;
  for (const WriteOp& op : ops) {
    if (const auto* upsert = std::get_if<UpsertRun>(&op)) {
      const Run& run = upsert->run();
      committed_(run);
      announcements_.announce(run);
      if (is_terminal(run.status)) retire_(run);
    } else if (const auto* progress = std::get_if<UpdateProgress>(&op)) {
      // The whole record is made only for someone to hear it.
      if (std::optional<Run> run = progressed_(*progress, publish)) announcements_.announce(*run);
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
      if (record) {
        announcements_.deleted(*record);
      } else {
        announcements_.forget(deletion->instance_id);
      }
    }
    // PruneRuns: history the clients already saw as finished; nothing to say.
  }
}

}  // namespace nightshift
