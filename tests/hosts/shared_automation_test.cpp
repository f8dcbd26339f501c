// Automation on several hosts sharing one PostgreSQL database: schedules
// and webhooks are one set whichever host is asked, and each schedule time,
// retry and webhook delivery is acted on by exactly one host while every
// host runs its scheduler, retrier and webhook dispatcher.
#include <algorithm>
#include <map>
#include <set>

#include "every_run.hpp"
#include "receiver.hpp"
#include "shared_hosts.hpp"

namespace nightshift::hosts_test {
namespace {

using namespace std::chrono_literals;

// Hosts that re-read each other's automation changes often, so that every
// host competes for each piece of due work within the test's time.
SharedHostSettings automated(const std::string& name) {
  SharedHostSettings settings;
  settings.name = name;
  settings.automation.shared_refresh = 100ms;
  settings.automation.webhooks.first_backoff = 200ms;
  return settings;
}

std::size_t count_runs(SharedHost& host,
                       const std::function<bool(const nightshift::Run&)>& predicate) {
  std::size_t count = 0;
  for (const nightshift::Run& run : testing::every_run(host.runs()))
    count += predicate(run) ? 1 : 0;
  return count;
}

json::array listed(SharedHost& host, const std::string& path, const std::string& key) {
  HttpClient client(host.port());
  const Response response = client.get(path);
  EXPECT_EQ(response.result_int(), 200) << response.body();
  return body_json(response).at(key).as_array();
}

TEST_F(SharedHostsTest, SchedulesAndWebhooksMadeOnOneHostAreListedOnEveryHost) {
  SharedHost& first = add_host(automated("first"));
  SharedHost& second = add_host(automated("second"));
  HttpClient client(first.port());
  const Response created = client.post(
      "/schedules", R"({"agentId": "installed:echo", "cron": "0 3 * * *", "timezone": "UTC"})");
  ASSERT_EQ(created.result_int(), 201) << created.body();
  const std::string id(body_json(created).at("id").as_string());
  const Response hook = client.post("/webhooks", R"({"url": "http://127.0.0.1:9/hook"})");
  ASSERT_EQ(hook.result_int(), 201) << hook.body();
  const std::string hook_id(body_json(hook).at("id").as_string());

  // Listed and found on the other host at once (they are read from the store).
  const json::array schedules = listed(second, "/schedules", "schedules");
  ASSERT_EQ(schedules.size(), 1u);
  EXPECT_EQ(schedules[0].at("id").as_string(), id);
  HttpClient other(second.port());
  EXPECT_EQ(other.get("/schedules/" + id).result_int(), 200);
  const json::array webhooks = listed(second, "/webhooks", "webhooks");
  ASSERT_EQ(webhooks.size(), 1u);
  EXPECT_EQ(webhooks[0].at("id").as_string(), hook_id);
  EXPECT_EQ(other.get("/webhooks/" + hook_id + "/deliveries").result_int(), 200);

  // Edited on the second host: the first shows the change.
  const Response patched =
      other.send(http::verb::patch, "/schedules/" + id, R"({"enabled": false})");
  ASSERT_EQ(patched.result_int(), 200) << patched.body();
  EXPECT_EQ(body_json(client.get("/schedules/" + id)).at("enabled"), false);

  // Deleted on the second host: gone from the first.
  EXPECT_EQ(other.send(http::verb::delete_, "/schedules/" + id).result_int(), 204);
  EXPECT_EQ(other.send(http::verb::delete_, "/webhooks/" + hook_id).result_int(), 204);
  EXPECT_TRUE(listed(first, "/schedules", "schedules").empty());
  EXPECT_TRUE(listed(first, "/webhooks", "webhooks").empty());
  EXPECT_EQ(client.get("/schedules/" + id).result_int(), 404);
  EXPECT_EQ(client.send(http::verb::delete_, "/webhooks/" + hook_id).result_int(), 404);
}

TEST_F(SharedHostsTest, EachScheduleTimeStartsOneRunAcrossTheHosts) {
  constexpr std::size_t kFirings = 5;
  SharedHost& first = add_host(automated("first"));
  SharedHost& second = add_host(automated("second"));
  ScheduleInput input;
  input.agent_id = "installed:echo";
  input.cron = "0 3 1 1 *";  // far away: the test moves the time itself
  input.overlap = Overlap::queue;
  const Schedule schedule = first.host().automation().schedules().create(input);
  AutomationStore& store = second.host().automation().store();
  const auto of_schedule = [&](const nightshift::Run& run) {
    return run.schedule_id == schedule.id;
  };

  for (std::size_t firing = 1; firing <= kFirings; ++firing) {
    // The time comes now: both hosts' due queues learn it (at their next
    // refresh) and fire it; the store lets one of them start the run.
    std::optional<Schedule> stored = store.get_schedule(schedule.id);
    ASSERT_TRUE(stored);
    stored->next_run_at = now_ms();
    store.put_schedule(*stored);
    ASSERT_TRUE(
        testing::wait_until([&] { return count_runs(first, of_schedule) >= firing; }, 20s, 20ms))
        << "firing " << firing;
    // Moved to its next time by the host that fired it.
    ASSERT_TRUE(testing::wait_until(
        [&] {
          const auto now = store.get_schedule(schedule.id);
          return now && now->next_run_at && *now->next_run_at > now_ms() + 1h;
        },
        20s, 20ms));
  }
  // Well past several refreshes of both hosts: no second run of any time.
  EXPECT_FALSE(
      testing::wait_until([&] { return count_runs(first, of_schedule) > kFirings; }, 2s, 50ms));
  EXPECT_EQ(count_runs(second, of_schedule), kFirings);
  const std::uint64_t starts = first.host().automation().stats().scheduled_starts +
                               second.host().automation().stats().scheduled_starts;
  EXPECT_EQ(starts, kFirings);
  // The schedule records the last run, on every host.
  const auto last = first.host().automation().schedules().get(schedule.id);
  ASSERT_TRUE(last && last->last_run_id);
  const auto run = second.runs().get(*last->last_run_id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->schedule_id, schedule.id);
}

// A schedule (of an echo, with `task`) made on `host`, whose far-away time
// the test claims for the host `claimer` as its scheduler would: the claim
// names the run it will start.
struct ClaimedTime {
  Schedule schedule;
  std::string run_id;
};

void claim_a_time(SharedHost& host, const std::string& claimer, std::optional<std::string> task,
                  ClaimedTime* claimed) {
  ScheduleInput input;
  input.agent_id = "installed:echo";
  input.task = std::move(task);
  input.cron = "0 3 1 1 *";  // far away: no scheduler fires it during the test
  claimed->schedule = host.host().automation().schedules().create(input);
  AutomationStore& store = host.host().automation().store();
  const std::optional<Schedule> stored = store.get_schedule(claimed->schedule.id);
  ASSERT_TRUE(stored && stored->next_run_at);
  claimed->run_id = generate_uuid();
  ASSERT_TRUE(store.claim_schedule_time(claimed->schedule.id, stored->next_run_at,
                                        *stored->next_run_at + 24h * 365, claimed->run_id,
                                        claimer));
}

// Waits until `host` has the claimed time's run, of the schedule, and the
// schedule links it with its firing mark cleared; then checks that the
// schedule has that one run.
void expect_the_claimed_run(SharedHost& host, const ClaimedTime& claimed) {
  ASSERT_TRUE(
      testing::wait_until([&] { return host.runs().get(claimed.run_id).has_value(); }, 30s, 20ms))
      << "the claimed time's run was not started";
  EXPECT_EQ(host.runs().get(claimed.run_id)->schedule_id,
            std::optional<std::string>(claimed.schedule.id));
  AutomationStore& store = host.host().automation().store();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto now = store.get_schedule(claimed.schedule.id);
        return now && now->last_run_id == std::optional<std::string>(claimed.run_id) &&
               !now->firing_run_id;
      },
      20s, 20ms));
  const auto of_schedule = [&](const nightshift::Run& r) {
    return r.schedule_id == claimed.schedule.id;
  };
  EXPECT_EQ(count_runs(host, of_schedule), 1u);
}

