#include "runs/admission.hpp"

#include <algorithm>
#include <stdexcept>

namespace nightshift {

Admission::Admission(std::size_t max_running, std::size_t max_queued)
    : max_running_(max_running), max_queued_(max_queued) {
  if (max_running_ == 0) throw std::invalid_argument("at least one run must be allowed at once");
}

bool Admission::at_cap(const AgentState& agent) {
  return agent.cap && agent.running >= *agent.cap;
}

void Admission::add_member(const std::string& id, Agents::value_type& agent, bool holds_slot,
                           bool counted_pending) {
  const auto [member, added] = members_.try_emplace(RunKey(id));
  if (!added) --member->second.agent->second.members;  // reserved again under the same id
  member->second = Member{&agent, holds_slot, counted_pending};
  ++agent.second.members;
}

Admission::Members::iterator Admission::find_member(const std::string& id) {
  return id.empty() ? members_.end() : members_.find(RunKey(id));
}

void Admission::erase_member(Members::iterator member) {
  --member->second.agent->second.members;
  members_.erase(member);
}

std::size_t Admission::running_of(const std::string& agent) const {
  const auto it = agents_.find(agent);
  return it == agents_.end() ? 0 : it->second.running;
}

std::optional<Admission::Place> Admission::reserve(const Ticket& ticket) {
  if (closed_) return std::nullopt;
  const bool tracked = !ticket.id.empty();
  Agents::value_type* agent = nullptr;
  if (tracked) {
    agent = &*agents_.try_emplace(ticket.agent).first;
    agent->second.cap = ticket.cap;
  }
  const bool capped = tracked && at_cap(agent->second);
  // A free slot goes to a waiting run first: a new run never overtakes one
  // that could use it. Every run left in the queue while a slot is free is
  // held back by its agent's cap (take_launchable moved the others), so
  // only queue reservations still waiting for their commit count here.
  if (!capped && slots_used_ < max_running_ && pending_uncapped_ == 0) {
    ++slots_used_;
    if (tracked) {
      add_member(ticket.id, *agent, true, false);
      ++agent->second.running;
    }
    return Place::slot;
  }
  if (queue_used_ < max_queued_) {
    ++queue_used_;
    const bool could_run = !capped;
    if (could_run) ++pending_uncapped_;
    if (tracked) add_member(ticket.id, *agent, false, could_run);
    return Place::queue;
  }
  if (tracked && agent->second.running == 0 && agent->second.members == 0) {
    agents_.erase(ticket.agent);
  }
  return std::nullopt;
}

void Admission::give_slot_back(const std::string& id) {
  if (slots_used_ > 0) --slots_used_;
  const auto it = find_member(id);
  if (it == members_.end()) return;
  AgentState& agent = it->second.agent->second;
  if (it->second.holds_slot && agent.running > 0) --agent.running;
  erase_member(it);
}

void Admission::cancel(Place place, const std::string& id) {
  if (place == Place::slot) {
    give_slot_back(id);
    return;
  }
  if (queue_used_ > 0) --queue_used_;
  const auto it = find_member(id);
  if (it != members_.end()) {
    if (it->second.counted_pending && pending_uncapped_ > 0) --pending_uncapped_;
    erase_member(it);
  } else if (id.empty() && pending_uncapped_ > 0) {
    --pending_uncapped_;
  }
}

void Admission::enqueue(std::string id) {
  const auto it = find_member(id);
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
  if (const auto member = find_member(id); member != members_.end()) {
    erase_member(member);
  }
  return true;
}

std::vector<std::string> Admission::take_launchable() {
  std::vector<std::string> out;
  if (closed_) return out;
  for (auto it = queue_.begin(); it != queue_.end() && slots_used_ < max_running_;) {
    const auto member = find_member(*it);
    if (member != members_.end()) {
      AgentState& agent = member->second.agent->second;
      if (at_cap(agent)) {
        ++it;  // waits for its agent; the runs behind it may go
        continue;
      }
      member->second.holds_slot = true;
      ++agent.running;
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
