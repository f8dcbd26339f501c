// Admission: who runs next. Counts the worker slots and keeps the FIFO queue
// of runs waiting for one, with both bounds of RunManagerOptions. A start
// reserves its place before its record is committed (so a full host refuses
// at once), and turns the reservation into a slot or a queue entry after.
//
// A pure class: no threads, no clock, no I/O. Not thread-safe; the run
// manager guards it with its own mutex.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace nightshift {

class Admission {
 public:
  enum class Place { slot, queue };

  Admission(std::size_t max_running, std::size_t max_queued);

  // A place for a new run: a free slot, else room in the queue; nullopt when
  // both are full, or admission is closed.
  std::optional<Place> reserve();
  // Gives back a reservation whose run will not be admitted (its commit
  // failed, or it was stopped before it was admitted).
  void cancel(Place place);
  // A run holding a queue reservation joins the back of the queue.
  void enqueue(std::string id);
  // Takes a waiting run out of the queue (it was stopped). False when it was
  // not waiting.
  bool remove_queued(const std::string& id);
  // Moves runs from the front of the queue into free slots; their ids, in
  // queue order. Nothing while closed.
  std::vector<std::string> take_launchable();
  // A run is done with its slot.
  void release_slot();
  // Slots handed back at once for runs the caller gave up on.
  void release_slots(std::size_t count);

  // Nothing more is reserved or launched (shutdown).
  void close() { closed_ = true; }
  bool closed() const { return closed_; }

  std::size_t running() const { return slots_used_; }
  std::size_t queued() const { return queue_.size(); }
  std::size_t max_running() const { return max_running_; }
  std::size_t max_queued() const { return max_queued_; }

 private:
  const std::size_t max_running_;
  const std::size_t max_queued_;
  std::size_t slots_used_ = 0;  // running runs, and reservations of a slot
  std::size_t queue_used_ = 0;  // queued runs, and reservations of a queue place
  std::deque<std::string> queue_;
  bool closed_ = false;
};

}  // namespace nightshift
