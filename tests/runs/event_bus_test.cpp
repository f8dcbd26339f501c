// The event bus on its own: delivery, unsubscribe semantics, and the progress
// throttle.
#include "events/event_bus.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "test_support.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using testing::wait_until;

EventPtr run_event(RunEventKind kind, const std::string& id) {
  Run run;
  run.instance_id = id;
  return std::make_shared<const Event>(RunEvent{kind, run});
}

TEST(EventBusTest, PublishReachesEverySubscriberOnThePublishingThread) {
  EventBus bus;
  std::vector<std::thread::id> seen_on;
  std::vector<std::string> seen;
  auto first = bus.subscribe([&](const EventPtr& e) {
    seen_on.push_back(std::this_thread::get_id());
    seen.push_back(std::get<RunEvent>(*e).run.instance_id);
  });
  auto second = bus.subscribe([&](const EventPtr& e) {
    seen.push_back("second:" + std::get<RunEvent>(*e).run.instance_id);
  });
  EXPECT_EQ(bus.subscriber_count(), 2u);
  bus.publish(run_event(RunEventKind::started, "a"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen_on.at(0), std::this_thread::get_id());
  EXPECT_EQ(to_string(RunEventKind::finished), "finished");
}

TEST(EventBusTest, ResetSubscriptionIsNeverCalledAgainAndMovedOneKeepsItsPlace) {
  EventBus bus;
  int calls = 0;
  EventBus::Subscription moved_to;
  {
    auto subscription = bus.subscribe([&](const EventPtr&) { ++calls; });
    moved_to = std::move(subscription);
  }  // the moved-from subscription's destructor must not unsubscribe
  bus.publish(run_event(RunEventKind::updated, "a"));
  EXPECT_EQ(calls, 1);
  moved_to.reset();
  EXPECT_EQ(bus.subscriber_count(), 0u);
  bus.publish(run_event(RunEventKind::updated, "a"));
  EXPECT_EQ(calls, 1);
}

TEST(EventBusTest, UnsubscribeWaitsForAHandlerThatIsRunning) {
  EventBus bus;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> inside{false}, returned{false}, reset_done{false};
  auto subscription = bus.subscribe([&](const EventPtr&) {
    inside = true;
    released.wait();
    returned = true;
  });
  std::thread publisher([&] { bus.publish(run_event(RunEventKind::updated, "a")); });
  ASSERT_TRUE(wait_until([&] { return inside.load(); }));
  std::thread unsubscriber([&] {
    subscription.reset();
    reset_done = true;
    EXPECT_TRUE(returned.load()) << "unsubscribe returned while the handler was still running";
  });
  EXPECT_FALSE(wait_until([&] { return reset_done.load(); }, 100ms));
  release.set_value();
  publisher.join();
  unsubscriber.join();
  EXPECT_TRUE(reset_done.load());
}

TEST(EventBusTest, AThrowingHandlerDoesNotStopTheOthers) {
  EventBus bus;
  int calls = 0;
  auto bad = bus.subscribe([](const EventPtr&) { throw std::runtime_error("bad subscriber"); });
  auto good = bus.subscribe([&](const EventPtr&) { ++calls; });
  EXPECT_NO_THROW(bus.publish(run_event(RunEventKind::updated, "a")));
  EXPECT_EQ(calls, 1);
}

TEST(ProgressThrottleTest, AdmitsOneUpdatePerInterval) {
  ProgressThrottle throttle(100ms);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  EXPECT_TRUE(throttle.admit(t0));
  EXPECT_FALSE(throttle.admit(t0 + 1ms));
  EXPECT_FALSE(throttle.admit(t0 + 99ms));
  EXPECT_TRUE(throttle.admit(t0 + 100ms));
  EXPECT_FALSE(throttle.admit(t0 + 150ms));
  EXPECT_TRUE(throttle.admit(t0 + 250ms));
}

}  // namespace
}  // namespace nightshift