// A host claimed a time and stopped before recording its run: the claim
// named the run and the host, so the other hosts leave it, and the host
// starts that run when it comes back.
TEST_F(SharedHostsTest, ATimeClaimedByAHostThatStoppedIsStartedByThatHostWhenItComesBack) {
  add_host(automated("first"));
  SharedHost& second = add_host(automated("second"));
  ClaimedTime claimed;
  ASSERT_NO_FATAL_FAILURE(claim_a_time(second, "first", std::nullopt, &claimed));
  hosts_.erase(hosts_.begin());  // "first" stops without having started it

  // A host starting meanwhile does not take another host's claim (its lease
  // has not passed).
  SharedHost& third = add_host(automated("third"));
  EXPECT_FALSE(
      testing::wait_until([&] { return third.runs().get(claimed.run_id).has_value(); }, 1s, 50ms));
  EXPECT_EQ(third.host().automation().store().get_schedule(claimed.schedule.id)->firing_run_id,
            std::optional<std::string>(claimed.run_id));

  SharedHost& back = add_host(automated("first"));
  expect_the_claimed_run(back, claimed);
}

// The same host never comes back: once it has not heartbeated for a host
// lease, another host takes the claim over and starts the run.
TEST_F(SharedHostsTest, ATimeClaimedByAHostThatNeverComesBackIsStartedByAnotherAfterItsLease) {
  add_host(automated("first"));
  SharedHostSettings short_lease = automated("second");
  short_lease.lease = 1500ms;
  SharedHost& second = add_host(short_lease);
  ClaimedTime claimed;
  ASSERT_NO_FATAL_FAILURE(claim_a_time(second, "first", "from the claimed time", &claimed));
  hosts_.erase(hosts_.begin());  // "first" stops without having started it, for good

  expect_the_claimed_run(second, claimed);
  EXPECT_EQ(second.runs().get(claimed.run_id)->task,
            std::optional<std::string>("from the claimed time"));
}

