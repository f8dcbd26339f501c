// The watchdog runs deadlines in time order, batches soon() tasks, runs
// posted tasks at once, survives a throwing task, and runs what was posted
// before stop().
#include "runs/watchdog.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "test_support.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;

TEST(WatchdogTest, DeadlinesRunInTimeOrderNotSubmissionOrder) {
  Watchdog watchdog(10ms, 1h, nullptr);
  std::mutex mutex;
  std::vector<int> order;
  const auto now = Watchdog::Clock::now();
  watchdog.at(now + 60ms, [&] {
    std::lock_guard lock(mutex);
    order.push_back(2);
  });
  watchdog.at(now + 20ms, [&] {
    std::lock_guard lock(mutex);
    order.push_back(1);
  });
  ASSERT_TRUE(testing::wait_until([&] {
    std::lock_guard lock(mutex);
    return order.size() == 2;
  }));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(WatchdogTest, SoonAndPostedTasksRunAndAThrowingTaskDoesNotStopTheThread) {
  Watchdog watchdog(10ms, 1h, nullptr);
  std::atomic<int> ran{0};
  watchdog.post([] { throw std::runtime_error("a task failed"); });
  watchdog.soon([&] { ran += 1; });
  watchdog.post([&] { ran += 10; });
  EXPECT_TRUE(testing::wait_until([&] { return ran.load() == 11; }));
}

TEST(WatchdogTest, PeriodicTaskRepeats) {
  std::atomic<int> ticks{0};
  Watchdog watchdog(10ms, 5ms, [&] { ticks += 1; });
  EXPECT_TRUE(testing::wait_until([&] { return ticks.load() >= 3; }));
}

TEST(WatchdogTest, StopRunsWhatWasPostedAndDropsWhatIsNotDue) {
  std::atomic<bool> posted_ran{false}, deadline_ran{false};
  {
    Watchdog watchdog(10ms, 1h, nullptr);
    watchdog.at(Watchdog::Clock::now() + 1h, [&] { deadline_ran = true; });
    watchdog.stop();
    watchdog.post([&] { posted_ran = true; });  // after stop: never runs, never crashes
  }
  EXPECT_FALSE(deadline_ran.load());
  EXPECT_FALSE(posted_ran.load());
}

}  // namespace
}  // namespace nightshift
