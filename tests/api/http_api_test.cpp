// The HTTP endpoints of api.md against a real host: shapes, status codes,
// error codes, headers and limits.
#include <SQLiteCpp/Database.h>

#include <boost/url/url.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api_test_host.hpp"

namespace nightshift::api_test {
namespace {

class HttpApiTest : public ::testing::Test {
 protected:
  TestHost host_;
  HttpClient client_{host_.port()};
};

TEST_F(HttpApiTest, HealthzAnswersWithoutTokenWithVersion) {
  const Response response = client_.get("/healthz", {});
  ASSERT_EQ(response.result_int(), 200);
  EXPECT_EQ(response[http::field::content_type], "application/json");
  const json::value body = body_json(response);
  EXPECT_EQ(body.at("status").as_string(), "ok");
  EXPECT_EQ(body.at("version").as_string(), NIGHTSHIFT_VERSION);
  EXPECT_EQ(body.at("store").as_string(), "sqlite");
  EXPECT_EQ(body.at("storeOk").as_bool(), true);
}

TEST_F(HttpApiTest, HostsListsTheOneHostOfASqliteStoreAndRunsNameIt) {
  EXPECT_EQ(client_.get("/hosts", {}).result_int(), 401);
  const std::string id = start_run(client_, "installed:sleep", {{"seconds", 30}});
  ASSERT_TRUE(wait_for_status(client_, id, "running"));
  const Response response = client_.get("/hosts");
  ASSERT_EQ(response.result_int(), 200) << response.body();
  const json::array hosts = body_json(response).at("hosts").as_array();
  ASSERT_EQ(hosts.size(), 1u);
  const json::object& host = hosts.front().as_object();
  EXPECT_FALSE(host.at("name").as_string().empty());
  EXPECT_EQ(host.at("alive"), true);
  EXPECT_EQ(host.at("activeRuns"), 1);
  EXPECT_TRUE(host.at("version").is_string());
  // The running run names the host executing it.
  EXPECT_EQ(get_run(client_, id).at("host"), host.at("name"));
  EXPECT_EQ(client_.post("/background-agents/" + id + "/stop").result_int(), 202);
}

TEST_F(HttpApiTest, MessageToARunningAgentIsLoggedAsUserEntryAndReachesIt) {
  const std::string id = start_run(client_, "installed:runs-listener");
  ASSERT_TRUE(wait_for_status(client_, id, "running"));
  EXPECT_EQ(get_run(client_, id).at("acceptsMessages"), true);
  const Response sent =
      client_.post("/background-agents/" + id + "/messages", R"({"text": "check the tests"})");
  ASSERT_EQ(sent.result_int(), 202) << sent.body();
  const std::uint64_t seq = body_json(sent).at("seq").to_number<std::uint64_t>();
  const auto entries_now = [&] {
    return body_json(client_.get("/background-agents/" + id + "/logs")).at("entries").as_array();
  };
  ASSERT_TRUE(testing::wait_until([&] {
    for (const auto& entry : entries_now()) {
      if (entry.at("message") == "heard: check the tests") return true;
    }
    return false;
  }));
  bool found = false;
  for (const auto& entry : entries_now()) {
    if (entry.at("seq").to_number<std::uint64_t>() != seq) continue;
    found = true;
    EXPECT_EQ(entry.at("message"), "check the tests");
    EXPECT_EQ(entry.at("source"), "user");
  }
  EXPECT_TRUE(found) << "no log entry " << seq;
  ASSERT_EQ(
      client_.post("/background-agents/" + id + "/messages", R"({"text": "done"})").result_int(),
      202);
  ASSERT_TRUE(wait_for_status(client_, id, "completed"));
  EXPECT_EQ(get_run(client_, id).at("usage"),
            (json::object{{"promptTokens", 20}, {"completionTokens", 2}}));
}

TEST_F(HttpApiTest, MessagesAreRefusedWithTheCodesOfTheContract) {
  const std::string sleeping = start_run(client_, "installed:sleep", {{"seconds", 60}});
  const std::string listener = start_run(client_, "installed:runs-listener");
  const auto code_of = [&](const std::string& id, const std::string& body) {
    const Response response = client_.post("/background-agents/" + id + "/messages", body);
    return std::make_pair(response.result_int(),
                          std::string(body_json(response).at("error").at("code").as_string()));
  };
  EXPECT_EQ(code_of(sleeping, R"({"text": "hi"})"),
            std::make_pair(422u, std::string("messages_not_supported")));
  EXPECT_EQ(code_of(listener, R"({"text": ""})"),
            std::make_pair(400u, std::string("invalid_request")));
  EXPECT_EQ(code_of(listener, R"({"words": "hi"})"),
            std::make_pair(400u, std::string("invalid_request")));
  EXPECT_EQ(code_of(generate_uuid(), R"({"text": "hi"})"),
            std::make_pair(404u, std::string("run_not_found")));
  client_.post("/background-agents/" + sleeping + "/stop");
  ASSERT_TRUE(wait_for_status(client_, sleeping, "cancelled"));
  EXPECT_EQ(code_of(sleeping, R"({"text": "hi"})"),
            std::make_pair(409u, std::string("run_not_active")));
  client_.post("/background-agents/" + listener + "/stop");
}

// A client sending faster than the agent reads is told to wait (429 with
// Retry-After) once the default bound of 100 unread messages is reached, and
// the refused message is not recorded.
TEST_F(HttpApiTest, MessagesPastTheUnreadBoundAre429WithRetryAfterAndNotRecorded) {
  // The agent sleeps before it reads anything, so every message stays unread.
  const std::string id = start_run(client_, "installed:runs-listener", {{"sleepFirstMs", 600000}});
  ASSERT_TRUE(wait_for_status(client_, id, "running"));
  const std::string path = "/background-agents/" + id + "/messages";
  std::uint64_t last_seq = 0;
  for (int i = 0; i < 100; ++i) {
    const Response sent = client_.post(path, R"({"text": "m"})");
    ASSERT_EQ(sent.result_int(), 202) << i << ": " << sent.body();
    last_seq = body_json(sent).at("seq").to_number<std::uint64_t>();
  }
  const Response refused = client_.post(path, R"({"text": "one too many"})");
  EXPECT_EQ(refused.result_int(), 429) << refused.body();
  EXPECT_EQ(error_code(refused), "too_many_messages");
  EXPECT_EQ(refused[http::field::retry_after], "1");
  const std::string message(body_json(refused).at("error").at("message").as_string());
  EXPECT_NE(message.find("100 messages its agent has not read"), std::string::npos) << message;
  ASSERT_EQ(client_.post("/background-agents/" + id + "/stop").result_int(), 202);
  ASSERT_TRUE(wait_for_status(client_, id, "cancelled"));
  const json::value logs = body_json(client_.get("/background-agents/" + id + "/logs?limit=500"));
  for (const auto& entry : logs.at("entries").as_array()) {
    EXPECT_NE(entry.at("message"), "one too many");
    if (entry.at("source") == "user") {
      EXPECT_LE(entry.at("seq").to_number<std::uint64_t>(), last_seq);
    }
  }
}

TEST_F(HttpApiTest, MissingOrWrongTokenGets401WithWwwAuthenticate) {
  for (const Headers& headers :
       {Headers{}, Headers{{"Authorization", "Bearer wrong"}},
        Headers{{"Authorization", std::string("Basic ") + kToken}},
        Headers{{"Authorization", std::string("Bearer ") + kToken + "x"}}}) {
    const Response response = client_.get("/background-agents", headers);
    EXPECT_EQ(response.result_int(), 401);
    EXPECT_EQ(response[http::field::www_authenticate], "Bearer");
    EXPECT_EQ(error_code(response), "unauthorized");
  }
  // The token as a query parameter is only for the WebSocket.
  EXPECT_EQ(client_.get(std::string("/background-agents?token=") + kToken, {}).result_int(), 401);
  EXPECT_EQ(client_.get("/background-agents", {{"Authorization", std::string("bearer ") + kToken}})
                .result_int(),
            200);
}

TEST_F(HttpApiTest, ForeignHostHeaderIsRefusedWhileBoundToLoopback) {
  Headers headers = auth();
  headers.emplace_back("Host", "evil.example:7733");
  const Response refused = client_.get("/background-agents", headers);
  EXPECT_EQ(refused.result_int(), 403);
  EXPECT_EQ(error_code(refused), "host_not_allowed");
  EXPECT_EQ(client_.get("/healthz", {{"Host", "evil.example"}}).result_int(), 403);
  for (const char* allowed : {"localhost:1", "LOCALHOST", "127.0.0.1", "[::1]:7733"}) {
    EXPECT_EQ(client_.get("/healthz", {{"Host", allowed}}).result_int(), 200) << allowed;
  }
}

TEST_F(HttpApiTest, UnknownPathIsJson404AndWrongMethodIs405WithAllow) {
  const Response missing = client_.get("/nope");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(error_code(missing), "not_found");
  EXPECT_EQ(client_.get("/background-agents/").result_int(), 404);

  const Response wrong = client_.send(http::verb::put, "/background-agents");
  EXPECT_EQ(wrong.result_int(), 405);
  EXPECT_EQ(wrong[http::field::allow], "GET");
  EXPECT_EQ(error_code(wrong), "method_not_allowed");
  const Response wrong_start = client_.get("/background-agents/start/x");
  EXPECT_EQ(wrong_start.result_int(), 404);
  const Response get_stop = client_.get("/background-agents/" + generate_uuid() + "/stop");
  EXPECT_EQ(get_stop.result_int(), 405);
  EXPECT_EQ(get_stop[http::field::allow], "POST");
  const Response put_run = client_.send(http::verb::put, "/background-agents/" + generate_uuid());
  EXPECT_EQ(put_run[http::field::allow], "GET, DELETE");
}

// Found by the api fuzzer: a percent-encoded byte that is not UTF-8, quoted
// back in the error message, made the answer invalid JSON.
TEST_F(HttpApiTest, AnErrorQuotingBytesThatAreNotUtf8IsStillJson) {
  for (const char* path : {"/%ba%ff", "/background-agents/%c3%28", "/agents/%e2%82"}) {
    const Response response = client_.get(path);
    EXPECT_EQ(response.result_int(), 404) << path;
    EXPECT_NO_THROW((void)body_json(response)) << path << ": " << response.body();
  }
}

TEST_F(HttpApiTest, StartAnswers201WithLocationAndTheRunObject) {
  const Response response = client_.post(
      "/background-agents/start", start_body("installed:echo", {}, std::string("hello\nworld")));
  ASSERT_EQ(response.result_int(), 201) << response.body();
  const json::object run = body_json(response).as_object();
  const std::string id(run.at("instanceId").as_string());
  EXPECT_TRUE(is_uuid(id));
  EXPECT_EQ(response[http::field::location], "/background-agents/" + id);
  EXPECT_NE(run.at("threadId").as_string(), run.at("instanceId").as_string());
  EXPECT_EQ(run.at("agentId").as_string(), "installed:echo");
  EXPECT_EQ(run.at("agentName").as_string(), "echo");
  EXPECT_EQ(run.at("agentSource").as_string(), "installed");
  EXPECT_EQ(run.at("task").as_string(), "hello\nworld");
  EXPECT_TRUE(run.at("params").is_object());
  for (const char* key : {"status", "createdAt", "startedAt", "endedAt", "durationMs", "progress",
                          "error", "result", "logCount"}) {
    EXPECT_TRUE(run.contains(key)) << key;
  }

  ASSERT_TRUE(wait_for_status(client_, id, "completed"));
  const json::object done = get_run(client_, id);
  EXPECT_EQ(done.at("result").at("task").as_string(), "hello\nworld");
  EXPECT_EQ(done.at("logCount").to_number<int>(), 3);

  const json::object logs =
      body_json(client_.get("/background-agents/" + id + "/logs")).as_object();
  EXPECT_EQ(logs.at("instanceId").as_string(), id);
  const json::array& entries = logs.at("entries").as_array();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].at("seq").to_number<int>(), 1);
  EXPECT_EQ(entries[0].at("level").as_string(), "info");
  EXPECT_EQ(entries[0].at("message").as_string(), "hello");
  EXPECT_TRUE(parse_rfc3339(std::string(entries[0].at("ts").as_string())).has_value());
  EXPECT_EQ(logs.at("nextAfter").to_number<int>(), 3);
  EXPECT_TRUE(logs.at("complete").as_bool());

