// Wakeup, where a run's thread waits in sleep_for and next_message: a wake
// after the waiter's ticket ends its wait, however the two interleave, and
// a wait with no wake ends at its deadline. Waits for conditions, never for
// margins: no assertion depends on how fast the machine is.
#include "runs/wakeup.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(WakeupTest, AWaitWithNoWakeEndsAtItsDeadline) {
  Wakeup wakeup;
  const auto deadline = Clock::now() + 50ms;
  EXPECT_FALSE(wakeup.wait_until(wakeup.ticket(), deadline));
  EXPECT_GE(Clock::now(), deadline);
  EXPECT_FALSE(wakeup.wait_until(wakeup.ticket(), Clock::now() - 1s)) << "a deadline passed";
}

TEST(WakeupTest, AWakeAfterTheTicketEndsTheWaitAtOnce) {
  Wakeup wakeup;
  const std::uint32_t ticket = wakeup.ticket();
  wakeup.wake_all();  // between the waiter's look at its condition and its wait
  EXPECT_TRUE(wakeup.wait_until(ticket, Clock::now() + 24h));
  EXPECT_NE(wakeup.ticket(), ticket);
}

TEST(WakeupTest, AWakeFromAnotherThreadEndsEveryWait) {
  Wakeup wakeup;
  std::atomic<bool> go{false};
  std::atomic<int> waiting{0}, woken{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&] {
      // Waits for `go` the way a run waits for a stop: ticket, look, wait.
      for (;;) {
        const std::uint32_t ticket = wakeup.ticket();
        waiting.fetch_add(1);
        if (go.load()) break;
        wakeup.wait_until(ticket, Clock::now() + 24h);
      }
      woken.fetch_add(1);
    });
  }
  while (waiting.load() < 4) std::this_thread::yield();
  go.store(true);
  wakeup.wake_all();
  for (std::thread& waiter : waiters) waiter.join();
  EXPECT_EQ(woken.load(), 4);
}

TEST(WakeupTest, ManyWakesRacingWaitsAreNeverLost) {
  // A ping-pong: each side waits for the other's count to move. A lost wake
  // would leave one side waiting for a day, and the test would hang.
  Wakeup to_a, to_b;
  std::atomic<int> a{0}, b{0};
  constexpr int kRounds = 20000;
  std::thread other([&] {
    for (int round = 1; round <= kRounds; ++round) {
      for (;;) {
        const std::uint32_t ticket = to_b.ticket();
        if (a.load() >= round) break;
        to_b.wait_until(ticket, Clock::now() + 24h);
      }
      b.store(round);
      to_a.wake_all();
    }
  });
  for (int round = 1; round <= kRounds; ++round) {
    a.store(round);
    to_b.wake_all();
    for (;;) {
      const std::uint32_t ticket = to_a.ticket();
      if (b.load() >= round) break;
      to_a.wait_until(ticket, Clock::now() + 24h);
    }
  }
  other.join();
  EXPECT_EQ(b.load(), kRounds);
}

}  // namespace
}  // namespace nightshift