TEST_F(SharedHostsTest, AFailedRunIsRetriedOnceAcrossTheHosts) {
  constexpr int kRuns = 6;
  SharedHost& first = add_host(automated("first"));
  SharedHost& second = add_host(automated("second"));
  // The same remix on both hosts, so that both may retry its runs.
  for (SharedHost* host : {&first, &second}) {
    testing::write_file(host->host().options().workspace / ".nightshift" / "remix" / "flaky.md",
                        "---\nbase: installed:runs-fail\nlimits:\n  retries: 1\n"
                        "  retryBackoffSeconds: 0.3\n---\n");
    host->host().catalog().rescan();
    ASSERT_TRUE(host->host().catalog().find("remix:flaky"));
  }
  std::vector<std::string> failed;
  for (int i = 0; i < kRuns; ++i) {
    SharedHost& host = i % 2 == 0 ? first : second;
    failed.push_back(
        host.runs().start(StartRequest{"remix:flaky", "try " + std::to_string(i), {}}).instance_id);
  }
  const auto retries_of = [&](const std::string& id) {
    return count_runs(first, [&](const nightshift::Run& run) { return run.retry_of == id; });
  };
  for (const std::string& id : failed) {
    ASSERT_TRUE(testing::wait_until([&] { return retries_of(id) >= 1; }, 30s, 20ms)) << id;
  }
  // Every retry ends (failed again: attempt 2 of 1 + 1 retry, so no more).
  ASSERT_TRUE(testing::wait_until(
      [&] { return first.runs().active().empty() && second.runs().active().empty(); }, 30s, 20ms));
  // Well past the backoff and several refreshes: still one retry each.
  EXPECT_FALSE(testing::wait_until(
      [&] {
        for (const std::string& id : failed) {
          if (retries_of(id) > 1) return true;
        }
        return false;
      },
      2s, 50ms));
  for (const std::string& id : failed) {
    EXPECT_EQ(retries_of(id), 1u) << id;
  }
  EXPECT_EQ(
      count_runs(second, [](const nightshift::Run& run) { return run.agent_id == "remix:flaky"; }),
      static_cast<std::size_t>(2 * kRuns));
  EXPECT_EQ(first.host().automation().stats().retries_started +
                second.host().automation().stats().retries_started,
            static_cast<std::uint64_t>(kRuns));
}

