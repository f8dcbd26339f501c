// The PostgreSQL automation store as two hosts use it at once: the claims
// that keep each schedule time, retry and webhook delivery to one host.
#include "store/postgresql/pg_automation_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "postgres_environment.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

using namespace std::chrono_literals;

// A database migrated by the run store, and the automation stores of two
// hosts over it.
class PgAutomationStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<PgAutomationStore> host(const std::string& name) {
    return std::make_unique<PgAutomationStore>(test_postgres().conninfo(fixture_.database()), name);
  }
  StoreFixture fixture_;
};

TEST_F(PgAutomationStoreTest, AScheduleTimeIsClaimedByOneHost) {
  auto a = host("a");
  auto b = host("b");
  const Timestamp due = now_ms();
  Schedule s = schedule_due_at(due);
  a->put_schedule(s);
  ASSERT_EQ(b->list_schedules().size(), 1u);

  const auto claimed = a->claim_schedule_time(s.id, due, due + 5min, "run-1", "a");
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->next_run_at, std::optional<Timestamp>(due + 5min));
  EXPECT_EQ(claimed->params, s.params);
  EXPECT_FALSE(b->claim_schedule_time(s.id, due, due + 5min, "run-x", "b")) << "the time was taken";
  a->set_schedule_last_run(s.id, "run-1");
  // An edit from an older copy keeps the run the firing recorded.
  s.task = "edited";
  s.next_run_at = due + 5min;
  b->put_schedule(s);
  const auto stored = a->get_schedule(s.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->task, std::optional<std::string>("edited"));
  EXPECT_EQ(stored->last_run_id, std::optional<std::string>("run-1"));
  // Disabled: no claim; deleted: none either.
  s.enabled = false;
  a->put_schedule(s);
  EXPECT_FALSE(b->claim_schedule_time(s.id, due + 5min, due + 10min, "run-2", "b"));
  EXPECT_TRUE(a->delete_schedule(s.id));
  EXPECT_FALSE(b->claim_schedule_time(s.id, due + 5min, due + 10min, "run-2", "b"));
}

TEST_F(PgAutomationStoreTest, ManyHostsRacingForOneTimeLetOneWinEachTime) {
  constexpr int kHosts = 6;
  constexpr int kTimes = 30;
  std::vector<std::unique_ptr<PgAutomationStore>> hosts;
  for (int i = 0; i < kHosts; ++i) hosts.push_back(host("h" + std::to_string(i)));
  Timestamp due = now_ms();
  const Schedule s = schedule_due_at(due);
  hosts[0]->put_schedule(s);
  for (int time = 0; time < kTimes; ++time) {
    std::atomic<int> wins{0};
    {
      std::vector<std::jthread> racers;
      for (auto& each : hosts) {
        racers.emplace_back([&, store = each.get()] {
          if (store->claim_schedule_time(s.id, due, due + 1min, generate_uuid(), "racer")) ++wins;
        });
      }
    }
    ASSERT_EQ(wins.load(), 1) << "time " << time;
    due += 1min;
  }
}

// The hosts table as the run stores of other hosts would have written it:
// `name` last heartbeated `ago_ms` before the database's now.
void put_host(const std::string& database, const std::string& name, long ago_ms) {
  test_postgres().execute(
      "INSERT INTO hosts (name, incarnation, started_at, last_seen_at, stopped, version) "
      "VALUES ('" +
          name + "', 'test', 0, (extract(epoch from clock_timestamp()) * 1000)::bigint - " +
          std::to_string(ago_ms) +
          ", false, 'test') "
          "ON CONFLICT (name) DO UPDATE SET last_seen_at = excluded.last_seen_at",
      database);
}

