#include "runs/admission.hpp"

#include <algorithm>
#include <stdexcept>

namespace nightshift {

Admission::Admission(std::size_t max_running, std::size_t max_queued)
    : max_running_(max_running), max_queued_(max_queued) {
  if (max_running_ == 0) throw std::invalid_argument("at least one run must be allowed at once");
}

std::optional<Admission::Place> Admission::reserve() {
  if (closed_) return std::nullopt;
  // A free slot goes to the queue's front first: a new run never overtakes
  // one that waits.
  if (slots_used_ < max_running_ && queue_used_ == 0) {
    ++slots_used_;
    return Place::slot;
  }
  if (queue_used_ < max_queued_) {
    ++queue_used_;
    return Place::queue;
  }
  return std::nullopt;
}

void Admission::cancel(Place place) {
  if (place == Place::slot) {
    if (slots_used_ > 0) --slots_used_;
  } else if (queue_used_ > 0) {
    --queue_used_;
  }
}

void Admission::enqueue(std::string id) {
  queue_.push_back(std::move(id));
}

bool Admission::remove_queued(const std::string& id) {
  const auto it = std::find(queue_.begin(), queue_.end(), id);
  if (it == queue_.end()) return false;
  queue_.erase(it);
  --queue_used_;
  return true;
}

std::vector<std::string> Admission::take_launchable() {
  std::vector<std::string> out;
  if (closed_) return out;
  while (!queue_.empty() && slots_used_ < max_running_) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
    --queue_used_;
    ++slots_used_;
  }
  return out;
}

void Admission::release_slot() {
  if (slots_used_ > 0) --slots_used_;
}

void Admission::release_slots(std::size_t count) {
  slots_used_ -= std::min(count, slots_used_);
}

}  // namespace nightshift
