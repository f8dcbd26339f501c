#include "runs/run_announcements.hpp"

#include <memory>

namespace nightshift {

RunAnnouncements::RunAnnouncements(EventBus& bus, std::size_t capacity,
                                   std::size_t finished_capacity)
    : bus_(bus),
      capacity_(capacity == 0 ? 1 : capacity),
      finished_capacity_(finished_capacity == 0 ? 1 : finished_capacity) {}

std::optional<RunEventKind> RunAnnouncements::announce(const Run& run, bool only_if_new) {
  RunKey key(run.instance_id);
  std::lock_guard lock(mutex_);
  // Finished: whatever comes now is older news or a repeat.
  if (finished_.get<ById>().count(key) > 0) return std::nullopt;
  const bool ended = is_terminal(run.status);
  auto& active = active_.get<ById>();
  const auto it = active.find(key);
  RunEventKind kind = RunEventKind::updated;
  if (it != active.end()) {
    if (only_if_new) return std::nullopt;
    if (ended) {
      kind = RunEventKind::finished;
      active.erase(it);
      remember_locked(finished_, std::move(key), finished_capacity_);
    }
  } else {
    // First heard of. Already ended (another host executed it before this
    // host read any earlier state of it): clients still hear it was created,
    // then that it finished.
    kind = RunEventKind::started;
    if (ended) {
      remember_locked(finished_, std::move(key), finished_capacity_);
      publish_locked(RunEventKind::started, run);
      kind = RunEventKind::finished;
    } else {
      remember_locked(active_, std::move(key), capacity_);
    }
  }
  publish_locked(kind, run);
  return kind;
}

void RunAnnouncements::deleted(const Run& record) {
  const RunKey key(record.instance_id);
  std::lock_guard lock(mutex_);
  erase_locked(key);
  publish_locked(RunEventKind::deleted, record);
}

void RunAnnouncements::forget(const std::string& instance_id) {
  const RunKey key(instance_id);
  std::lock_guard lock(mutex_);
  erase_locked(key);
}

std::size_t RunAnnouncements::size() const {
  std::lock_guard lock(mutex_);
  return active_.size() + finished_.size();
}

void RunAnnouncements::remember_locked(Runs& runs, RunKey key, std::size_t bound) {
  runs.push_back(std::move(key));
  while (runs.size() > bound) runs.pop_front();
}

void RunAnnouncements::erase_locked(const RunKey& key) {
  if (active_.get<ById>().erase(key) == 0) finished_.get<ById>().erase(key);
}

void RunAnnouncements::publish_locked(RunEventKind kind, const Run& run) {
  if (bus_.subscriber_count() == 0) return;
  bus_.publish(std::make_shared<const Event>(RunEvent{kind, run}));
}

}  // namespace nightshift
