// The JSON shapes of api.md as api/wire writes them (field names, nulls,
// RFC 3339 times, the WebSocket prefix + shared body split), and what it
// refuses in the start body and in WebSocket client messages.
#include "api/wire.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <set>

#include "api/api_error.hpp"

namespace nightshift::api {
namespace {

namespace json = boost::json;

Timestamp at(std::string_view text) {
  const auto time = parse_rfc3339(text);
  if (!time) throw std::invalid_argument(std::string(text));
  return *time;
}

std::set<std::string> keys(const json::object& object) {
  std::set<std::string> names;
  for (const auto& member : object) names.emplace(member.key());
  return names;
}

Run queued_run() {
  nightshift::Run run;
  run.instance_id = "0b9d2f5e-1c1a-4f55-9a43-2f1d3c1b8e77";
  run.thread_id = "6c1e7a2b-3d4e-4f60-8a9b-0c1d2e3f4a5b";
  run.agent_id = "installed:sleep";
  run.agent_name = "sleep";
  run.agent_source = AgentSource::installed;
  run.params = json::object{{"seconds", 3}};
  run.status = RunStatus::queued;
  run.created_at = at("2026-11-24T05:46:31.482Z");
  return run;
}

Run finished_run() {
  nightshift::Run run = queued_run();
  run.agent_id = "remix:strict-echo";
  run.agent_name = "strict-echo";
  run.agent_source = AgentSource::remix;
  run.task = "say hello";
  run.status = RunStatus::failed;
  run.started_at = at("2026-11-24T05:46:31.500Z");
  run.ended_at = at("2026-11-24T05:46:32.734Z");
  run.progress = 0.5;
  run.error = "it broke";
  run.result = json::object{{"lines", 3}};
  run.log_count = 3;
  run.host = "build-box:7733";
  return run;
}

const std::set<std::string> kRunFields = {
    "instanceId", "threadId", "agentId",   "agentName", "agentSource", "task",
    "params",     "status",   "createdAt", "startedAt", "endedAt",     "durationMs",
    "progress",   "error",    "result",    "logCount",  "usage",       "acceptsMessages",
    "isolation",  "host",     "attempt",   "retryOf",   "rerunOf",     "scheduleId"};

TEST(WireRun, QueuedRunHasEveryFieldWithNullsWhereNothingIsKnownYet) {
  const json::object run = wire::run(queued_run(), at("2026-11-24T05:47:00.000Z"));
  EXPECT_EQ(keys(run), kRunFields);
  EXPECT_EQ(run.at("instanceId"), "0b9d2f5e-1c1a-4f55-9a43-2f1d3c1b8e77");
  EXPECT_EQ(run.at("threadId"), "6c1e7a2b-3d4e-4f60-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(run.at("agentId"), "installed:sleep");
  EXPECT_EQ(run.at("agentName"), "sleep");
  EXPECT_EQ(run.at("agentSource"), "installed");
  EXPECT_TRUE(run.at("task").is_null());
  EXPECT_EQ(run.at("params"), (json::object{{"seconds", 3}}));
  EXPECT_EQ(run.at("status"), "queued");
  EXPECT_EQ(run.at("createdAt"), "2026-11-24T05:46:31.482Z");
  EXPECT_TRUE(run.at("startedAt").is_null());
  EXPECT_TRUE(run.at("endedAt").is_null());
  EXPECT_EQ(run.at("durationMs"), 0);  // never null; 0 while queued
  EXPECT_TRUE(run.at("progress").is_null());
  EXPECT_TRUE(run.at("error").is_null());
  EXPECT_TRUE(run.at("result").is_null());
  EXPECT_EQ(run.at("logCount"), 0);
  EXPECT_EQ(run.at("isolation"), "thread");
  EXPECT_TRUE(run.at("host").is_null());  // no host executes a queued run yet
}

TEST(WireRun, FinishedRunShowsItsTimesDurationErrorAndResult) {
  const json::object run = wire::run(finished_run(), at("2026-11-24T06:00:00.000Z"));
  EXPECT_EQ(keys(run), kRunFields);
  EXPECT_EQ(run.at("agentSource"), "remix");
  EXPECT_EQ(run.at("task"), "say hello");
  EXPECT_EQ(run.at("status"), "failed");
  EXPECT_EQ(run.at("startedAt"), "2026-11-24T05:46:31.500Z");
  EXPECT_EQ(run.at("endedAt"), "2026-11-24T05:46:32.734Z");
  EXPECT_EQ(run.at("durationMs"), 1234);  // endedAt - startedAt, whatever `now` is
  EXPECT_EQ(run.at("progress"), 0.5);
  EXPECT_EQ(run.at("error"), "it broke");
  EXPECT_EQ(run.at("result"), (json::object{{"lines", 3}}));
  EXPECT_EQ(run.at("logCount"), 3);
  nightshift::Run in_process = finished_run();
  in_process.isolation = nightshift::Isolation::process;
  EXPECT_EQ(wire::run(in_process, at("2026-11-24T06:00:00.000Z")).at("isolation"), "process");
  EXPECT_EQ(run.at("host"), "build-box:7733");
}

TEST(WireRun, ActiveRunDurationIsTheTimeSoFar) {
  nightshift::Run running = queued_run();
  running.status = RunStatus::running;
  running.started_at = at("2026-11-24T05:46:32.000Z");
  const json::object run = wire::run(running, at("2026-11-24T05:46:34.250Z"));
  EXPECT_EQ(run.at("status"), "running");
  EXPECT_EQ(run.at("durationMs"), 2250);
  EXPECT_TRUE(run.at("endedAt").is_null());
}

TEST(WireRun, RunBodyAndRunsArrayAreTheSameObjects) {
  const Timestamp now = at("2026-11-24T06:00:00.000Z");
  EXPECT_EQ(json::parse(wire::run_body(finished_run(), now)), wire::run(finished_run(), now));
  const json::value array = json::parse(wire::runs_array({queued_run(), finished_run()}, now));
  ASSERT_EQ(array.as_array().size(), 2u);
  EXPECT_EQ(array.as_array()[0], wire::run(queued_run(), now));
  EXPECT_EQ(array.as_array()[1], wire::run(finished_run(), now));
  EXPECT_EQ(wire::runs_array({}, now), "[]");
}

TEST(WireLogEntry, HasSeqTimeLevelMessageAndSource) {
  const LogEntry entry{7, at("2026-11-24T05:46:31.482Z"), LogLevel::warn, "disk \"low\""};
  EXPECT_EQ(wire::log_entry(entry), (json::object{{"seq", 7},
                                                  {"ts", "2026-11-24T05:46:31.482Z"},
                                                  {"level", "warn"},
                                                  {"message", "disk \"low\""},
                                                  {"source", "agent"}}));
}

TEST(WireAgent, IsTheApiAgentObject) {
  AgentInfo installed;
  installed.id = "installed:echo";
  installed.name = "echo";
  installed.source = AgentSource::installed;
  installed.version = "1.0.0";
  installed.description = "Echoes.";
  installed.location = "/opt/agents/echo";
  installed.available = true;
  installed.params = json::object{{"lines", json::object{{"type", "integer"}}}};
  EXPECT_EQ(wire::agent(installed), (json::object{{"id", "installed:echo"},
                                                  {"name", "echo"},
                                                  {"source", "installed"},
                                                  {"version", "1.0.0"},
                                                  {"description", "Echoes."},
                                                  {"baseAgentId", nullptr},
                                                  {"location", "/opt/agents/echo"},
                                                  {"available", true},
                                                  {"error", nullptr},
                                                  {"params", installed.params},
                                                  {"isolation", "process"}}));

  AgentInfo remix = installed;
  remix.id = "remix:strict-echo";
  remix.source = AgentSource::remix;
  remix.base_agent_id = "installed:nothing";
  remix.available = false;
  remix.error = "its base installed:nothing is not installed";
  const json::object object = wire::agent(remix);
  EXPECT_EQ(object.at("source"), "remix");
  EXPECT_EQ(object.at("baseAgentId"), "installed:nothing");
  EXPECT_EQ(object.at("available"), false);
  EXPECT_EQ(object.at("error"), "its base installed:nothing is not installed");

  const json::value body = json::parse(wire::agents_body({installed, remix}));
  EXPECT_EQ(keys(body.as_object()), std::set<std::string>{"agents"});
  ASSERT_EQ(body.at("agents").as_array().size(), 2u);
  EXPECT_EQ(body.at("agents").as_array()[1], object);
}

TEST(WireHttpBodies, ErrorBodyNestsCodeAndMessage) {
  EXPECT_EQ(json::parse(wire::error_body("run_not_found", "no run has the id 'x'")),
            (json::object{{"error", json::object{{"code", "run_not_found"},
                                                 {"message", "no run has the id 'x'"}}}}));
}

// The list page as the server sends it: the frame around the history array.
std::string list_page(std::string_view active, std::string_view history,
                      const std::optional<std::string>& next_cursor) {
  const wire::ListPageFrame frame = wire::list_page_frame(active, next_cursor);
  return frame.before + std::string(history) + frame.after;
}

TEST(WireHttpBodies, ListPageHoldsActiveHistoryAndNextCursor) {
  const Timestamp now = at("2026-11-24T06:00:00.000Z");
  const std::string active = wire::runs_array({queued_run()}, now);
  const std::string history = wire::runs_array({finished_run()}, now);
  const json::value last = json::parse(list_page(active, history, std::nullopt));
  EXPECT_EQ(keys(last.as_object()), (std::set<std::string>{"active", "history", "nextCursor"}));
  EXPECT_EQ(last.at("active"), json::parse(active));
  EXPECT_EQ(last.at("history"), json::parse(history));
  EXPECT_TRUE(last.at("nextCursor").is_null());
  const json::value more = json::parse(list_page("[]", "[]", std::string("abc\"=")));
  EXPECT_EQ(more.at("nextCursor"), "abc\"=");
}

TEST(WireHttpBodies, LogsPageHoldsEntriesNextAfterAndComplete) {
  LogPage page;
  page.entries = {LogEntry{1, at("2026-11-24T05:46:31.482Z"), LogLevel::info, "one"},
                  LogEntry{2, at("2026-11-24T05:46:31.483Z"), LogLevel::error, "two"}};
  page.next_after = 2;
  page.complete = true;
  const json::value body = json::parse(wire::logs_page("0b9d", page));
  EXPECT_EQ(keys(body.as_object()),
            (std::set<std::string>{"instanceId", "entries", "nextAfter", "complete"}));
  EXPECT_EQ(body.at("instanceId"), "0b9d");
  ASSERT_EQ(body.at("entries").as_array().size(), 2u);
  EXPECT_EQ(body.at("entries").as_array()[1], wire::log_entry(page.entries[1]));
  EXPECT_EQ(body.at("nextAfter"), 2);
  EXPECT_EQ(body.at("complete"), true);

  const json::value empty = json::parse(wire::logs_page("0b9d", LogPage{{}, 5, false}));
  EXPECT_TRUE(empty.at("entries").as_array().empty());
  EXPECT_EQ(empty.at("nextAfter"), 5);
  EXPECT_EQ(empty.at("complete"), false);
}

TEST(WireHttpBodies, HealthSaysOkTheVersionAndWhetherTheStoreCommits) {
  EXPECT_EQ(json::parse(wire::health_body("1.2.3", true)),
            (json::object{
                {"status", "ok"}, {"version", "1.2.3"}, {"store", "sqlite"}, {"storeOk", true}}));
  EXPECT_EQ(json::parse(wire::health_body("1.2.3", false)).at("storeOk"), false);
  EXPECT_EQ(json::parse(wire::health_body("1.2.3", true, "postgresql")).at("store"), "postgresql");
}

TEST(WireHttpBodies, HostsListEachHostWithItsHeartbeatAndActiveRuns) {
  HostRecord host;
  host.name = "build-box:7733";
  host.started_at = at("2026-11-24T05:00:00.000Z");
  host.last_seen_at = at("2026-11-24T05:46:31.482Z");
  host.alive = true;
  host.active_runs = 3;
  host.version = "1.1.0";
  EXPECT_EQ(
      json::parse(wire::hosts_body({host})),
      (json::object{{"hosts", json::array{json::object{{"name", "build-box:7733"},
                                                       {"startedAt", "2026-11-24T05:00:00.000Z"},
                                                       {"lastSeenAt", "2026-11-24T05:46:31.482Z"},
                                                       {"alive", true},
                                                       {"activeRuns", 3},
                                                       {"version", "1.1.0"}}}}}));
  EXPECT_EQ(json::parse(wire::hosts_body({})), (json::object{{"hosts", json::array{}}}));
}

TEST(WireHttpBodies, MessageBodyNeedsNonEmptyTextWithinItsLimit) {
  EXPECT_EQ(wire::parse_message_body(R"({"text": "look at the tests"})", 100), "look at the tests");
  for (const char* bad : {"", "[]", "{}", R"({"text": 5})", R"({"text": ""})", "not json"}) {
    EXPECT_THROW(wire::parse_message_body(bad, 100), ApiError) << bad;
  }
  EXPECT_THROW(wire::parse_message_body(R"({"text": "0123456789"})", 5), ApiError);
}

TEST(WireHttpBodies, StartBodyWithAnIntegerBeyond64BitsIsRefusedNamingIt) {
  try {
    wire::parse_start_body(
        R"({"agentId": "installed:sleep", "params": {"seconds": 123456789012345678901234567890}})",
        1000);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& error) {
    EXPECT_EQ(std::string(error.code()), "invalid_params");
    EXPECT_NE(std::string(error.what()).find("params.seconds"), std::string::npos) << error.what();
  }
}

TEST(WireRunAndLogShapes, V11FieldsUsageAcceptsMessagesAndSource) {
  nightshift::Run record;
  record.instance_id = generate_uuid();
  record.thread_id = generate_uuid();
  record.agent_id = "installed:llm";
  record.agent_name = "llm";
  record.created_at = now_ms();
  EXPECT_TRUE(wire::run(record, now_ms()).at("usage").is_null());
  EXPECT_EQ(wire::run(record, now_ms()).at("acceptsMessages"), false);
  record.usage = TokenUsage{120, 30};
  record.accepts_messages = true;
  const auto shown = wire::run(record, now_ms());
  EXPECT_EQ(shown.at("usage"), (json::object{{"promptTokens", 120}, {"completionTokens", 30}}));
  EXPECT_EQ(shown.at("acceptsMessages"), true);
  LogEntry entry{1, now_ms(), LogLevel::info, "hello", LogSource::user};
  EXPECT_EQ(wire::log_entry(entry).at("source"), "user");
  entry.source = LogSource::agent;
  EXPECT_EQ(wire::log_entry(entry).at("source"), "agent");
}

json::object message(std::string_view type, std::uint64_t seq, std::string_view body) {
  std::string message;
  wire::append_message_prefix(message, type, seq);
  return json::parse(message + std::string(body)).as_object();
}

TEST(WireWebSocket, SnapshotIsTypeSeqActiveAndHistory) {
  const Timestamp now = at("2026-11-24T06:00:00.000Z");
  const std::string active = wire::runs_array({queued_run()}, now);
  const std::string history = wire::runs_array({finished_run()}, now);
  const json::object snapshot = message("snapshot", 1, wire::snapshot_body(active, history));
  EXPECT_EQ(keys(snapshot), (std::set<std::string>{"type", "seq", "active", "history"}));
  EXPECT_EQ(snapshot.at("type"), "snapshot");
  EXPECT_EQ(snapshot.at("seq"), 1);
  EXPECT_EQ(snapshot.at("active"), json::parse(active));
  EXPECT_EQ(snapshot.at("history"), json::parse(history));
}

TEST(WireWebSocket, OneRunEventBodyServesEverySeq) {
  const Timestamp now = at("2026-11-24T06:00:00.000Z");
  const std::string body =
      wire::run_event_body(RunEvent{RunEventKind::finished, finished_run()}, now);
  for (std::uint64_t seq : {2u, 41u}) {
    const json::object event = message("run", seq, body);
    EXPECT_EQ(keys(event), (std::set<std::string>{"type", "seq", "event", "run"}));
    EXPECT_EQ(event.at("type"), "run");
    EXPECT_EQ(event.at("seq"), seq);
    EXPECT_EQ(event.at("event"), "finished");
    EXPECT_EQ(event.at("run"), wire::run(finished_run(), now));
  }
  for (auto kind : {RunEventKind::started, RunEventKind::updated, RunEventKind::deleted}) {
    EXPECT_EQ(
        message("run", 1, wire::run_event_body(RunEvent{kind, queued_run()}, now)).at("event"),
        json::value(json::string(to_string(kind))));
  }
}

TEST(WireWebSocket, LogsPongAndErrorMessages) {
  const std::vector<LogEntry> entries = {
      LogEntry{3, at("2026-11-24T05:46:31.482Z"), LogLevel::debug, "three"},
      LogEntry{4, at("2026-11-24T05:46:31.490Z"), LogLevel::trace, "four"}};
  const json::object logs = message("logs", 5, wire::logs_body("0b9d", entries));
  EXPECT_EQ(keys(logs), (std::set<std::string>{"type", "seq", "instanceId", "entries"}));
  EXPECT_EQ(logs.at("type"), "logs");
  EXPECT_EQ(logs.at("instanceId"), "0b9d");
  EXPECT_EQ(logs.at("entries"),
            (json::array{wire::log_entry(entries[0]), wire::log_entry(entries[1])}));

  EXPECT_EQ(message("pong", 9, wire::empty_body()), (json::object{{"type", "pong"}, {"seq", 9}}));

  EXPECT_EQ(
      message("error", 10, wire::error_message_body("bad_message", "send \"JSON\"")),
      (json::object{
          {"type", "error"}, {"seq", 10}, {"code", "bad_message"}, {"message", "send \"JSON\""}}));
}

TEST(WireStartBody, AcceptsAgentTaskAndParams) {
  const StartRequest start = wire::parse_start_body(
      R"({"agentId": "remix:strict-echo", "task": "hi", "params": {"lines": 2}})", 64);
  EXPECT_EQ(start.agent_id, "remix:strict-echo");
  EXPECT_EQ(start.task, "hi");
  EXPECT_EQ(start.params, (json::object{{"lines", 2}}));

  const StartRequest minimal =
      wire::parse_start_body(R"({"agentId": "installed:echo", "task": null, "params": null})", 64);
  EXPECT_FALSE(minimal.task);
  EXPECT_TRUE(minimal.params.empty());
  EXPECT_FALSE(minimal.limits.memory_mib);
}

TEST(WireStartBody, ReadsLimitsAndRefusesMalformedOnes) {
  const StartRequest start = wire::parse_start_body(
      R"({"agentId": "installed:echo", "limits": {"timeoutSeconds": 1.5, "memoryMiB": 256,
          "cpuSeconds": 3, "sandbox": true, "network": false}})",
      64);
  EXPECT_EQ(start.limits.timeout_seconds, 1.5);
  EXPECT_EQ(start.limits.memory_mib, 256u);
  EXPECT_EQ(start.limits.cpu_seconds, 3u);
  EXPECT_EQ(start.limits.sandbox, true);
  EXPECT_EQ(start.limits.network, false);
  for (const char* body : {R"({"agentId": "installed:echo", "limits": 3})",
                           R"({"agentId": "installed:echo", "limits": {"memoryMiB": 0}})",
                           R"({"agentId": "installed:echo", "limits": {"memoryMiB": 1.5}})",
                           R"({"agentId": "installed:echo", "limits": {"cpuSeconds": "2"}})",
                           R"({"agentId": "installed:echo", "limits": {"sandbox": 1}})"}) {
    EXPECT_THROW(wire::parse_start_body(body, 64), nightshift::api::ApiError) << body;
  }
  // The agent's own limits: refused in a start rather than silently ignored.
  for (const char* key : {"retries", "retryBackoffSeconds", "maxConcurrent"}) {
    const std::string body =
        std::string(R"({"agentId": "installed:echo", "limits": {")") + key + R"(": 1}})";
    try {
      (void)wire::parse_start_body(body, 64);
      ADD_FAILURE() << body << " was accepted";
    } catch (const nightshift::api::ApiError& refused) {
      EXPECT_EQ(refused.code(), "invalid_params");
      EXPECT_NE(std::string(refused.what()).find(key), std::string::npos) << refused.what();
    }
  }
}

TEST(WireStartBody, RefusesWhatApiMdDoesNotAllowSayingWhy) {
  const std::string long_task =
      "{\"agentId\": \"installed:echo\", \"task\": \"" + std::string(65, 'x') + "\"}";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "the body is empty"},
      {"{nope", "the body is not valid JSON"},
      {"[1]", "the body must be a JSON object"},
      {"{}", "agentId is required"},
      {R"({"agentId": null})", "agentId is required"},
      {R"({"agentId": 7})", "agentId must be a string"},
      {R"({"agentId": "echo"})", "is not of the form <source>:<name>"},
      {R"({"agentId": "elsewhere:echo"})", "is not of the form <source>:<name>"},
      {R"({"agentId": "installed:Echo"})", "is not of the form <source>:<name>"},
      {R"({"agentId": "installed:echo", "task": 5})", "task must be a string or null"},
      {long_task, "task is 65 bytes; the limit is 64"},
      {R"({"agentId": "installed:echo", "params": [1]})", "params must be a JSON object"},
  };
  for (const auto& [body, reason] : cases) {
    try {
      wire::parse_start_body(body, 64);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& error) {
      EXPECT_EQ(error.status(), boost::beast::http::status::bad_request) << body;
      EXPECT_EQ(error.code(), "invalid_request") << body;
      EXPECT_NE(std::string(error.what()).find(reason), std::string::npos)
          << body << " -> " << error.what();
    }
  }
}

