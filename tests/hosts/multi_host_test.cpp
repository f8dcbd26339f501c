// Two and three hosts on one PostgreSQL database: every host shows every
// run, each queued run is executed exactly once by whichever host has a free
// slot, stops, messages and deletes reach the run wherever it executes, and
// the hosts ride out a restart of the database.
#include <atomic>
#include <set>
#include <thread>

#include "shared_hosts.hpp"

namespace nightshift::hosts_test {
namespace {

using namespace std::chrono_literals;

json::object run_on(SharedHost& host, const std::string& id) {
  HttpClient client(host.port());
  const Response response = client.get("/background-agents/" + id);
  EXPECT_EQ(response.result_int(), 200) << response.body();
  return body_json(response).as_object();
}

bool listed_active_on(SharedHost& host, const std::string& id) {
  HttpClient client(host.port());
  const json::value body = body_json(client.get("/background-agents"));
  for (const json::value& run : body.at("active").as_array()) {
    if (run.at("instanceId").as_string() == id) return true;
  }
  return false;
}

bool status_everywhere(std::vector<SharedHost*> hosts, const std::string& id,
                       const std::string& status, std::chrono::milliseconds timeout = 20s) {
  return testing::wait_until(
      [&] {
        for (SharedHost* host : hosts) {
          if (run_on(*host, id).at("status").as_string() != status) return false;
        }
        return true;
      },
      timeout, 20ms);
}

TEST_F(SharedHostsTest, ARunStartedOnOneHostIsSeenLiveOnTheOthers) {
  SharedHost& first = add_host({"first"});
  SharedHost& second = add_host({"second"});
  SharedHost& third = add_host({"third"});
  WsClient watcher(third.port());
  ASSERT_EQ(watcher.read()->at("type").as_string(), "snapshot");

  HttpClient client(first.port());
  const std::string id = start_run(client, "installed:sleep", {{"seconds", 60}});
  // Visible at once on every host, and executed by one of them.
  EXPECT_EQ(run_on(second, id).at("instanceId").as_string(), id);
  ASSERT_TRUE(status_everywhere({&first, &second, &third}, id, "running"));
  const std::string executing(run_on(second, id).at("host").as_string());
  EXPECT_TRUE(executing == "first" || executing == "second" || executing == "third") << executing;
  EXPECT_TRUE(listed_active_on(third, id));
  EXPECT_EQ(run_on(third, id).at("host").as_string(), executing);

  // The third host's WebSocket hears of it, whoever executes it.
  EXPECT_TRUE(watcher.read_until([&](const json::object& m) {
    return m.at("type").as_string() == "run" && m.at("run").at("instanceId").as_string() == id &&
           m.at("run").at("status").as_string() == "running";
  }));
  HttpClient other(second.port());
  EXPECT_EQ(other.post("/background-agents/" + id + "/stop").result_int(), 202);
  EXPECT_TRUE(
      watcher.read_until([&](const json::object& m) { return is_run_event(m, "finished", id); }));
  EXPECT_TRUE(status_everywhere({&first, &second, &third}, id, "cancelled"));

  // GET /hosts on any host lists all three, alive.
  const json::value hosts = body_json(HttpClient(third.port()).get("/hosts"));
  std::set<std::string> names;
  for (const json::value& host : hosts.at("hosts").as_array()) {
    names.insert(std::string(host.at("name").as_string()));
    EXPECT_EQ(host.at("alive"), true);
  }
  EXPECT_EQ(names, (std::set<std::string>{"first", "second", "third"}));
}

// Progress goes to the store as an update of its own: every host shows it,
// the one that does not execute the run too, and its clients hear it.
TEST_F(SharedHostsTest, ARunsProgressIsSeenOnEveryHost) {
  SharedHost& first = add_host({"first"});
  SharedHost& second = add_host({"second"});
  WsClient watcher(second.port());
  ASSERT_EQ(watcher.read()->at("type").as_string(), "snapshot");
  HttpClient client(first.port());
  // Its first tick, a second in, reports 1/60.
  const std::string id = start_run(client, "installed:sleep", {{"seconds", 60}});
  const auto progressed = [&](const json::value& run) {
    return run.at("status").as_string() == "running" && run.at("progress").is_number() &&
           run.at("progress").to_number<double>() > 0;
  };
  EXPECT_TRUE(watcher.read_until([&](const json::object& m) {
    return m.at("type").as_string() == "run" && m.at("run").at("instanceId").as_string() == id &&
           progressed(m.at("run"));
  }));
  for (SharedHost* host : {&first, &second}) {
    EXPECT_TRUE(nightshift::testing::wait_until([&] { return progressed(run_on(*host, id)); }, 30s))
        << host->name() << ": " << json::serialize(run_on(*host, id));
  }
  EXPECT_EQ(client.post("/background-agents/" + id + "/stop").result_int(), 202);
  EXPECT_TRUE(status_everywhere({&first, &second}, id, "cancelled"));
}

TEST_F(SharedHostsTest, ManyConcurrentStartsAreEachExecutedExactlyOnce) {
  constexpr int kHosts = 3;
  constexpr int kRuns = 10000;
  std::vector<SharedHost*> hosts;
  for (int i = 0; i < kHosts; ++i) {
    hosts.push_back(&add_host({"host-" + std::to_string(i), 16, kRuns}));
  }
  std::vector<std::string> ids(kRuns);
  std::atomic<int> refused{0};
  {
    std::vector<std::jthread> starters;
    for (int h = 0; h < kHosts; ++h) {
      starters.emplace_back([&, h] {
        for (int i = h; i < kRuns; i += kHosts) {
          try {
            ids[static_cast<std::size_t>(i)] =
                hosts[static_cast<std::size_t>(h)]
                    ->runs()
                    .start(StartRequest{"installed:echo", "run " + std::to_string(i), {}})
                    .instance_id;
          } catch (const std::exception&) {
            ++refused;
          }
        }
      });
    }
  }
  ASSERT_EQ(refused.load(), 0);
  // Every run ends completed...
  ASSERT_TRUE(
      testing::wait_until([&] { return hosts.front()->runs().active().empty(); }, 300s, 100ms));
  std::uint64_t executions = 0;
  std::set<std::string> executing_hosts;
  for (SharedHost* host : hosts) executions += host->runs().stats().completed;
  for (const std::string& id : ids) {
    const auto run = hosts.back()->runs().get(id);
    ASSERT_TRUE(run) << id;
    ASSERT_EQ(run->status, RunStatus::completed) << id << " " << run->error.value_or("");
    ASSERT_TRUE(run->host);
    executing_hosts.insert(*run->host);
  }
  // ...and was executed once: the hosts together finished exactly kRuns.
  EXPECT_EQ(executions, static_cast<std::uint64_t>(kRuns));
  std::printf("  %d runs over %d hosts, executed by %zu of them\n", kRuns, kHosts,
              executing_hosts.size());
}

TEST_F(SharedHostsTest, StopsMessagesAndDeletesSentToAnyHostReachTheRun) {
  SharedHost& first = add_host({"first"});
  SharedHost& second = add_host({"second"});
  HttpClient client(first.port());
  const std::string id = start_run(client, "installed:runs-listener");
  ASSERT_TRUE(status_everywhere({&first, &second}, id, "running"));
  const std::string executing(run_on(first, id).at("host").as_string());
  SharedHost& elsewhere = executing == "first" ? second : first;
  HttpClient remote(elsewhere.port());

  // A message through the host that does not execute it is logged in order.
  const Response sent = remote.post("/background-agents/" + id + "/messages",
                                    R"({"text": "hello from the other host"})");
  ASSERT_EQ(sent.result_int(), 202) << sent.body();
  const std::uint64_t seq = body_json(sent).at("seq").to_number<std::uint64_t>();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const json::value page =
            body_json(remote.get("/background-agents/" + id + "/logs?after=0"));
        for (const json::value& entry : page.at("entries").as_array()) {
          if (entry.at("seq").to_number<std::uint64_t>() == seq &&
              entry.at("source").as_string() == "user") {
            return entry.at("message").as_string() == "hello from the other host";
          }
        }
        return false;
      },
      20s, 20ms));

  // Stop and delete, both through the other host.
  EXPECT_EQ(remote.post("/background-agents/" + id + "/stop").result_int(), 202);
  ASSERT_TRUE(status_everywhere({&first, &second}, id, "cancelled"));
  EXPECT_EQ(remote.send(http::verb::delete_, "/background-agents/" + id).result_int(), 204);
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return HttpClient(first.port()).get("/background-agents/" + id).result_int() == 404 &&
               HttpClient(second.port()).get("/background-agents/" + id).result_int() == 404;
      },
      10s, 20ms));
  // Stopping what has ended is a 409 wherever it is asked.
  const std::string done = start_run(client, "installed:echo");
  ASSERT_TRUE(status_everywhere({&first, &second}, done, "completed"));
  EXPECT_EQ(remote.post("/background-agents/" + done + "/stop").result_int(), 409);
}