  const json::object page =
      body_json(client_.get("/background-agents/" + id + "/logs?after=1&limit=1")).as_object();
  ASSERT_EQ(page.at("entries").as_array().size(), 1u);
  EXPECT_EQ(page.at("entries").as_array()[0].at("seq").to_number<int>(), 2);
  EXPECT_EQ(page.at("nextAfter").to_number<int>(), 2);
  EXPECT_FALSE(page.at("complete").as_bool());
}

TEST_F(HttpApiTest, StartedRunIsVisibleInTheListAtOnce) {
  const std::string id = start_run(client_, "installed:sleep", {{"seconds", 30}});
  const json::object list = body_json(client_.get("/background-agents")).as_object();
  ASSERT_EQ(list.at("active").as_array().size(), 1u);
  EXPECT_EQ(list.at("active").as_array()[0].at("instanceId").as_string(), id);
  EXPECT_TRUE(list.at("nextCursor").is_null());
}

TEST_F(HttpApiTest, ARunListedWhileItEndsIsInExactlyOneOfTheLists) {
  // Each echo run ends within a few milliseconds of its start, so some of
  // these lists are read while it ends: it must be in the active runs or in
  // the history, never in neither, never in both.
  for (int round = 0; round < 150; ++round) {
    const std::string id = start_run(client_, "installed:echo");
    const json::object list = body_json(client_.get("/background-agents")).as_object();
    int seen = 0;
    for (const char* key : {"active", "history"}) {
      for (const auto& run : list.at(key).as_array()) {
        if (run.at("instanceId").as_string() == id) ++seen;
      }
    }
    ASSERT_EQ(seen, 1) << "run " << id << " (round " << round << ") in " << json::serialize(list);
  }
}

