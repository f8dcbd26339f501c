// Several hosts on one PostgreSQL database, where what one host does meets
// what another does: each WebSocket client hears one `started` per run
// whichever host admitted and executed it, a relayed `deleted` carries the
// run as a local one does, a message to a run still waiting in the shared
// queue is accepted and reaches the agent once a host claims it, and an
// agent's limits.maxConcurrent and each host's --max-queued hold across hosts.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "shared_hosts.hpp"
#include "store/postgresql/pg_connection.hpp"

namespace nightshift::hosts_test {
namespace {

using namespace std::chrono_literals;

json::object run_on(SharedHost& host, const std::string& id) {
  HttpClient client(host.port());
  const Response response = client.get("/background-agents/" + id);
  EXPECT_EQ(response.result_int(), 200) << response.body();
  return body_json(response).as_object();
}

bool status_everywhere(std::vector<SharedHost*> hosts, const std::string& id,
                       const std::string& status, std::chrono::milliseconds timeout = 30s) {
  return testing::wait_until(
      [&] {
        for (SharedHost* host : hosts) {
          if (run_on(*host, id).at("status").as_string() != status) return false;
        }
        return true;
      },
      timeout, 20ms);
}

// Leaves `busy` executing a long sleep run and `idle` executing nothing, on
// hosts of one slot each: starts sleep runs on `busy` until one executes
// there (one that lands on `idle` fills it, so the next cannot), then stops
// what runs on `idle`. Returns the sleep run on `busy`.
std::string occupy_only(SharedHost& busy, SharedHost& idle) {
  HttpClient client(busy.port());
  std::string kept;
  for (int attempt = 0; attempt < 4 && kept.empty(); ++attempt) {
    const std::string id = start_run(client, "installed:sleep", {{"seconds", 120}});
    EXPECT_TRUE(status_everywhere({&busy}, id, "running")) << id;
    if (run_on(busy, id).at("host").as_string() == busy.name()) kept = id;
  }
  EXPECT_FALSE(kept.empty()) << "no sleep run landed on " << busy.name();
  for (const Run& run : idle.runs().active()) {
    if (run.host != idle.name()) continue;
    try {
      idle.runs().stop(run.instance_id);
    } catch (const RunError& error) {
      // It ended between the list and the stop (e.g. one stopped just
      // before): what the stop was for.
      EXPECT_EQ(error.code(), RunError::Code::run_not_active) << error.what();
      continue;
    }
    EXPECT_TRUE(status_everywhere({&idle}, run.instance_id, "cancelled"));
  }
  return kept;
}

// What one WebSocket client heard of each run, in order.
struct Heard {
  std::map<std::string, std::vector<std::string>> events;  // per run: its events in order
};

// Reads `client` until it has heard `finished` for every run of `ids`.
Heard listen_until_finished(WsClient& client, const std::vector<std::string>& ids,
                            std::chrono::milliseconds timeout) {
  Heard heard;
  std::set<std::string> waiting(ids.begin(), ids.end());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!waiting.empty() && std::chrono::steady_clock::now() < deadline) {
    const auto message = client.read(std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()));
    if (!message) break;
    if (message->at("type").as_string() != "run") continue;
    const std::string id(message->at("run").at("instanceId").as_string());
    const std::string event(message->at("event").as_string());
    heard.events[id].push_back(event);
    if (event == "finished") waiting.erase(id);
  }
  return heard;
}

// Exactly one `started` per run, before every other event of the run, and
// one `finished`, last.
void expect_one_started_each(const Heard& heard, const std::vector<std::string>& ids,
                             const std::string& client) {
  for (const std::string& id : ids) {
    const auto it = heard.events.find(id);
    ASSERT_NE(it, heard.events.end()) << client << " heard nothing of run " << id;
    const std::vector<std::string>& events = it->second;
    std::string sequence;
    for (const std::string& event : events) sequence += event + " ";
    EXPECT_EQ(std::count(events.begin(), events.end(), "started"), 1)
        << client << ", run " << id << ": " << sequence;
    EXPECT_EQ(events.front(), "started") << client << ", run " << id << ": " << sequence;
    EXPECT_EQ(std::count(events.begin(), events.end(), "finished"), 1)
        << client << ", run " << id << ": " << sequence;
    EXPECT_EQ(events.back(), "finished") << client << ", run " << id << ": " << sequence;
  }
}

