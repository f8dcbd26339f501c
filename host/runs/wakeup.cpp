#include "runs/wakeup.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace nightshift {

namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the futex word must be a plain 32-bit word");

std::uint32_t* futex_address(std::atomic<std::uint32_t>& word) {
  return reinterpret_cast<std::uint32_t*>(&word);
}

}  // namespace

bool Wakeup::wait_until(std::uint32_t ticket,
                        std::chrono::steady_clock::time_point deadline) noexcept {
  // steady_clock is CLOCK_MONOTONIC, the clock FUTEX_WAIT_BITSET's absolute
  // timeout is measured on.
  const auto since_epoch = deadline.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  timespec until{};
  until.tv_sec = static_cast<time_t>(seconds.count());
  until.tv_nsec = static_cast<long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
  for (;;) {
    if (word_.load(std::memory_order_acquire) != ticket) return true;
    const long rc = syscall(SYS_futex, futex_address(word_), FUTEX_WAIT_BITSET_PRIVATE, ticket,
                            &until, nullptr, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) continue;  // woken (perhaps by a wake for an older ticket): look again
    if (errno == EAGAIN || errno == EINTR) continue;  // changed before the wait; a signal
    // ETIMEDOUT; any other error cannot happen with these arguments, and is
    // taken as the deadline rather than retried in a loop.
    return word_.load(std::memory_order_acquire) != ticket;
  }
}

void Wakeup::wake_all() noexcept {
  word_.fetch_add(1, std::memory_order_release);
  syscall(SYS_futex, futex_address(word_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace nightshift