TEST_F(PgAutomationStoreTest, AClaimedTimeOfAHostGoneForALeaseMovesToOneLivingHost) {
  put_host(fixture_.database(), "gone", 3600000);
  put_host(fixture_.database(), "back", 3600000);
  put_host(fixture_.database(), "alive", 0);
  put_host(fixture_.database(), "a", 0);
  auto a = host("a");
  auto b = host("b");
  const Timestamp due = now_ms();
  std::map<std::string, Schedule> by_host;
  for (const std::string name : {"gone", "back", "alive", "a"}) {
    Schedule s = schedule_due_at(due);
    a->put_schedule(s);
    ASSERT_TRUE(a->claim_schedule_time(s.id, due, due + 5min, "run-of-" + name, name));
    by_host.emplace(name, s);
  }
  // "back" heartbeats again before anyone moves its mark: it keeps it.
  put_host(fixture_.database(), "back", 0);

  const std::vector<Schedule> adopted = a->adopt_schedule_firings("a");
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].id, by_host.at("gone").id);
  EXPECT_EQ(adopted[0].firing_run_id, std::optional<std::string>("run-of-gone"));
  EXPECT_EQ(adopted[0].firing_host, std::optional<std::string>("a"));
  EXPECT_EQ(adopted[0].next_run_at, std::optional<Timestamp>(due + 5min));
  EXPECT_TRUE(b->adopt_schedule_firings("b").empty()) << "the mark is a's now, and a is alive";
  for (const std::string name : {"back", "alive", "a"}) {
    const auto stored = b->get_schedule(by_host.at(name).id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->firing_host, std::optional<std::string>(name)) << name;
    EXPECT_EQ(stored->firing_run_id, std::optional<std::string>("run-of-" + name)) << name;
  }
  // Linking the run clears the mark, whoever holds it.
  a->set_schedule_last_run(by_host.at("gone").id, "run-of-gone");
  EXPECT_FALSE(a->get_schedule(by_host.at("gone").id)->firing_run_id);
}

TEST_F(PgAutomationStoreTest, ManyHostsTakingOverTheSameGoneHostsTimeLetOneHaveIt) {
  constexpr int kHosts = 6;
  constexpr int kTimes = 10;
  std::vector<std::unique_ptr<PgAutomationStore>> hosts;
  for (int i = 0; i < kHosts; ++i) hosts.push_back(host("h" + std::to_string(i)));
  put_host(fixture_.database(), "gone", 3600000);
  Timestamp due = now_ms();
  const Schedule s = schedule_due_at(due);
  hosts[0]->put_schedule(s);
  for (int time = 0; time < kTimes; ++time) {
    ASSERT_TRUE(hosts[0]->claim_schedule_time(s.id, due, due + 1min, "run-" + std::to_string(time),
                                              "gone"));
    std::atomic<int> takers{0};
    {
      std::vector<std::jthread> racers;
      for (int i = 0; i < kHosts; ++i) {
        racers.emplace_back([&, i] {
          if (!hosts[static_cast<std::size_t>(i)]
                   ->adopt_schedule_firings("h" + std::to_string(i))
                   .empty()) {
            ++takers;
          }
        });
      }
    }
    ASSERT_EQ(takers.load(), 1) << "time " << time;
    due += 1min;
  }
}

TEST_F(PgAutomationStoreTest, AWaitingRetryIsTakenByOneHostAndNeverQueuedAgain) {
  auto a = host("a");
  auto b = host("b");
  PendingRetry retry;
  retry.failed_run_id = "failed-1";
  retry.due_at = now_ms();
  retry.agent_id = "installed:echo";
  retry.params = {{"x", "y"}};
  a->add_pending_retry(retry);
  b->add_pending_retry(retry);  // the same failure, seen by the other host
  ASSERT_EQ(b->list_pending_retries().size(), 1u);

  const auto taken = b->take_pending_retry("failed-1");
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->params, retry.params);
  EXPECT_FALSE(a->take_pending_retry("failed-1"));
  EXPECT_TRUE(b->take_pending_retry("failed-1")) << "its taker may take it again";
  EXPECT_TRUE(a->list_pending_retries().empty());
  b->finish_pending_retry("failed-1");
  // The failure seen late by a host queues nothing; started, it is taken by none.
  a->add_pending_retry(retry);
  EXPECT_TRUE(a->list_pending_retries().empty());
  EXPECT_FALSE(a->take_pending_retry("failed-1"));
  EXPECT_FALSE(b->take_pending_retry("failed-1"));

  // One that could not start waits again, for any host.
  retry.failed_run_id = "failed-2";
  a->add_pending_retry(retry);
  ASSERT_TRUE(a->take_pending_retry("failed-2"));
  a->release_pending_retry("failed-2", retry.due_at + 5s);
  const auto waiting = b->list_pending_retries();
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0].due_at, retry.due_at + 5s);
  EXPECT_TRUE(b->take_pending_retry("failed-2"));
}

