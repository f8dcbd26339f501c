// The automation endpoints of api.md v1.1 over a real server: re-runs,
// schedules (with the `schedule` WebSocket events), webhooks (the secret is
// never returned) and their deliveries, the new Run fields, and /metrics.
#include "api_test_host.hpp"

namespace nightshift::api_test {
namespace {

using namespace std::chrono_literals;

std::string create_schedule(HttpClient& client, const json::object& body) {
  const Response response = client.post("/schedules", json::serialize(body));
  EXPECT_EQ(response.result_int(), 201) << response.body();
  const json::object schedule = body_json(response).as_object();
  EXPECT_EQ(response[http::field::location],
            "/schedules/" + std::string(schedule.at("id").as_string()));
  return std::string(schedule.at("id").as_string());
}

TEST(AutomationApi, RunObjectsCarryTheOriginFields) {
  TestHost host;
  HttpClient client(host.port());
  const std::string id = start_run(client, "installed:echo", {}, "hi");
  ASSERT_TRUE(wait_for_status(client, id, "completed"));
  const json::object run = get_run(client, id);
  EXPECT_EQ(run.at("attempt"), 1);
  EXPECT_TRUE(run.at("retryOf").is_null());
  EXPECT_TRUE(run.at("rerunOf").is_null());
  EXPECT_TRUE(run.at("scheduleId").is_null());
}

TEST(AutomationApi, RerunStartsTheSameWorkAgain) {
  TestHost host;
  HttpClient client(host.port());
  const std::string id = start_run(client, "installed:sleep", {{"seconds", 0}}, "again");
  ASSERT_TRUE(wait_for_status(client, id, "completed"));
  const Response response = client.post("/background-agents/" + id + "/rerun");
  ASSERT_EQ(response.result_int(), 201) << response.body();
  const json::object rerun = body_json(response).as_object();
  EXPECT_EQ(rerun.at("rerunOf"), id.c_str());
  EXPECT_EQ(rerun.at("task"), "again");
  EXPECT_EQ(rerun.at("params"), get_run(client, id).at("params"));
  EXPECT_EQ(response[http::field::location],
            "/background-agents/" + std::string(rerun.at("instanceId").as_string()));

  const std::string active = start_run(client, "installed:sleep", {{"seconds", 30}});
  const Response busy = client.post("/background-agents/" + active + "/rerun");
  EXPECT_EQ(busy.result_int(), 409);
  EXPECT_EQ(error_code(busy), "run_active");
  const Response unknown = client.post("/background-agents/" + generate_uuid() + "/rerun");
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(error_code(unknown), "run_not_found");
  client.post("/background-agents/" + active + "/stop");
}

TEST(AutomationApi, ScheduleLifecycleWithWebSocketEvents) {
  TestHost host;
  HttpClient client(host.port());
  WsClient ws(host.port());
  ASSERT_TRUE(ws.read());  // snapshot

  const std::string id = create_schedule(client, {{"agentId", "installed:echo"},
                                                  {"cron", "0 3 * * *"},
                                                  {"timezone", "Europe/Berlin"},
                                                  {"task", "nightly"}});
  const auto created =
      ws.read_until([](const json::object& m) { return m.at("type") == "schedule"; });
  ASSERT_TRUE(created);
  EXPECT_EQ(created->at("event"), "created");
  EXPECT_EQ(created->at("schedule").at("id"), id.c_str());

  json::object schedule = body_json(client.get("/schedules/" + id)).as_object();
  EXPECT_EQ(schedule.at("agentId"), "installed:echo");
  EXPECT_EQ(schedule.at("cron"), "0 3 * * *");
  EXPECT_EQ(schedule.at("timezone"), "Europe/Berlin");
  EXPECT_EQ(schedule.at("enabled"), true);
  EXPECT_EQ(schedule.at("overlap"), "skip");
  EXPECT_EQ(schedule.at("task"), "nightly");
  EXPECT_TRUE(schedule.at("params").is_object());
  EXPECT_TRUE(schedule.at("nextRunAt").is_string());
  EXPECT_TRUE(schedule.at("lastRunId").is_null());
  EXPECT_TRUE(schedule.at("createdAt").is_string());

  const Response patched = client.send(http::verb::patch, "/schedules/" + id,
                                       R"({"enabled": false, "overlap": "queue"})");
  ASSERT_EQ(patched.result_int(), 200) << patched.body();
  EXPECT_EQ(body_json(patched).at("enabled"), false);
  EXPECT_TRUE(body_json(patched).at("nextRunAt").is_null());
  EXPECT_EQ(body_json(patched).at("overlap"), "queue");
  const auto updated =
      ws.read_until([](const json::object& m) { return m.at("type") == "schedule"; });
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->at("event"), "updated");

  const Response triggered = client.post("/schedules/" + id + "/trigger");
  ASSERT_EQ(triggered.result_int(), 201) << triggered.body();
  EXPECT_EQ(body_json(triggered).at("scheduleId"), id.c_str());
  EXPECT_EQ(body_json(triggered).at("task"), "nightly");

  const json::object list = body_json(client.get("/schedules")).as_object();
  ASSERT_EQ(list.at("schedules").as_array().size(), 1u);
  EXPECT_EQ(list.at("schedules").as_array()[0].at("lastRunId"),
            body_json(triggered).at("instanceId"));