TEST_F(HttpApiTest, MalformedStartBodiesAre400InvalidRequest) {
  const std::string big_task(64 * 1024 + 1, 'x');
  for (const std::string& body :
       {std::string("{not json"), std::string("[1,2]"), std::string("{}"),
        std::string(R"({"agentId": 5})"),
        std::string(R"({"agentId": "installed:echo", "task": 3})"),
        std::string(R"({"agentId": "installed:echo", "params": [1]})"),
        std::string(R"({"agentId": "echo"})"),
        json::serialize(json::object{{"agentId", "installed:echo"}, {"task", big_task}})}) {
    const Response response = client_.post("/background-agents/start", body);
    EXPECT_EQ(response.result_int(), 400) << body.substr(0, 80);
    EXPECT_EQ(error_code(response), "invalid_request") << body.substr(0, 80);
  }
  const Response empty = client_.send(http::verb::post, "/background-agents/start", "", auth());
  EXPECT_EQ(empty.result_int(), 400);
  // A task of exactly 64 KiB is fine.
  EXPECT_EQ(client_
                .post("/background-agents/start",
                      start_body("installed:echo", {}, std::string(64 * 1024, 'x')))
                .result_int(),
            201);
}

TEST_F(HttpApiTest, ParamsThatDoNotFitTheSchemaAre400InvalidParamsNamingTheParam) {
  const Response unknown =
      client_.post("/background-agents/start", start_body("installed:sleep", {{"colour", "red"}}));
  EXPECT_EQ(unknown.result_int(), 400);
  EXPECT_EQ(error_code(unknown), "invalid_params");
  EXPECT_NE(unknown.body().find("colour"), std::string::npos);
  const Response wrong_type =
      client_.post("/background-agents/start", start_body("installed:sleep", {{"seconds", "ten"}}));
  EXPECT_EQ(wrong_type.result_int(), 400);
  EXPECT_EQ(error_code(wrong_type), "invalid_params");
  EXPECT_NE(wrong_type.body().find("seconds"), std::string::npos);
}

