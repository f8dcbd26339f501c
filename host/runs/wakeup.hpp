// Wakeup: where a run's own thread waits (the agent's sleep_for and
// next_message) and what wakes it (a stop, a message). One futex word:
// std::condition_variable took 48 bytes of every live run, and a host keeps
// thousands of them asleep; C++20's atomic wait has no timeout, and no
// library in the project waits on a word with one, so this calls futex(2)
// (runs/futex.hpp).
//
// The waiter takes a ticket, checks its condition, then waits with the
// ticket: a wake_all() after the ticket was taken ends the wait at once, so
// a wake between the check and the wait is never lost, and the wakeup needs
// no mutex (the condition may still need one of its own). A wait may also
// return for no reason; check the condition again.
//
// Thread safety: [thread-safe]. Any number of threads may wait and wake.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace nightshift {

class Wakeup {
 public:
  Wakeup() = default;
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  std::uint32_t ticket() const noexcept { return word_.load(std::memory_order_acquire); }
  // Sleeps until a wake_all() after `ticket` was taken (true), or until
  // `deadline` (false), whichever comes first.
  bool wait_until(std::uint32_t ticket, std::chrono::steady_clock::time_point deadline) noexcept;
  // Ends every wait on a ticket taken before this call.
  void wake_all() noexcept;

 private:
  std::atomic<std::uint32_t> word_{0};
};

}  // namespace nightshift
