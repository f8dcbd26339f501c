// Admission without threads: slots first, then the FIFO queue, refusals past
// both bounds, stops of waiting runs, and closing.
#include "runs/admission.hpp"

#include <gtest/gtest.h>

namespace nightshift {
namespace {

using Place = Admission::Place;

TEST(AdmissionTest, GivesSlotsUntilFullThenQueuePlacesThenRefuses) {
  Admission admission(2, 1);
  EXPECT_EQ(admission.reserve(), Place::slot);
  EXPECT_EQ(admission.reserve(), Place::slot);
  EXPECT_EQ(admission.reserve(), Place::queue);
  EXPECT_EQ(admission.reserve(), std::nullopt);
  EXPECT_EQ(admission.running(), 2u);
}

TEST(AdmissionTest, QueuedRunsLaunchInOrderAsSlotsFree) {
  Admission admission(1, 10);
  ASSERT_EQ(admission.reserve(), Place::slot);
  ASSERT_EQ(admission.reserve(), Place::queue);
  ASSERT_EQ(admission.reserve(), Place::queue);
  admission.enqueue("a");
  admission.enqueue("b");
  EXPECT_TRUE(admission.take_launchable().empty()) << "the one slot is taken";
  admission.release_slot();
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"a"});
  admission.release_slot();
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"b"});
  EXPECT_EQ(admission.queued(), 0u);
}

TEST(AdmissionTest, NewRunNeverOvertakesOneWaitingForItsCommit) {
  Admission admission(1, 10);
  ASSERT_EQ(admission.reserve(), Place::slot);
  ASSERT_EQ(admission.reserve(), Place::queue);  // its commit is still in flight
  admission.release_slot();                      // a slot frees meanwhile
  EXPECT_EQ(admission.reserve(), Place::queue) << "the earlier run waits for that slot";
  admission.enqueue("first");
  admission.enqueue("second");
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"first"});
}

TEST(AdmissionTest, StoppedWaitingRunLeavesTheQueueAndFreesItsPlace) {
  Admission admission(1, 1);
  ASSERT_EQ(admission.reserve(), Place::slot);
  ASSERT_EQ(admission.reserve(), Place::queue);
  admission.enqueue("waiting");
  EXPECT_EQ(admission.reserve(), std::nullopt);
  EXPECT_TRUE(admission.remove_queued("waiting"));
  EXPECT_FALSE(admission.remove_queued("waiting"));
  EXPECT_EQ(admission.reserve(), Place::queue);
}

TEST(AdmissionTest, CancelledReservationsGiveTheirPlaceBack) {
  Admission admission(1, 1);
  ASSERT_EQ(admission.reserve(), Place::slot);
  ASSERT_EQ(admission.reserve(), Place::queue);
  admission.cancel(Place::queue);
  admission.cancel(Place::slot);
  EXPECT_EQ(admission.running(), 0u);
  EXPECT_EQ(admission.reserve(), Place::slot);
}

TEST(AdmissionTest, ClosedAdmissionReservesAndLaunchesNothing) {
  Admission admission(1, 5);
  ASSERT_EQ(admission.reserve(), Place::slot);
  ASSERT_EQ(admission.reserve(), Place::queue);
  admission.enqueue("a");
  admission.close();
  admission.release_slot();
  EXPECT_EQ(admission.reserve(), std::nullopt);
  EXPECT_TRUE(admission.take_launchable().empty());
}

TEST(AdmissionTest, ZeroSlotsIsRefused) {
  EXPECT_THROW(Admission(0, 5), std::invalid_argument);
}

// ---- per-agent caps (limits.maxConcurrent) ----

Admission::Ticket ticket(const std::string& id, const std::string& agent,
                         std::optional<std::uint32_t> cap) {
  return Admission::Ticket{id, agent, cap};
}

TEST(AdmissionTest, RunsOverTheirAgentsCapWaitWhileOtherAgentsRun) {
  Admission admission(10, 100);
  EXPECT_EQ(admission.reserve(ticket("a1", "capped", 2)), Place::slot);
  EXPECT_EQ(admission.reserve(ticket("a2", "capped", 2)), Place::slot);
  EXPECT_EQ(admission.reserve(ticket("a3", "capped", 2)), Place::queue);
  admission.enqueue("a3");
  EXPECT_EQ(admission.reserve(ticket("b1", "free", std::nullopt)), Place::slot)
      << "a run of another agent does not wait behind the capped one";
  EXPECT_TRUE(admission.take_launchable().empty());
  EXPECT_EQ(admission.running_of("capped"), 2u);
  admission.release_slot("a1");
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"a3"});
  EXPECT_EQ(admission.running_of("capped"), 2u);
}