TEST_F(HttpApiTest, UnknownAgentIs404AndUnavailableAgentIs422) {
  const Response unknown = client_.post("/background-agents/start", start_body("installed:nope"));
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(error_code(unknown), "agent_not_found");
  const Response broken = client_.post("/background-agents/start", start_body("installed:broken"));
  EXPECT_EQ(broken.result_int(), 422);
  EXPECT_EQ(error_code(broken), "agent_unavailable");
}

TEST_F(HttpApiTest, NonJsonContentTypeIs415) {
  const Response response = client_.send(http::verb::post, "/background-agents/start",
                                         start_body("installed:echo"), auth(), "text/plain");
  EXPECT_EQ(response.result_int(), 415);
  EXPECT_EQ(error_code(response), "unsupported_media_type");
  EXPECT_EQ(client_
                .send(http::verb::post, "/background-agents/start", start_body("installed:echo"),
                      auth(), "application/json; charset=utf-8")
                .result_int(),
            201);
}

TEST_F(HttpApiTest, BodyOverOneMebibyteIs413BeforeTheBodyIsSent) {
  // Only the header is sent: the answer must come without the body.
  const Response response = raw_exchange(
      host_.port(), std::string("POST /background-agents/start HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
                        "Authorization: Bearer " + kToken +
                        "\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n");
  EXPECT_EQ(response.result_int(), 413);
  EXPECT_EQ(error_code(response), "payload_too_large");
  EXPECT_FALSE(response.keep_alive());
  // A chunked body that grows past the limit is refused too.
  const std::string chunk(600 * 1024, 'x');
  std::ostringstream chunked;
  chunked << "POST /background-agents/start HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
          << kToken << "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 2; ++i) chunked << std::hex << chunk.size() << "\r\n" << chunk << "\r\n";
  EXPECT_EQ(raw_exchange(host_.port(), chunked.str()).result_int(), 413);
}

TEST_F(HttpApiTest, HeadersOver16KiBAre431) {
  const Response response =
      raw_exchange(host_.port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                                     std::string(17 * 1024, 'a') + "\r\n\r\n");
  EXPECT_EQ(response.result_int(), 431);
}

TEST_F(HttpApiTest, UnknownOrMalformedRunIdsAre404RunNotFound) {
  for (const std::string& id : {generate_uuid(), std::string("not-a-uuid")}) {
    const std::string path = "/background-agents/" + id;
    for (const Response& response :
         {client_.get(path), client_.get(path + "/logs"), client_.post(path + "/stop"),
          client_.send(http::verb::delete_, path)}) {
      EXPECT_EQ(response.result_int(), 404) << path;
      EXPECT_EQ(error_code(response), "run_not_found") << path;
    }
  }
}

TEST_F(HttpApiTest, StopAndDeleteFollowTheRunsState) {
  const std::string id = start_run(client_, "installed:sleep", {{"seconds", 30}});
  const Response active_delete = client_.send(http::verb::delete_, "/background-agents/" + id);
  EXPECT_EQ(active_delete.result_int(), 409);
  EXPECT_EQ(error_code(active_delete), "run_active");

  const Response stop = client_.post("/background-agents/" + id + "/stop");
  EXPECT_EQ(stop.result_int(), 202);
  const std::string status(body_json(stop).at("status").as_string());
  EXPECT_TRUE(status == "stopping" || status == "cancelled") << status;
  ASSERT_TRUE(wait_for_status(client_, id, "cancelled"));

  const Response again = client_.post("/background-agents/" + id + "/stop");
  EXPECT_EQ(again.result_int(), 409);
  EXPECT_EQ(error_code(again), "run_not_active");

  const Response removed = client_.send(http::verb::delete_, "/background-agents/" + id);
  EXPECT_EQ(removed.result_int(), 204);
  EXPECT_TRUE(removed.body().empty());
  EXPECT_EQ(client_.get("/background-agents/" + id).result_int(), 404);
}

// A row that cannot be read in full (edited by hand, damaged) is one bad
// entry: the list, the run and its deletion still answer.
TEST_F(HttpApiTest, AStoredRowThatCannotBeReadIsOneBadEntryNotA500) {
  const std::string id = start_run(client_, "installed:echo");
  ASSERT_TRUE(wait_for_status(client_, id, "completed"));
  {
    SQLite::Database db((host_.dir() / "data" / "nightshift.db").string(), SQLite::OPEN_READWRITE);
    db.exec("PRAGMA ignore_check_constraints = ON");  // as a hand edit or damage could
    SQLite::Statement damage(db,
                             "UPDATE runs SET params = 'not json', status = 'exploded' "
                             "WHERE instance_id = ?");
    damage.bind(1, id);
    ASSERT_EQ(damage.exec(), 1);
  }
  const Response list = client_.get("/background-agents");
  ASSERT_EQ(list.result_int(), 200) << list.body();
  const json::value listed = body_json(list);
  const json::array& history = listed.at("history").as_array();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].at("status").as_string(), "failed");
  EXPECT_NE(std::string(history[0].at("error").as_string()).find("could not be read in full"),
            std::string::npos);

  const Response one = client_.get("/background-agents/" + id);
  ASSERT_EQ(one.result_int(), 200) << one.body();
  EXPECT_EQ(body_json(one).at("status").as_string(), "failed");

  EXPECT_EQ(client_.send(http::verb::delete_, "/background-agents/" + id).result_int(), 204);
  EXPECT_EQ(client_.get("/background-agents/" + id).result_int(), 404);
}

