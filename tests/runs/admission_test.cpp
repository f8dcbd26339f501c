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

}  // namespace
}  // namespace nightshift