  EXPECT_EQ(client.send(http::verb::delete_, "/schedules/" + id).result_int(), 204);
  EXPECT_TRUE(ws.read_until([](const json::object& m) {
    return m.at("type") == "schedule" && m.at("event") == "deleted";
  }));
  EXPECT_TRUE(ws.seq_without_gaps());
  for (const auto& [method, path] : std::vector<std::pair<http::verb, std::string>>{
           {http::verb::get, "/schedules/" + id},
           {http::verb::delete_, "/schedules/" + id},
           {http::verb::patch, "/schedules/" + id},
           {http::verb::post, "/schedules/" + id + "/trigger"}}) {
    const Response gone =
        client.send(method, path, method == http::verb::patch ? R"({"enabled": true})" : "");
    EXPECT_EQ(gone.result_int(), 404) << path;
    EXPECT_EQ(error_code(gone), "schedule_not_found") << path;
  }
}

TEST(AutomationApi, ScheduleRequestsAreCheckedWithReasons) {
  TestHost host;
  HttpClient client(host.port());
  const auto refused = [&](const std::string& body) {
    const Response response = client.post("/schedules", body);
    EXPECT_EQ(response.result_int() / 100, 4) << body << " -> " << response.body();
    return std::make_pair(response.result_int(), error_code(response));
  };
  EXPECT_EQ(refused(R"({"cron": "0 3 * * *"})"),
            std::make_pair(400u, std::string("invalid_request")));
  EXPECT_EQ(refused(R"({"agentId": "installed:echo"})"),
            std::make_pair(400u, std::string("invalid_request")));
  EXPECT_EQ(refused(R"({"agentId": "installed:echo", "cron": "* * * *"})"),
            std::make_pair(400u, std::string("invalid_schedule")));
  EXPECT_EQ(
      refused(R"({"agentId": "installed:echo", "cron": "@daily", "timezone": "Nowhere/City"})"),
      std::make_pair(400u, std::string("invalid_schedule")));
  EXPECT_EQ(refused(R"({"agentId": "installed:echo", "cron": "@daily", "overlap": "maybe"})"),
            std::make_pair(400u, std::string("invalid_request")));
  EXPECT_EQ(refused(R"({"agentId": "installed:nope", "cron": "@daily"})"),
            std::make_pair(404u, std::string("agent_not_found")));
  EXPECT_EQ(
      refused(R"({"agentId": "installed:sleep", "cron": "@daily", "params": {"seconds": "x"}})"),
      std::make_pair(400u, std::string("invalid_params")));
  const std::string id =
      create_schedule(client, {{"agentId", "installed:echo"}, {"cron", "@daily"}});
  const Response change_agent =
      client.send(http::verb::patch, "/schedules/" + id, R"({"agentId": "installed:sleep"})");
  EXPECT_EQ(change_agent.result_int(), 400);
}

TEST(AutomationApi, WebhooksNeverReturnTheirSecret) {
  TestHost host;
  HttpClient client(host.port());
  const Response created = client.post(
      "/webhooks", R"({"url": "http://127.0.0.1:9/hook", "events": ["run.finished", "run.failed"],
                      "agentId": "installed:echo", "secret": "do-not-show"})");
  ASSERT_EQ(created.result_int(), 201) << created.body();
  EXPECT_EQ(created.body().find("do-not-show"), std::string::npos);
  const json::object webhook = body_json(created).as_object();
  EXPECT_FALSE(webhook.contains("secret"));
  EXPECT_EQ(webhook.at("agentId"), "installed:echo");
  EXPECT_EQ(webhook.at("events").as_array().size(), 2u);
  const std::string id(webhook.at("id").as_string());

  const Response listed = client.get("/webhooks");
  EXPECT_EQ(listed.body().find("do-not-show"), std::string::npos);
  EXPECT_EQ(body_json(listed).at("webhooks").as_array().size(), 1u);
  const Response deliveries = client.get("/webhooks/" + id + "/deliveries");
  ASSERT_EQ(deliveries.result_int(), 200);
  EXPECT_TRUE(body_json(deliveries).at("deliveries").as_array().empty());

  EXPECT_EQ(client.post("/webhooks", R"({"url": "gopher://x"})").result_int(), 400);
  EXPECT_EQ(error_code(client.post("/webhooks", R"({"url": "http://x/", "events": ["run.done"]})")),
            "invalid_webhook");
  EXPECT_EQ(client.send(http::verb::delete_, "/webhooks/" + id).result_int(), 204);
  const Response gone = client.get("/webhooks/" + id + "/deliveries");
  EXPECT_EQ(gone.result_int(), 404);
  EXPECT_EQ(error_code(gone), "webhook_not_found");
}

TEST(AutomationApi, MetricsCountAutomation) {
  TestHost host;
  HttpClient client(host.port());
  const std::string body = client.get("/metrics").body();
  for (const char* family :
       {"nightshift_retries_started_total 0", "nightshift_scheduled_starts_total 0",
        "nightshift_webhook_deliveries_total{outcome=\"delivered\"} 0",
        "nightshift_webhook_deliveries_total{outcome=\"failed\"} 0"}) {
    EXPECT_NE(body.find(family), std::string::npos) << family;
  }
}

}  // namespace
}  // namespace nightshift::api_test
