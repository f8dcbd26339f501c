#include "runs/admission.hpp"

#include <algorithm>
#include <stdexcept>

namespace nightshift {

Admission::Admission(std::size_t max_running, std::size_t max_queued)
    : max_running_(max_running), max_queued_(max_queued) {
  if (max_running_ == 0) throw std::invalid_argument("at least one run must be allowed at once");
}

bool Admission::at_cap(const std::string& agent) const {
  const auto it = agents_.find(agent);
  return it != agents_.end() && it->second.cap && it->second.running >= *it->second.cap;
}

std::size_t Admission::running_of(const std::string& agent) const {
  const auto it = agents_.find(agent);
  return it == agents_.end() ? 0 : it->second.running;
}

std::optional<Admission::Place> Admission::reserve(const Ticket& ticket) {
  if (closed_) return std::nullopt;
  const bool tracked = !ticket.id.empty();
  if (tracked) agents_[ticket.agent].cap = ticket.cap;
  const bool capped = tracked && at_cap(ticket.agent);
  // A free slot goes to a waiting run first: a new run never overtakes one
  // that could use it. Every run left in the queue while a slot is free is
  // held back by its agent's cap (take_launchable moved the others), so
  // only queue reservations still waiting for their commit count here.
  if (!capped && slots_used_ < max_running_ && pending_uncapped_ == 0) {
    ++slots_used_;
    if (tracked) {
      members_[ticket.id] = Member{ticket.agent, true, false};
      ++agents_[ticket.agent].running;
    }
    return Place::slot;
  }
  if (queue_used_ < max_queued_) {
    ++queue_used_;
    const bool could_run = !capped;
    if (could_run) ++pending_uncapped_;
    if (tracked) members_[ticket.id] = Member{ticket.agent, false, could_run};
    return Place::queue;
  }
  if (tracked && agents_[ticket.agent].running == 0) agents_.erase(ticket.agent);
  return std::nullopt;
}

void Admission::give_slot_back(const std::string& id) {
  if (slots_used_ > 0) --slots_used_;
  const auto it = members_.find(id);
  if (it == members_.end()) return;
  if (it->second.holds_slot) {
    auto agent = agents_.find(it->second.agent);
    if (agent != agents_.end() && agent->second.running > 0) --agent->second.running;
  }
  members_.erase(it);
}

void Admission::cancel(Place place, const std::string& id) {
  if (place == Place::slot) {
    give_slot_back(id);
    return;
  }
  if (queue_used_ > 0) --queue_used_;
  const auto it = members_.find(id);
  if (it != members_.end()) {
    if (it->second.counted_pending && pending_uncapped_ > 0) --pending_uncapped_;
    members_.erase(it);
  } else if (id.empty() && pending_uncapped_ > 0) {
    --pending_uncapped_;
  }
}

void Admission::enqueue(std::string id) {
  const auto it = members_.find(id);
  if (it != members_.end()) {
    if (it->second.counted_pending && pending_uncapped_ > 0) --pending_uncapped_;
    it->second.counted_pending = false;
  } else if (pending_uncapped_ > 0) {
    --pending_uncapped_;  // an untracked reservation
  }
  queue_.push_back(std::move(id));
}

bool Admission::remove_queued(const std::string& id) {
  const auto it = std::find(queue_.begin(), queue_.end(), id);
  if (it == queue_.end()) return false;
  queue_.erase(it);
  --queue_used_;
  members_.erase(id);
  return true;
}

std::vector<std::string> Admission::take_launchable() {
  std::vector<std::string> out;
  if (closed_) return out;
  for (auto it = queue_.begin(); it != queue_.end() && slots_used_ < max_running_;) {
    const auto member = members_.find(*it);
    if (member != members_.end()) {
      if (at_cap(member->second.agent)) {
        ++it;  // waits for its agent; the runs behind it may go
        continue;
      }
      member->second.holds_slot = true;
      ++agents_[member->second.agent].running;
    }
    out.push_back(std::move(*it));
    it = queue_.erase(it);
    --queue_used_;
    ++slots_used_;
  }
  return out;
}

void Admission::release_slot(const std::string& id) {
  give_slot_back(id);
}

void Admission::release_slots(std::size_t count) {
  slots_used_ -= std::min(count, slots_used_);
}

}  // namespace nightshift