// A host took a retry and stopped for good before starting it: once that
// host has not heartbeated for a host lease, another host starts the retry
// (not ten minutes later, when a taken retry is free for anyone).
TEST_F(SharedHostsTest, ARetryTakenByAHostThatNeverComesBackIsStartedByAnotherAfterItsLease) {
  SharedHost& first = add_host(automated("first"));
  SharedHostSettings short_lease = automated("second");
  short_lease.lease = 1500ms;
  SharedHost& second = add_host(short_lease);
  PendingRetry retry;
  retry.failed_run_id = generate_uuid();
  retry.attempt = 2;
  retry.agent_id = "installed:echo";
  retry.task = "the retry a host took";
  retry.due_at = now_ms() + 3s;  // after "first" has stopped
  second.host().automation().store().add_pending_retry(retry);
  const std::optional<PendingRetry> taken =
      first.host().automation().store().take_pending_retry(retry.failed_run_id);
  ASSERT_TRUE(taken && taken->run_id);
  hosts_.erase(hosts_.begin());  // "first" stops without having started it, for good

  const auto retry_run = [&]() -> std::optional<nightshift::Run> {
    const auto runs = testing::every_run(second.runs());
    const auto found = std::find_if(runs.begin(), runs.end(), [&](const nightshift::Run& r) {
      return r.retry_of == retry.failed_run_id;
    });
    if (found == runs.end()) return std::nullopt;
    return *found;
  };
  // Ended: until a host claims it from the shared queue, it has no host.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto run = retry_run();
        return run && is_terminal(run->status);
      },
      30s, 20ms))
      << "the taken retry was not started, or did not end";
  EXPECT_EQ(count_runs(second,
                       [&](const nightshift::Run& r) { return r.retry_of == retry.failed_run_id; }),
            1u);
  const auto run = retry_run();
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, RunStatus::completed);
  EXPECT_EQ(run->attempt, 2u);
  EXPECT_EQ(run->task, retry.task);
  EXPECT_EQ(run->host, std::optional<std::string>("second"));

  // The run has the id "first" chose when it took the retry. Had "first"
  // only paused past its lease, it would start the retry when it woke,
  // under that id: the store refuses that second run.
  EXPECT_EQ(run->instance_id, *taken->run_id);
  StartRequest late{"installed:echo", retry.task, {}};
  late.attempt = retry.attempt;
  late.retry_of = retry.failed_run_id;
  late.instance_id = taken->run_id;
  try {
    second.runs().start(late);
    ADD_FAILURE() << "the retry was recorded twice";
  } catch (const RunError& error) {
    EXPECT_EQ(error.code(), RunError::Code::store_failed);
    EXPECT_NE(std::string(error.what()).find("is recorded already"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(count_runs(second,
                       [&](const nightshift::Run& r) { return r.retry_of == retry.failed_run_id; }),
            1u);
  const auto after = retry_run();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->thread_id, run->thread_id);
  EXPECT_EQ(after->status, RunStatus::completed);
}

TEST_F(SharedHostsTest, AWebhookIsDeliveredOncePerEventWhileTwoHostsRun) {
  constexpr int kRuns = 8;
  SharedHost& first = add_host(automated("first"));
  SharedHost& second = add_host(automated("second"));
  testing::Receiver receiver;
  HttpClient client(first.port());
  const Response hook = client.post(
      "/webhooks",
      json::serialize(json::object{{"url", receiver.url()},
                                   {"events", json::array{"run.started", "run.finished"}}}));
  ASSERT_EQ(hook.result_int(), 201) << hook.body();
  const std::string hook_id(body_json(hook).at("id").as_string());
  // Listed on the other host at once; that host's dispatcher learns of it
  // at its next refresh (100 ms here). From then on both make every
  // delivery, and the store lets one host send each.
  ASSERT_EQ(second.host().automation().webhooks().list().size(), 1u);
  ASSERT_TRUE(testing::wait_until(
      [&] { return second.host().automation().webhooks().dispatching() == 1; }, 10s, 10ms));
  std::set<std::string> ids;
  for (int i = 0; i < kRuns; ++i) {
    SharedHost& host = i % 2 == 0 ? first : second;
    ids.insert(host.runs().start(StartRequest{"installed:echo", "hello", {}}).instance_id);
  }
  const std::size_t expected = 2 * static_cast<std::size_t>(kRuns);
  ASSERT_TRUE(testing::wait_until([&] { return receiver.count() >= expected; }, 30s, 20ms))
      << receiver.count() << " of " << expected;
  // Well past several refreshes (a host taking over a delivery it thinks
  // nobody holds): no event is delivered twice.
  EXPECT_FALSE(testing::wait_until([&] { return receiver.count() > expected; }, 2s, 50ms));
  std::map<std::pair<std::string, std::string>, int> per_event;
  std::set<std::string> delivery_ids;
  for (const testing::Receiver::Request& request : receiver.requests()) {
    const json::value body = json::parse(request.body);
    const std::string run(body.at("run").at("instanceId").as_string());
    ++per_event[{run, std::string(body.at("type").as_string())}];
    delivery_ids.insert(request.headers.at("x-nightshift-delivery"));
    EXPECT_TRUE(ids.contains(run)) << run;
  }
  EXPECT_EQ(delivery_ids.size(), expected);
  for (const std::string& id : ids) {
    EXPECT_EQ((per_event[{id, "run.started"}]), 1) << id;
    EXPECT_EQ((per_event[{id, "run.finished"}]), 1) << id;
  }
  // Each host's record shows every delivery delivered.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto deliveries = second.host().automation().webhooks().deliveries(hook_id, 100);
        return deliveries.size() == expected &&
               std::all_of(deliveries.begin(), deliveries.end(), [](const Delivery& d) {
                 return d.status == DeliveryStatus::delivered && d.attempts == 1;
               });
      },
      10s, 20ms));
}