TEST(WireAgentId, FollowsTheSourceAndNameRules) {
  EXPECT_TRUE(wire::is_agent_id("installed:echo"));
  EXPECT_TRUE(wire::is_agent_id("local:my-agent_2.0"));
  EXPECT_TRUE(wire::is_agent_id("remix:" + std::string(64, 'a')));
  EXPECT_FALSE(wire::is_agent_id("remix:" + std::string(65, 'a')));
  EXPECT_FALSE(wire::is_agent_id("installed:-echo"));
  EXPECT_FALSE(wire::is_agent_id("installed:"));
  EXPECT_FALSE(wire::is_agent_id("echo"));
  EXPECT_FALSE(wire::is_agent_id("global:echo"));
}

TEST(WireClientMessage, ParsesPingSubscribeAndUnsubscribe) {
  EXPECT_TRUE(
      std::holds_alternative<wire::PingMessage>(wire::parse_client_message(R"({"type": "ping"})")));

  const auto subscribe =
      wire::parse_client_message(R"({"type": "subscribe", "instanceId": "abc", "after": 12})");
  ASSERT_TRUE(std::holds_alternative<wire::SubscribeMessage>(subscribe));
  EXPECT_EQ(std::get<wire::SubscribeMessage>(subscribe).instance_id, "abc");
  EXPECT_EQ(std::get<wire::SubscribeMessage>(subscribe).after, 12u);

  const auto from_start =
      wire::parse_client_message(R"({"type": "subscribe", "instanceId": "abc"})");
  ASSERT_TRUE(std::holds_alternative<wire::SubscribeMessage>(from_start));
  EXPECT_EQ(std::get<wire::SubscribeMessage>(from_start).after, 0u);

  const auto unsubscribe =
      wire::parse_client_message(R"({"type": "unsubscribe", "instanceId": "abc"})");
  ASSERT_TRUE(std::holds_alternative<wire::UnsubscribeMessage>(unsubscribe));
  EXPECT_EQ(std::get<wire::UnsubscribeMessage>(unsubscribe).instance_id, "abc");
}

TEST(WireClientMessage, BadMessagesSayWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "a JSON object with a string 'type'"},
      {"[1]", "a JSON object with a string 'type'"},
      {R"({"type": 3})", "a JSON object with a string 'type'"},
      {R"({"type": "dance"})", "unknown message type 'dance'"},
      {R"({"type": "subscribe"})", "subscribe needs a string 'instanceId'"},
      {R"({"type": "unsubscribe", "instanceId": 4})", "unsubscribe needs a string 'instanceId'"},
      {R"({"type": "subscribe", "instanceId": "x", "after": -1})",
       "'after' must be a non-negative"},
      {R"({"type": "subscribe", "instanceId": "x", "after": "3"})",
       "'after' must be a non-negative"},
  };
  for (const auto& [text, reason] : cases) {
    const auto parsed = wire::parse_client_message(text);
    ASSERT_TRUE(std::holds_alternative<wire::BadMessage>(parsed)) << text;
    EXPECT_NE(std::get<wire::BadMessage>(parsed).reason.find(reason), std::string::npos)
        << text << " -> " << std::get<wire::BadMessage>(parsed).reason;
  }
}

}  // namespace
}  // namespace nightshift::api