TEST(AdmissionTest, QueuedRunsOfOtherAgentsPassACappedOneAtTheFront) {
  Admission admission(2, 100);
  ASSERT_EQ(admission.reserve(ticket("c1", "capped", 1)), Place::slot);
  ASSERT_EQ(admission.reserve(ticket("o1", "other", std::nullopt)), Place::slot);
  ASSERT_EQ(admission.reserve(ticket("c2", "capped", 1)), Place::queue);
  ASSERT_EQ(admission.reserve(ticket("o2", "other", std::nullopt)), Place::queue);
  admission.enqueue("c2");
  admission.enqueue("o2");
  admission.release_slot("o1");
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"o2"})
      << "c2 stays: its agent is at its cap";
  admission.release_slot("c1");
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"c2"});
  EXPECT_EQ(admission.queued(), 0u);
}

TEST(AdmissionTest, ManyStartsNeverExceedTheCap) {
  Admission admission(32, 10000);
  std::vector<std::string> launched;
  std::size_t most = 0;
  for (int i = 0; i < 500; ++i) {
    std::string id("r");
    id += std::to_string(i);
    const auto place = admission.reserve(ticket(id, "capped", 3));
    ASSERT_TRUE(place);
    if (*place == Place::slot) {
      launched.push_back(id);
    } else {
      admission.enqueue(id);
    }
    most = std::max(most, admission.running_of("capped"));
    // Every fifth start, the oldest running one ends.
    if (i % 5 == 4 && !launched.empty()) {
      admission.release_slot(launched.front());
      launched.erase(launched.begin());
      for (auto& next : admission.take_launchable()) launched.push_back(next);
    }
    most = std::max(most, admission.running_of("capped"));
  }
  EXPECT_EQ(most, 3u);
  while (!launched.empty()) {
    admission.release_slot(launched.front());
    launched.erase(launched.begin());
    for (auto& next : admission.take_launchable()) launched.push_back(next);
    ASSERT_LE(admission.running_of("capped"), 3u);
  }
  EXPECT_EQ(admission.queued(), 0u);
  EXPECT_EQ(admission.running(), 0u);
}

TEST(AdmissionTest, ARefusedStartKeepsTheAgentOfARunThatWaits) {
  // A waiting run's entry points at its agent's: a refusal of another run
  // of that agent, with none of its runs running, must not drop it (under
  // ASan a dropped one is a use after free when the run is launched).
  Admission admission(2, 1);
  ASSERT_EQ(admission.reserve(ticket("o1", "other", std::nullopt)), Place::slot);
  ASSERT_EQ(admission.reserve(ticket("o2", "other", std::nullopt)), Place::slot);
  ASSERT_EQ(admission.reserve(ticket("c1", "capped", 1)), Place::queue);
  admission.enqueue("c1");
  EXPECT_EQ(admission.reserve(ticket("c2", "capped", 1)), std::nullopt) << "the queue is full";
  admission.release_slot("o1");
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"c1"});
  EXPECT_EQ(admission.running_of("capped"), 1u);
  admission.release_slot("o2");
  EXPECT_EQ(admission.reserve(ticket("c3", "capped", 1)), Place::queue)
      << "its agent is at its cap of 1, though a slot is free";
  admission.enqueue("c3");
  admission.release_slot("c1");
  EXPECT_EQ(admission.running_of("capped"), 0u);
  EXPECT_EQ(admission.take_launchable(), std::vector<std::string>{"c3"});
  EXPECT_EQ(admission.running_of("capped"), 1u);
}

TEST(AdmissionTest, CancelledCappedReservationFreesItsAgentsPlace) {
  Admission admission(4, 4);
  ASSERT_EQ(admission.reserve(ticket("x1", "capped", 1)), Place::slot);
  admission.cancel(Place::slot, "x1");
  EXPECT_EQ(admission.running_of("capped"), 0u);
  EXPECT_EQ(admission.reserve(ticket("x2", "capped", 1)), Place::slot);
}

}  // namespace
}  // namespace nightshift