TEST_F(SharedHostsTest, EachClientHearsOneStartedPerRunWhicheverHostAdmittedOrExecutedIt) {
  SharedHost& a = add_host({"a", 1});
  SharedHost& b = add_host({"b", 1});
  WsClient on_a(a.port());
  WsClient on_b(b.port());
  ASSERT_EQ(on_a.read()->at("type").as_string(), "snapshot");
  ASSERT_EQ(on_b.read()->at("type").as_string(), "snapshot");
  constexpr int kRuns = 30;

  // Admitted on one host, executed by the other: the admitting host is busy.
  std::vector<std::string> ids;
  const auto start_echoes = [&](SharedHost& admitting, const std::string& label) {
    HttpClient client(admitting.port());
    std::vector<std::string> started;
    for (int i = 0; i < kRuns; ++i) {
      started.push_back(start_run(client, "installed:echo", {}, label + std::to_string(i)));
    }
    return started;
  };
  const std::string busy_a = occupy_only(a, b);
  std::vector<std::string> from_a = start_echoes(a, "from a ");
  for (const std::string& id : from_a) ASSERT_TRUE(status_everywhere({&a, &b}, id, "completed"));
  a.runs().stop(busy_a);
  ASSERT_TRUE(status_everywhere({&a, &b}, busy_a, "cancelled"));
  const std::string busy_b = occupy_only(b, a);
  std::vector<std::string> from_b = start_echoes(b, "from b ");
  for (const std::string& id : from_b) ASSERT_TRUE(status_everywhere({&a, &b}, id, "completed"));
  b.runs().stop(busy_b);

  for (const std::string& id : from_a) {
    EXPECT_EQ(run_on(a, id).at("host").as_string(), "b") << id;
  }
  for (const std::string& id : from_b) {
    EXPECT_EQ(run_on(b, id).at("host").as_string(), "a") << id;
  }
  ids = from_a;
  ids.insert(ids.end(), from_b.begin(), from_b.end());
  const Heard heard_a = listen_until_finished(on_a, ids, 60s);
  const Heard heard_b = listen_until_finished(on_b, ids, 60s);
  expect_one_started_each(heard_a, ids, "the client of host a");
  expect_one_started_each(heard_b, ids, "the client of host b");
}

TEST_F(SharedHostsTest, ADeletedEventRelayedFromAnotherHostCarriesTheRunAsTheLocalOneDoes) {
  SharedHost& a = add_host({"a"});
  SharedHost& b = add_host({"b"});
  HttpClient client(a.port());
  const std::string id = start_run(client, "installed:echo", {}, "to be deleted");
  ASSERT_TRUE(status_everywhere({&a, &b}, id, "completed"));
  const json::object before = run_on(b, id);
  WsClient on_a(a.port());
  WsClient on_b(b.port());
  ASSERT_EQ(on_a.read()->at("type").as_string(), "snapshot");
  ASSERT_EQ(on_b.read()->at("type").as_string(), "snapshot");

  ASSERT_EQ(client.send(http::verb::delete_, "/background-agents/" + id).result_int(), 204);
  const auto local =
      on_a.read_until([&](const json::object& m) { return is_run_event(m, "deleted", id); });
  const auto relayed =
      on_b.read_until([&](const json::object& m) { return is_run_event(m, "deleted", id); });
  ASSERT_TRUE(local);
  ASSERT_TRUE(relayed);
  const json::object& local_run = local->at("run").as_object();
  const json::object& relayed_run = relayed->at("run").as_object();
  // The same run object, field for field (durationMs is computed when sent).
  for (const auto& [key, value] : local_run) {
    if (key == "durationMs") continue;
    ASSERT_TRUE(relayed_run.contains(key)) << key;
    EXPECT_EQ(relayed_run.at(key), value) << key;
  }
  EXPECT_EQ(relayed_run.size(), local_run.size());
  EXPECT_EQ(relayed_run.at("agentId"), "installed:echo");
  EXPECT_EQ(relayed_run.at("task"), "to be deleted");
  EXPECT_EQ(relayed_run.at("status"), "completed");
  EXPECT_EQ(relayed_run.at("endedAt"), before.at("endedAt"));
  EXPECT_EQ(relayed_run.at("host"), before.at("host"));
}