TEST_F(HttpApiTest, BadQueryValuesAre400InvalidQuery) {
  for (const char* query :
       {"limit=0", "limit=501", "limit=abc", "limit=", "limit=1&limit=2", "status=running",
        "status=queued", "status=nope", "cursor=garbage", "agentId=bad", "limit=-1"}) {
    const Response response = client_.get(std::string("/background-agents?") + query);
    EXPECT_EQ(response.result_int(), 400) << query;
    EXPECT_EQ(error_code(response), "invalid_query") << query;
  }
  const std::string id = start_run(client_, "installed:echo");
  for (const char* query : {"after=-1", "after=x", "limit=0", "limit=5001", "limit=1.5"}) {
    const Response response = client_.get("/background-agents/" + id + "/logs?" + query);
    EXPECT_EQ(response.result_int(), 400) << query;
    EXPECT_EQ(error_code(response), "invalid_query") << query;
  }
  EXPECT_EQ(client_.get("/background-agents?limit=500&status=failed").result_int(), 200);
  EXPECT_EQ(client_.get("/background-agents/" + id + "/logs?limit=5000&after=0").result_int(), 200);
}

TEST_F(HttpApiTest, HistoryPagesFollowCursorsNewestFirstWithoutRepeats) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(start_run(client_, "installed:echo"));
  ASSERT_TRUE(testing::wait_until([&] {
    return body_json(client_.get("/background-agents")).at("history").as_array().size() == 7;
  }));
  std::vector<std::string> seen;
  std::string target = "/background-agents?limit=3";
  std::size_t pages = 0;
  std::string previous_end = "9999";
  while (true) {
    const json::object page = body_json(client_.get(target)).as_object();
    ++pages;
    for (const json::value& run : page.at("history").as_array()) {
      seen.emplace_back(run.at("instanceId").as_string());
      const std::string ended(run.at("endedAt").as_string());
      EXPECT_LE(ended, previous_end);
      previous_end = ended;
    }
    if (page.at("nextCursor").is_null()) break;
    std::string cursor(page.at("nextCursor").as_string());
    boost::urls::url url("/background-agents");
    url.params().set("limit", "3");
    url.params().set("cursor", cursor);
    target = std::string(url.buffer());
  }
  EXPECT_EQ(pages, 3u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()),
            std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(seen.size(), 7u);

  EXPECT_EQ(
      body_json(client_.get("/background-agents?status=completed")).at("history").as_array().size(),
      7u);
  EXPECT_EQ(
      body_json(client_.get("/background-agents?status=failed")).at("history").as_array().size(),
      0u);
  EXPECT_EQ(body_json(client_.get("/background-agents?agentId=installed:sleep"))
                .at("history")
                .as_array()
                .size(),
            0u);
  EXPECT_EQ(body_json(client_.get("/background-agents?agentId=installed:echo"))
                .at("history")
                .as_array()
                .size(),
            7u);
}

