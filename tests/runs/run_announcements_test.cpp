// The host's one record of announced runs on its own: one `started` per run
// whichever path announces it first, nothing of a run after its `finished`,
// `deleted` with the record, and the bounds.
#include "runs/run_announcements.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace nightshift {
namespace {

Run run_in(const std::string& id, RunStatus status) {
  Run run;
  run.instance_id = id;
  run.status = status;
  return run;
}

std::string numbered(char prefix, int i) {
  std::string id(1, prefix);
  id += std::to_string(i);
  return id;
}

class Heard {
 public:
  explicit Heard(EventBus& bus)
      : subscription_(bus.subscribe([this](const EventPtr& event) {
          if (const auto* run = std::get_if<RunEvent>(event.get())) {
            std::string text(to_string(run->kind));
            text.append(1, ' ').append(run->run.instance_id).append(1, ' ');
            text.append(to_string(run->run.status));
            events_.push_back(std::move(text));
          }
        })) {}
  const std::vector<std::string>& events() const { return events_; }

 private:
  std::vector<std::string> events_;
  EventBus::Subscription subscription_;
};

TEST(RunAnnouncementsTest, OneStartedPerRunThenUpdatesAndOneFinishedThenNothing) {
  EventBus bus;
  Heard heard(bus);
  RunAnnouncements announcements(bus);
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::queued), true), RunEventKind::started);
  // Another path announcing the same run's first state: not again.
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::queued), true), std::nullopt);
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::running)), RunEventKind::updated);
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::completed)), RunEventKind::finished);
  // Late, older states and repeats of the end say nothing.
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::running)), std::nullopt);
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::queued), true), std::nullopt);
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::completed)), std::nullopt);
  EXPECT_EQ(heard.events(), (std::vector<std::string>{"started r queued", "updated r running",
                                                      "finished r completed"}));
}

TEST(RunAnnouncementsTest, ARunFirstHeardOfAsEndedIsStartedThenFinished) {
  EventBus bus;
  Heard heard(bus);
  RunAnnouncements announcements(bus);
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::failed)), RunEventKind::finished);
  EXPECT_EQ(announcements.announce(run_in("r", RunStatus::queued), true), std::nullopt);
  EXPECT_EQ(heard.events(), (std::vector<std::string>{"started r failed", "finished r failed"}));
}

TEST(RunAnnouncementsTest, DeletedCarriesTheRecordAndForgetsTheRun) {
  EventBus bus;
  Heard heard(bus);
  RunAnnouncements announcements(bus);
  announcements.announce(run_in("r", RunStatus::queued));
  announcements.announce(run_in("r", RunStatus::completed));
  announcements.deleted(run_in("r", RunStatus::completed));
  EXPECT_EQ(announcements.size(), 0u);
  EXPECT_EQ(heard.events().back(), "deleted r completed");
}

TEST(RunAnnouncementsTest, RemembersAtMostItsBoundsOldestForgottenFirst) {
  EventBus bus;
  RunAnnouncements announcements(bus, 3, 2);
  for (int i = 0; i < 10; ++i) announcements.announce(run_in(numbered('a', i), RunStatus::running));
  EXPECT_EQ(announcements.size(), 3u);
  // The newest are remembered: no second `started` for them.
  EXPECT_EQ(announcements.announce(run_in("a9", RunStatus::running), true), std::nullopt);
  EXPECT_EQ(announcements.announce(run_in("a0", RunStatus::running), true), RunEventKind::started);
  for (int i = 0; i < 10; ++i) announcements.announce(run_in(numbered('f', i), RunStatus::failed));
  EXPECT_EQ(announcements.size(), 3u + 2u);
  EXPECT_EQ(announcements.announce(run_in("f9", RunStatus::running)), std::nullopt);
}

TEST(RunAnnouncementsTest, PathsRacingOnOneRunPublishOneStartedBeforeAnythingElse) {
  for (int round = 0; round < 200; ++round) {
    EventBus bus;
    Heard heard(bus);
    RunAnnouncements announcements(bus);
    std::thread queued([&] { announcements.announce(run_in("r", RunStatus::queued), true); });
    std::thread relayed([&] { announcements.announce(run_in("r", RunStatus::running)); });
    queued.join();
    relayed.join();
    ASSERT_FALSE(heard.events().empty());
    EXPECT_EQ(heard.events().front().rfind("started r", 0), 0u) << heard.events().front();
    EXPECT_LE(heard.events().size(), 2u);
  }
}

}  // namespace
}  // namespace nightshift