TEST_F(SharedHostsTest, AMessageToARunNoHostHasClaimedIsAcceptedAndReachesTheAgentOnce) {
  // Two messages may wait unread for a run.
  SharedHostSettings settings_a{"a", 1};
  SharedHostSettings settings_b{"b", 1};
  settings_a.max_unread_messages = settings_b.max_unread_messages = 2;
  SharedHost& a = add_host(settings_a);
  SharedHost& b = add_host(settings_b);
  // Both hosts busy: the listener run waits in the shared queue, unclaimed.
  const std::string busy_a = occupy_only(a, b);
  HttpClient on_a(a.port());
  HttpClient on_b(b.port());
  const std::string busy_b = start_run(on_b, "installed:sleep", {{"seconds", 120}});
  ASSERT_TRUE(status_everywhere({&a, &b}, busy_b, "running"));
  ASSERT_EQ(run_on(a, busy_b).at("host").as_string(), "b");
  const std::string id = start_run(on_a, "installed:runs-listener");
  ASSERT_EQ(run_on(b, id).at("status").as_string(), "queued");
  ASSERT_TRUE(run_on(b, id).at("host").is_null());

  // Accepted through either host, with the log seq of the recorded message,
  // as a single host accepts a message to a queued run.
  const Response first =
      on_b.post("/background-agents/" + id + "/messages", R"({"text": "hello"})");
  ASSERT_EQ(first.result_int(), 202) << first.body();
  EXPECT_EQ(body_json(first).at("seq").to_number<std::uint64_t>(), 1u);
  const Response second =
      on_a.post("/background-agents/" + id + "/messages", R"({"text": "done"})");
  ASSERT_EQ(second.result_int(), 202) << second.body();
  EXPECT_EQ(body_json(second).at("seq").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(run_on(a, id).at("status").as_string(), "queued");
  // A third is refused as on a single host, and not recorded.
  const Response third =
      on_b.post("/background-agents/" + id + "/messages", R"({"text": "one too many"})");
  EXPECT_EQ(third.result_int(), 429) << third.body();
  EXPECT_EQ(error_code(third), "too_many_messages");
  EXPECT_EQ(run_on(b, id).at("logCount").to_number<std::uint64_t>(), 2u);

  // A slot frees up: a host claims the run, and its agent gets both messages
  // (the listener completes on "done").
  b.runs().stop(busy_b);
  ASSERT_TRUE(status_everywhere({&a, &b}, id, "completed"));
  const json::value page = body_json(on_b.get("/background-agents/" + id + "/logs?after=0"));
  std::vector<std::string> user, agent;
  std::uint64_t expected_seq = 1;
  for (const json::value& entry : page.at("entries").as_array()) {
    EXPECT_EQ(entry.at("seq").to_number<std::uint64_t>(), expected_seq++);
    const std::string message(entry.at("message").as_string());
    (entry.at("source").as_string() == "user" ? user : agent).push_back(message);
  }
  EXPECT_EQ(user, (std::vector<std::string>{"hello", "done"}));
  EXPECT_EQ(agent, (std::vector<std::string>{"listening", "heard: hello", "heard: done"}));
  a.runs().stop(busy_a);
}

// The runs of an agent that are running now, as the database holds them
// (one snapshot across every host).
std::int64_t running_in_store(pg::Connection& db, const std::string& agent) {
  return db
      .exec("SELECT count(*) FROM runs WHERE agent_id = $1 AND status IN ('running', 'stopping')",
            {agent})
      .int64(0, 0);
}

TEST_F(SharedHostsTest, AnAgentsMaxConcurrentHoldsAcrossHosts) {
  SharedHostSettings first{"a", 8};
  SharedHostSettings second{"b", 8};
  const std::string remix =
      "base: installed:sleep\nparams:\n  seconds: 0.3\nlimits:\n"
      "  maxConcurrent: 2";
  first.remixes = second.remixes = {{"capped", remix}};
  SharedHost& a = add_host(first);
  SharedHost& b = add_host(second);
  pg::Connection db(store_uri());
  constexpr int kRuns = 16;
  std::vector<std::string> ids(kRuns);
  {
    std::vector<std::jthread> starters;
    for (SharedHost* host : {&a, &b}) {
      starters.emplace_back([&, host] {
        for (int i = host == &a ? 0 : 1; i < kRuns; i += 2) {
          ids[static_cast<std::size_t>(i)] =
              host->runs().start(StartRequest{"remix:capped", std::nullopt, {}}).instance_id;
        }
      });
    }
  }
  // An echo run started behind them is not held up by the capped agent.
  HttpClient client(b.port());
  const std::string echo = start_run(client, "installed:echo");
  EXPECT_TRUE(status_everywhere({&a}, echo, "completed"));

  // Sampled while they run, in the store: one snapshot of every host's runs
  // (a host's list is not one: it merges its own runs as it holds them with
  // the store's rows, read a moment apart).
  std::int64_t most = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        most = std::max(most, running_in_store(db, "remix:capped"));
        return db.exec("SELECT count(*) FROM runs WHERE agent_id = 'remix:capped' AND finished")
                   .int64(0, 0) == kRuns;
      },
      120s, 2ms));
  EXPECT_LE(most, 2);
  EXPECT_GE(most, 1);
  std::set<std::string> executing;
  for (const std::string& id : ids) {
    const json::object run = run_on(a, id);
    EXPECT_EQ(run.at("status").as_string(), "completed") << id;
    executing.insert(std::string(run.at("host").as_string()));
  }
  std::printf("  at most %lld of %d capped runs running at once, executed by %zu host(s)\n",
              static_cast<long long>(most), kRuns, executing.size());
}

