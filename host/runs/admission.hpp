// Admission: who runs next. Counts the worker slots and keeps the FIFO queue
// of runs waiting for one, with both bounds of RunManagerOptions, and the
// per-agent caps (limits.maxConcurrent): a run whose agent is at its cap
// waits in the queue without holding up the runs of other agents behind it.
// A start reserves its place before its record is committed (so a full host
// refuses at once), and turns the reservation into a slot or a queue entry
// after.
//
// A pure class: no threads, no clock, no I/O. Not thread-safe; the run
// manager guards it with its own mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/run_key.hpp"

namespace nightshift {

class Admission {
 public:
  enum class Place { slot, queue };

  // Who asks for a place. A ticket without an id is counted against the
  // host's bounds only (no per-agent cap).
  struct Ticket {
    std::string id;                    // the run's id
    std::string agent;                 // its agent's id
    std::optional<std::uint32_t> cap;  // the agent's maxConcurrent, if any
  };

  Admission(std::size_t max_running, std::size_t max_queued);

  // A place for a new run: a free slot (when its agent is under its cap and
  // no run that could use the slot waits), else room in the queue; nullopt
  // when both are full, or admission is closed.
  std::optional<Place> reserve(const Ticket& ticket = {});
  // Gives back a reservation whose run will not be admitted (its commit
  // failed, or it was stopped before it was admitted).
  void cancel(Place place, const std::string& id = {});
  // A run holding a queue reservation joins the back of the queue.
  void enqueue(std::string id);
  // Takes a waiting run out of the queue (it was stopped). False when it was
  // not waiting.
  bool remove_queued(const std::string& id);
  // Moves runs from the queue into free slots, front first, passing over
  // runs whose agent is at its cap; their ids, in queue order. Nothing
  // while closed.
  std::vector<std::string> take_launchable();
  // A run is done with its slot.
  void release_slot(const std::string& id = {});
  // Slots handed back at once for runs the caller gave up on.
  void release_slots(std::size_t count);

  // Nothing more is reserved or launched (shutdown).
  void close() { closed_ = true; }
  bool closed() const { return closed_; }

  std::size_t running() const { return slots_used_; }
  std::size_t queued() const { return queue_.size(); }
  std::size_t max_running() const { return max_running_; }
  std::size_t max_queued() const { return max_queued_; }
  // Slots held by runs of one agent.
  std::size_t running_of(const std::string& agent) const;

 private:
  struct AgentState {
    std::size_t running = 0;           // slots its runs hold
    std::size_t members = 0;           // its runs in members_ (which point at this entry)
    std::optional<std::uint32_t> cap;  // the latest cap a ticket named
  };
  using Agents = std::unordered_map<std::string, AgentState>;
  // An entry per active run: kept small (a RunKey, a pointer into agents_),
  // since a host may hold ten thousand runs at once.
  struct Member {
    Agents::value_type* agent = nullptr;  // its entry in agents_, kept while it is a member
    bool holds_slot = false;
    bool counted_pending = false;  // a queue reservation that could have used a slot
  };
  using Members = std::unordered_map<RunKey, Member, RunKey::Hash>;

  static bool at_cap(const AgentState& agent);
  void add_member(const std::string& id, Agents::value_type& agent, bool holds_slot,
                  bool counted_pending);
  // A run's entry; end() for an untracked (empty) id.
  Members::iterator find_member(const std::string& id);
  void erase_member(Members::iterator member);
  void give_slot_back(const std::string& id);

  const std::size_t max_running_;
  const std::size_t max_queued_;
  std::size_t slots_used_ = 0;  // running runs, and reservations of a slot
  std::size_t queue_used_ = 0;  // queued runs, and reservations of a queue place
  // Queue reservations not yet enqueued whose agent was under its cap: a
  // free slot is theirs before a newer run's.
  std::size_t pending_uncapped_ = 0;
  std::deque<std::string> queue_;
  Members members_;  // runs reserved with a ticket id
  Agents agents_;    // agents named by a ticket: their caps, and their runs
  bool closed_ = false;
};

}  // namespace nightshift