// A retry taken by a host that then stopped heartbeating for a host lease is
// not left for ten minutes: the other hosts (which have failed that host's
// runs by then) take it over, as they take over its claimed schedule times.
// One taken by a host that still heartbeats stays its own.
TEST_F(PgAutomationStoreTest, ARetryTakenByAHostGoneForALeaseIsTakenByOneOtherHost) {
  put_host(fixture_.database(), "gone", 3600000);
  put_host(fixture_.database(), "alive", 0);
  auto gone = host("gone");
  auto alive = host("alive");
  auto b = host("b");
  auto c = host("c");
  PendingRetry retry;
  retry.due_at = now_ms();
  retry.agent_id = "installed:echo";
  for (const std::string id : {"taken-by-gone", "taken-by-alive"}) {
    retry.failed_run_id = id;
    b->add_pending_retry(retry);
  }
  const std::optional<PendingRetry> taken = gone->take_pending_retry("taken-by-gone");
  ASSERT_TRUE(taken);
  ASSERT_TRUE(alive->take_pending_retry("taken-by-alive"));
  // Its run's id is chosen by the first take, and kept by every take after:
  // the gone host, had it only paused, would start a run under the same id
  // as the host that took its retry over, and the store records one.
  ASSERT_TRUE(taken->run_id);
  EXPECT_TRUE(is_uuid(*taken->run_id)) << *taken->run_id;

  const std::vector<PendingRetry> waiting = b->list_pending_retries();
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0].failed_run_id, "taken-by-gone");
  EXPECT_EQ(waiting[0].run_id, taken->run_id);
  EXPECT_FALSE(b->take_pending_retry("taken-by-alive")) << "its taker still heartbeats";
  const std::optional<PendingRetry> taken_over = b->take_pending_retry("taken-by-gone");
  ASSERT_TRUE(taken_over);
  EXPECT_EQ(taken_over->run_id, taken->run_id);
  EXPECT_FALSE(c->take_pending_retry("taken-by-gone")) << "b has it now, and b is not gone";
  EXPECT_TRUE(c->list_pending_retries().empty());
  // Put back to wait (b could not start it now): the next take keeps the id.
  b->release_pending_retry("taken-by-gone", now_ms());
  const std::optional<PendingRetry> again = c->take_pending_retry("taken-by-gone");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->run_id, taken->run_id);
}

TEST_F(PgAutomationStoreTest, ADeliveryIsMadeOnceAndHeldByTheHostThatMadeIt) {
  auto a = host("a");
  auto b = host("b");
  Webhook webhook;
  webhook.id = generate_uuid();
  webhook.url = "http://127.0.0.1:9/hook";
  webhook.events = {"run.finished"};
  webhook.created_at = now_ms();
  a->add_webhook(webhook);
  ASSERT_TRUE(b->get_webhook(webhook.id));

  Delivery d;
  d.id = "the-same-on-every-host";
  d.webhook_id = webhook.id;
  d.event = "run.finished";
  d.instance_id = "run-1";
  d.body = "{}";
  d.created_at = now_ms();
  d.next_attempt_at = d.created_at;
  EXPECT_EQ(b->add_deliveries({d}, 1h).size(), 1u);
  EXPECT_TRUE(a->add_deliveries({d}, 1h).empty()) << "made by the other host already";
  EXPECT_TRUE(a->claim_pending_deliveries(1h).empty()) << "held by the other host";

  // Its holder records a failed attempt, to retry in a while: still held.
  d.attempts = 1;
  d.last_status_code = 500;
  d.next_attempt_at = now_ms() + 1h;
  b->update_delivery(d, 200, 10s);
  EXPECT_TRUE(a->claim_pending_deliveries(1h).empty());
  // A hold that has passed (the holder stopped renewing it): taken over.
  d.next_attempt_at = now_ms() - 1min;
  b->update_delivery(d, 200, 0ms);
  const auto taken = a->claim_pending_deliveries(1h);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].id, d.id);
  EXPECT_EQ(taken[0].attempts, 1u);
  EXPECT_TRUE(b->claim_pending_deliveries(1h).empty());
  // The old holder's late record changes nothing; the new holder's lands.
  d.status = DeliveryStatus::delivered;
  d.attempts = 2;
  b->update_delivery(d, 200, 1h);
  EXPECT_EQ(a->list_deliveries(webhook.id, 10).at(0).status, DeliveryStatus::pending);
  a->update_delivery(d, 200, 1h);
  EXPECT_EQ(b->list_deliveries(webhook.id, 10).at(0).status, DeliveryStatus::delivered);

  // Deleting the webhook takes its deliveries; a delivery for it made
  // afterwards is not stored.
  EXPECT_TRUE(b->delete_webhook(webhook.id));
  EXPECT_TRUE(a->list_deliveries(webhook.id, 10).empty());
  d.id = "another";
  EXPECT_TRUE(a->add_deliveries({d}, 1h).empty());
}

}  // namespace
}  // namespace nightshift::testing