TEST_F(SharedHostsTest, EachHostsQueueBoundIsExactWhileOtherHostsClaimAndCancel) {
  SharedHost& a = add_host({"a", 1, 3});
  SharedHost& b = add_host({"b", 1});
  // Both hosts busy: what a admits waits in the shared queue.
  const std::string busy_a = occupy_only(a, b);
  HttpClient on_b(b.port());
  const std::string busy_b = start_run(on_b, "installed:sleep", {{"seconds", 120}});
  ASSERT_TRUE(status_everywhere({&b}, busy_b, "running"));
  pg::Connection db(store_uri());
  const auto queued_from_a = [&] {
    return db
        .exec(
            "SELECT count(*) FROM runs WHERE admitted_by = 'a' AND status = 'queued' "
            "AND host IS NULL")
        .int64(0, 0);
  };

  // Many starts at once on a: exactly its bound gets in.
  std::mutex mutex;
  std::vector<std::string> accepted;
  std::atomic<int> refused{0};
  {
    std::vector<std::jthread> starters;
    for (int t = 0; t < 4; ++t) {
      starters.emplace_back([&] {
        for (int i = 0; i < 4; ++i) {
          try {
            const nightshift::Run run =
                a.runs().start(StartRequest{"installed:echo", std::nullopt, {}});
            std::lock_guard lock(mutex);
            accepted.push_back(run.instance_id);
          } catch (const RunError& e) {
            EXPECT_EQ(e.code(), RunError::Code::at_capacity) << e.what();
            ++refused;
          }
        }
      });
    }
  }
  EXPECT_EQ(accepted.size(), 3u);
  EXPECT_EQ(refused.load(), 13);
  EXPECT_EQ(queued_from_a(), 3);

  // Cancelled through the other host: a takes as many again at once.
  for (const std::string& id : accepted) {
    EXPECT_EQ(on_b.post("/background-agents/" + id + "/stop").result_int(), 202);
  }
  EXPECT_EQ(queued_from_a(), 0);
  HttpClient on_a(a.port());
  std::vector<std::string> again;
  for (int i = 0; i < 3; ++i) {
    const Response response = on_a.post("/background-agents/start", start_body("installed:echo"));
    EXPECT_EQ(response.result_int(), 201) << response.body();
    if (response.result_int() == 201) {
      again.emplace_back(body_json(response).at("instanceId").as_string());
    }
  }
  const Response full = on_a.post("/background-agents/start", start_body("installed:echo"));
  EXPECT_EQ(full.result_int(), 503) << full.body();
  EXPECT_EQ(error_code(full), "at_capacity");

  // Claimed by b once it is free: a's queue empties and takes starts again.
  b.runs().stop(busy_b);
  for (const std::string& id : again) EXPECT_TRUE(status_everywhere({&a, &b}, id, "completed"));
  const Response later = on_a.post("/background-agents/start", start_body("installed:echo"));
  EXPECT_EQ(later.result_int(), 201) << later.body();
  a.runs().stop(busy_a);
}

}  // namespace
}  // namespace nightshift::hosts_test