TEST_F(HttpApiTest, DeletedRunLeavesTheCachedHistoryAtOnce) {
  const std::string id = start_run(client_, "installed:echo");
  ASSERT_TRUE(wait_for_status(client_, id, "completed"));
  ASSERT_TRUE(testing::wait_until([&] {
    return body_json(client_.get("/background-agents")).at("history").as_array().size() == 1;
  }));
  ASSERT_EQ(client_.send(http::verb::delete_, "/background-agents/" + id).result_int(), 204);
  EXPECT_EQ(body_json(client_.get("/background-agents")).at("history").as_array().size(), 0u);
}

// The list is answered from memory (on the I/O thread) while the cached
// history page is current and this host holds few runs, else on the pool
// from the store; either way it says the same, and active runs show at once.
TEST_F(HttpApiTest, TheListAnsweredFromMemorySaysWhatTheStoreSays) {
  const std::string done = start_run(client_, "installed:echo");
  ASSERT_TRUE(wait_for_status(client_, done, "completed"));
  ASSERT_TRUE(testing::wait_until([&] {
    return body_json(client_.get("/background-agents")).at("history").as_array().size() == 1;
  }));
  // The first answer filled the cache; these come from it, byte for byte.
  const std::string first = client_.get("/background-agents").body();
  EXPECT_EQ(client_.get("/background-agents").body(), first);
  EXPECT_EQ(client_.get("/background-agents").body(), first);

  // An active run is in the list at once, with the cached history beside it.
  const std::string sleeping = start_run(client_, "installed:sleep", {{"seconds", 30}});
  json::object list = body_json(client_.get("/background-agents")).as_object();
  ASSERT_EQ(list.at("active").as_array().size(), 1u);
  EXPECT_EQ(list.at("active").as_array()[0].at("instanceId").as_string(), sleeping);
  ASSERT_EQ(list.at("history").as_array().size(), 1u);
  EXPECT_EQ(list.at("history").as_array()[0].at("instanceId").as_string(), done);

  // Filters are kept apart in the cache.
  list = body_json(client_.get("/background-agents?agentId=installed:echo")).as_object();
  EXPECT_EQ(list.at("active").as_array().size(), 0u);
  EXPECT_EQ(list.at("history").as_array().size(), 1u);
  list = body_json(client_.get("/background-agents?agentId=installed:sleep")).as_object();
  EXPECT_EQ(list.at("active").as_array().size(), 1u);
  EXPECT_EQ(list.at("history").as_array().size(), 0u);

  // A bad query is refused the same way however often it is asked.
  for (int i = 0; i < 3; ++i) {
    const auto refused = client_.get("/background-agents?limit=0");
    EXPECT_EQ(refused.result_int(), 400);
    EXPECT_EQ(body_json(refused).at("error").at("code").as_string(), "invalid_query");
  }

  // Once it ends, it leaves the active runs and joins the history.
  ASSERT_EQ(client_.send(http::verb::post, "/background-agents/" + sleeping + "/stop").result_int(),
            202);
  ASSERT_TRUE(wait_for_status(client_, sleeping, "cancelled"));
  ASSERT_TRUE(testing::wait_until([&] {
    const json::object now = body_json(client_.get("/background-agents")).as_object();
    return now.at("active").as_array().empty() && now.at("history").as_array().size() == 2;
  }));
}

