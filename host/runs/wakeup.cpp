#include "runs/wakeup.hpp"

#include <ctime>

#include "runs/futex.hpp"

namespace nightshift {

bool Wakeup::wait_until(std::uint32_t ticket,
                        std::chrono::steady_clock::time_point deadline) noexcept {
  // steady_clock is CLOCK_MONOTONIC, the clock futex::wait's deadline is on.
  const auto since_epoch = deadline.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  timespec until{};
  until.tv_sec = static_cast<time_t>(seconds.count());
  until.tv_nsec = static_cast<long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
  for (;;) {
    if (word_.load(std::memory_order_acquire) != ticket) return true;
    if (!futex::wait(word_, ticket, &until)) {
      return word_.load(std::memory_order_acquire) != ticket;
    }
    // Woken (perhaps by a wake for an older ticket), or for no reason: look again.
  }
}

void Wakeup::wake_all() noexcept {
  word_.fetch_add(1, std::memory_order_release);
  futex::wake_all(word_);
}

}  // namespace nightshift