TEST_F(SharedHostsTest, AFailedDeliveryIsRetriedByOneHost) {
  SharedHost& first = add_host(automated("first"));
  SharedHost& second = add_host(automated("second"));
  testing::Receiver receiver({500, 503, 200});
  WebhookInput input;
  input.url = receiver.url();
  const Webhook webhook = second.host().automation().webhooks().create(input);
  ASSERT_TRUE(testing::wait_until(
      [&] { return first.host().automation().webhooks().dispatching() == 1; }, 10s, 10ms));
  const nightshift::Run run = first.runs().start(StartRequest{"installed:echo", "hello", {}});
  // Answered 500, 503, then 200: three POSTs of the one delivery, then none.
  ASSERT_TRUE(testing::wait_until([&] { return receiver.count() >= 3; }, 30s, 20ms));
  EXPECT_FALSE(testing::wait_until([&] { return receiver.count() > 3; }, 2s, 50ms));
  std::set<std::string> delivery_ids;
  for (const auto& request : receiver.requests()) {
    delivery_ids.insert(request.headers.at("x-nightshift-delivery"));
  }
  EXPECT_EQ(delivery_ids.size(), 1u);
  const auto deliveries = first.host().automation().webhooks().deliveries(webhook.id, 10);
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].instance_id, run.instance_id);
  EXPECT_EQ(deliveries[0].status, DeliveryStatus::delivered);
  EXPECT_EQ(deliveries[0].attempts, 3u);
}

TEST_F(SharedHostsTest, AutomationCarriesOnAfterADatabaseRestart) {
  SharedHost& first = add_host(automated("first"));
  SharedHost& second = add_host(automated("second"));
  testing::Receiver receiver;
  WebhookInput hook;
  hook.url = receiver.url();
  first.host().automation().webhooks().create(hook);
  ScheduleInput input;
  input.agent_id = "installed:echo";
  input.cron = "0 3 1 1 *";
  input.overlap = Overlap::queue;
  const Schedule schedule = second.host().automation().schedules().create(input);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return first.host().automation().webhooks().dispatching() == 1 &&
               second.host().automation().webhooks().dispatching() == 1;
      },
      10s, 10ms));

  postgres_->stop();
  // The automation endpoints answer 503 while the store cannot be reached.
  ASSERT_TRUE(testing::wait_until(
      [&] { return HttpClient(first.port()).get("/schedules").result_int() == 503; }, 30s, 50ms));
  postgres_->start();
  ASSERT_TRUE(testing::wait_until(
      [&] { return HttpClient(second.port()).get("/schedules").result_int() == 200; }, 60s, 100ms));

  // A run after the restart: its event delivered once.
  std::optional<std::string> run;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        try {
          run = second.runs().start(StartRequest{"installed:echo", "after", {}}).instance_id;
          return true;
        } catch (const RunError&) {
          return false;  // the hosts are still reconnecting
        }
      },
      60s, 100ms));
  ASSERT_TRUE(testing::wait_until([&] { return receiver.count() >= 1; }, 30s, 20ms));
  EXPECT_FALSE(testing::wait_until([&] { return receiver.count() > 1; }, 2s, 50ms));
  EXPECT_EQ(json::parse(receiver.requests().at(0).body).at("run").at("instanceId").as_string(),
            *run);

  // The schedule's time still starts one run.
  AutomationStore& store = first.host().automation().store();
  std::optional<Schedule> stored = store.get_schedule(schedule.id);
  ASSERT_TRUE(stored);
  stored->next_run_at = now_ms();
  store.put_schedule(*stored);
  const auto of_schedule = [&](const nightshift::Run& r) { return r.schedule_id == schedule.id; };
  ASSERT_TRUE(testing::wait_until([&] { return count_runs(first, of_schedule) >= 1; }, 30s, 20ms));
  EXPECT_FALSE(testing::wait_until([&] { return count_runs(first, of_schedule) > 1; }, 2s, 50ms));
}

}  // namespace
}  // namespace nightshift::hosts_test