// Past the runs an I/O thread lists at once, the pool lists them: every one.
TEST(HttpApiManyActive, EveryActiveRunIsListedWhenThereAreMoreThanMemoryAnswers) {
  HostSettings settings = default_settings();
  settings.runs.max_concurrent = 8;  // the rest wait in the queue, active too
  TestHost host(settings);
  HttpClient client(host.port());
  constexpr std::size_t kRuns = 80;
  std::set<std::string> started;
  for (std::size_t i = 0; i < kRuns; ++i) {
    started.insert(start_run(client, "installed:sleep", {{"seconds", 30}}));
  }
  for (int round = 0; round < 2; ++round) {  // the second with the history cached
    const json::object list = body_json(client.get("/background-agents")).as_object();
    std::set<std::string> listed;
    for (const json::value& run : list.at("active").as_array()) {
      listed.insert(std::string(run.at("instanceId").as_string()));
    }
    EXPECT_EQ(listed, started);
  }
}

TEST_F(HttpApiTest, AgentsAreListedAndRescanned) {
  for (const char* path : {"/agents"}) {
    const json::object body = body_json(client_.get(path)).as_object();
    std::set<std::string> ids;
    for (const json::value& agent : body.at("agents").as_array()) {
      ids.emplace(agent.at("id").as_string());
      if (agent.at("id").as_string() == "installed:broken") {
        EXPECT_FALSE(agent.at("available").as_bool());
        EXPECT_TRUE(agent.at("error").is_string());
      }
    }
    EXPECT_TRUE(ids.count("installed:echo") && ids.count("installed:sleep") &&
                ids.count("installed:broken"));
  }
  const Response rescan = client_.post("/agents/rescan");
  ASSERT_EQ(rescan.result_int(), 200);
  EXPECT_GE(body_json(rescan).at("agents").as_array().size(), 3u);
}