TEST_F(SharedHostsTest, AQueuedRunIsCancelledFromAnyHostBeforeAnyHostClaimsIt) {
  SharedHost& only = add_host({"only", 1});
  HttpClient client(only.port());
  const std::string busy = start_run(client, "installed:sleep", {{"seconds", 60}});
  ASSERT_TRUE(status_everywhere({&only}, busy, "running"));
  const std::string waiting = start_run(client, "installed:echo");
  EXPECT_EQ(run_on(only, waiting).at("status").as_string(), "queued");
  EXPECT_TRUE(run_on(only, waiting).at("host").is_null());
  SharedHost& other = add_host({"other", 1});
  // The second host claims the waiting run unless the stop comes first;
  // either way it ends once, never twice.
  HttpClient remote(other.port());
  const Response stopped = remote.post("/background-agents/" + waiting + "/stop");
  EXPECT_TRUE(stopped.result_int() == 202 || stopped.result_int() == 409) << stopped.body();
  ASSERT_TRUE(testing::wait_until([&] { return run_on(only, waiting).at("endedAt").is_string(); },
                                  20s, 20ms));
  EXPECT_EQ(client.post("/background-agents/" + busy + "/stop").result_int(), 202);
}

TEST_F(SharedHostsTest, HostsRideOutADatabaseRestartAndRefuseStartsMeanwhile) {
  SharedHost& first = add_host({"first"});
  SharedHost& second = add_host({"second"});
  HttpClient client(first.port());
  const std::string before = start_run(client, "installed:echo");
  ASSERT_TRUE(status_everywhere({&first, &second}, before, "completed"));

  postgres_->stop();
  // Starts are refused with 503 while the store cannot record them.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const Response response =
            HttpClient(first.port()).post("/background-agents/start", start_body("installed:echo"));
        return response.result_int() == 503;
      },
      30s, 50ms));
  EXPECT_EQ(body_json(HttpClient(first.port()).get("/healthz", {})).at("storeOk"), false);

  postgres_->start();
  // Back: both hosts take starts again and the runs complete.
  std::string after;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const Response response =
            HttpClient(second.port())
                .post("/background-agents/start", start_body("installed:echo"));
        if (response.result_int() != 201) return false;
        after = std::string(body_json(response).at("instanceId").as_string());
        return true;
      },
      60s, 100ms));
  ASSERT_TRUE(status_everywhere({&first, &second}, after, "completed", 60s));
  EXPECT_TRUE(testing::wait_until(
      [&] { return body_json(HttpClient(first.port()).get("/healthz", {})).at("storeOk") == true; },
      30s, 50ms));
}

}  // namespace
}  // namespace nightshift::hosts_test
