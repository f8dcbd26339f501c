// The futex(2) calls the run engine's own waits are built on: threads sleep
// on a 32-bit atomic word until another thread changes it and wakes them.
//
// Why not C++20's atomic wait: it has no timeout, and libstdc++ 12's spins
// and calls sched_yield before it sleeps (on a loaded 2-core machine each
// yield is a context switch) and makes the wake system call on every
// notify, whether or not anybody waits. The callers here know when nobody
// does (see WorkerThread's state word) and skip the call.
//
// Thread safety: [thread-safe]. The word's own loads and stores order what
// the threads share; these calls only sleep and wake.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

namespace nightshift::futex {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be a plain 32-bit word");

// Sleeps while `word` holds `expected`: returns when woken, when the word
// did not hold `expected` to begin with, on a signal, or for no reason
// (look at the word again), with true; with false only once `deadline` (an
// absolute CLOCK_MONOTONIC time, the clock of std::chrono::steady_clock)
// has passed. No deadline: null.
bool wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          const timespec* deadline = nullptr) noexcept;

// Wakes every thread sleeping on `word`.
void wake_all(const std::atomic<std::uint32_t>& word) noexcept;

}  // namespace nightshift::futex
