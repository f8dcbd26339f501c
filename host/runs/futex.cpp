#include "runs/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace nightshift::futex {

namespace {

std::uint32_t* address(const std::atomic<std::uint32_t>& word) noexcept {
  return reinterpret_cast<std::uint32_t*>(const_cast<std::atomic<std::uint32_t>*>(&word));
}

}  // namespace

bool wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          const timespec* deadline) noexcept {
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (plain
  // FUTEX_WAIT a relative one).
  const long rc = syscall(SYS_futex, address(word), FUTEX_WAIT_BITSET_PRIVATE, expected, deadline,
                          nullptr, FUTEX_BITSET_MATCH_ANY);
  // EAGAIN: the word had changed; EINTR: a signal. Any other error cannot
  // happen with these arguments and is taken as a return for no reason.
  return rc == 0 || errno != ETIMEDOUT;
}

void wake_all(const std::atomic<std::uint32_t>& word) noexcept {
  syscall(SYS_futex, address(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace nightshift::futex