TEST_F(HttpApiTest, MetricsAreInPrometheusTextFormat) {
  const std::string id = start_run(client_, "installed:echo");
  ASSERT_TRUE(wait_for_status(client_, id, "completed"));
  const Response response = client_.get("/metrics");
  ASSERT_EQ(response.result_int(), 200);
  EXPECT_NE(response[http::field::content_type].find("text/plain"), beast::string_view::npos);
  for (const char* line :
       {"nightshift_runs{status=\"running\"} ", "nightshift_runs_queued ",
        "nightshift_run_starts_total 1", "nightshift_run_stops_total ",
        "nightshift_http_requests_total{code=\"201\"} 1", "nightshift_websocket_clients 0",
        "nightshift_log_entries_written_total ", "nightshift_log_entries_dropped_total "}) {
    EXPECT_NE(response.body().find(line), std::string::npos) << line;
  }
  EXPECT_EQ(client_.get("/metrics", {}).result_int(), 401);
}

TEST_F(HttpApiTest, PanelIsServedWithoutToken) {
  const Response index = client_.get("/", {});
  ASSERT_EQ(index.result_int(), 200);
  EXPECT_NE(index[http::field::content_type].find("text/html"), beast::string_view::npos);
  EXPECT_NE(index.body().find("<html"), std::string::npos);
  const Response script = client_.get("/assets/app.js", {});
  EXPECT_EQ(script.result_int(), 200);
  EXPECT_NE(script[http::field::content_type].find("javascript"), beast::string_view::npos);
  const Response missing = client_.get("/assets/nope.js", {});
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(error_code(missing), "not_found");
}

TEST_F(HttpApiTest, WebSocketPathWithoutUpgradeIs426) {
  EXPECT_EQ(client_.get("/background-agent-ws").result_int(), 426);
}

TEST(HttpApiCapacity, FullQueueGets503AtCapacityWithRetryAfter) {
  HostSettings settings = default_settings();
  settings.runs.max_concurrent = 1;
  settings.runs.max_queued = 1;
  TestHost host(settings);
  HttpClient client(host.port());
  start_run(client, "installed:sleep", {{"seconds", 30}});
  const std::string queued = start_run(client, "installed:sleep", {{"seconds", 30}});
  EXPECT_EQ(get_run(client, queued).at("status").as_string(), "queued");
  const Response refused =
      client.post("/background-agents/start", start_body("installed:sleep", {{"seconds", 30}}));
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_EQ(error_code(refused), "at_capacity");
  EXPECT_FALSE(refused[http::field::retry_after].empty());
}

TEST(HttpApiConcurrency, TwoHundredClientsStartAndStopRunsWithNothingLost) {
  HostSettings settings = default_settings();
  settings.server.io_threads = 2;
  TestHost host(settings);
  constexpr int kClients = 200;
  std::vector<std::string> ids(kClients);
  std::vector<int> stop_status(kClients, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      HttpClient client(host.port());
      const Response started =
          client.post("/background-agents/start", start_body("installed:sleep", {{"seconds", 30}}));
      if (started.result_int() != 201) return;
      ids[i] = std::string(body_json(started).at("instanceId").as_string());
      stop_status[i] = client.post("/background-agents/" + ids[i] + "/stop").result_int();
    });
  }
  for (auto& thread : clients) thread.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_FALSE(ids[i].empty()) << i;
    EXPECT_EQ(stop_status[i], 202) << i;
  }
  HttpClient client(host.port());
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const json::object list = body_json(client.get("/background-agents?limit=500")).as_object();
        return list.at("active").as_array().empty() &&
               list.at("history").as_array().size() == kClients;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(20)));
  const json::object list =
      body_json(client.get("/background-agents?limit=500&status=cancelled")).as_object();
  std::set<std::string> cancelled;
  for (const json::value& run : list.at("history").as_array()) {
    cancelled.emplace(run.at("instanceId").as_string());
  }
  EXPECT_EQ(cancelled, std::set<std::string>(ids.begin(), ids.end()));
}

}  // namespace
}  // namespace nightshift::api_test
