#include "runs/run_announcements.hpp"

#include <memory>

namespace nightshift {

RunAnnouncements::RunAnnouncements(EventBus& bus, std::size_t capacity,
                                   std::size_t finished_capacity)
    : bus_(bus),
      capacity_(capacity == 0 ? 1 : capacity),
      finished_capacity_(finished_capacity == 0 ? 1 : finished_capacity) {}

std::optional<RunEventKind> RunAnnouncements::announce(const Run& run, bool only_if_new) {
  std::lock_guard lock(mutex_);
  const auto it = runs_.find(run.instance_id);
  RunEventKind kind = RunEventKind::updated;
  if (it != runs_.end()) {
    // Finished: whatever comes now is older news or a repeat.
    if (it->second.finished || only_if_new) return std::nullopt;
    if (is_terminal(run.status)) {
      kind = RunEventKind::finished;
      erase_locked(it);
      remember_locked(run.instance_id, true);
    }
  } else {
    // First heard of. Already ended (another host executed it before this
    // host read any earlier state of it): clients still hear it was created,
    // then that it finished.
    kind = RunEventKind::started;
    remember_locked(run.instance_id, is_terminal(run.status));
    if (is_terminal(run.status)) {
      publish_locked(RunEventKind::started, run);
      kind = RunEventKind::finished;
    }
  }
  publish_locked(kind, run);
  return kind;
}

void RunAnnouncements::deleted(const Run& record) {
  std::lock_guard lock(mutex_);
  const auto it = runs_.find(record.instance_id);
  if (it != runs_.end()) erase_locked(it);
  publish_locked(RunEventKind::deleted, record);
}

void RunAnnouncements::forget(const std::string& instance_id) {
  std::lock_guard lock(mutex_);
  const auto it = runs_.find(instance_id);
  if (it != runs_.end()) erase_locked(it);
}

std::size_t RunAnnouncements::size() const {
  std::lock_guard lock(mutex_);
  return runs_.size();
}

void RunAnnouncements::remember_locked(const std::string& instance_id, bool finished) {
  const std::uint64_t generation = ++next_generation_;
  runs_[instance_id] = Entry{generation, finished};
  if (finished) {
    ++finished_;
    finished_order_.emplace_back(instance_id, generation);
    trim_locked(finished_order_, finished_, finished_capacity_);
  } else {
    ++active_;
    active_order_.emplace_back(instance_id, generation);
    trim_locked(active_order_, active_, capacity_);
  }
}

void RunAnnouncements::erase_locked(std::unordered_map<std::string, Entry>::iterator it) {
  --(it->second.finished ? finished_ : active_);
  runs_.erase(it);
}

void RunAnnouncements::trim_locked(Order& order, const std::size_t& count, std::size_t bound) {
  // The oldest go first; elements of runs since forgotten are dropped on the way.
  while (count > bound && !order.empty()) {
    const auto& [id, generation] = order.front();
    const auto it = runs_.find(id);
    if (it != runs_.end() && it->second.generation == generation) erase_locked(it);
    order.pop_front();
  }
  if (order.size() > 2 * count + 64) {
    // Many of its runs were forgotten or moved on: only current elements stay.
    Order kept;
    for (auto& element : order) {
      const auto it = runs_.find(element.first);
      if (it != runs_.end() && it->second.generation == element.second) {
        kept.push_back(std::move(element));
      }
    }
    order = std::move(kept);
  }
}

void RunAnnouncements::publish_locked(RunEventKind kind, const Run& run) {
  if (bus_.subscriber_count() == 0) return;
  bus_.publish(std::make_shared<const Event>(RunEvent{kind, run}));
}

}  // namespace nightshift
