// The WebSocket protocol of api.md against a real host: snapshot first, run
// events, log subscriptions (backlog then live, in order, none skipped or
// repeated), ping, bad messages, size limit, and slow clients.
#include <set>
#include <thread>

#include "api_test_host.hpp"

namespace nightshift::api_test {
namespace {

class WebSocketApiTest : public ::testing::Test {
 protected:
  TestHost host_;
  HttpClient client_{host_.port()};
};

TEST_F(WebSocketApiTest, ConnectionWithoutValidTokenIsRefusedBeforeUpgrade) {
  for (const std::string& target :
       {std::string("/background-agent-ws"), std::string("/background-agent-ws?token=wrong")}) {
    try {
      WsClient client(host_.port(), target);
      ADD_FAILURE() << "the handshake succeeded for " << target;
    } catch (const boost::system::system_error& error) {
      EXPECT_EQ(error.code(), websocket::error::upgrade_declined) << target;
    }
  }
  const Response response =
      raw_exchange(host_.port(),
                   "GET /background-agent-ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_EQ(response.result_int(), 401);
  EXPECT_EQ(response[http::field::www_authenticate], "Bearer");
}

TEST_F(WebSocketApiTest, SnapshotComesFirstThenRunEventsWithGaplessSeq) {
  const std::string before = start_run(client_, "installed:echo");
  ASSERT_TRUE(wait_for_status(client_, before, "completed"));
  const std::string running = start_run(client_, "installed:sleep", {{"seconds", 30}});

  WsClient ws(host_.port());
  const auto snapshot = ws.read();
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->at("type").as_string(), "snapshot");
  EXPECT_EQ(snapshot->at("seq").to_number<int>(), 1);
  ASSERT_EQ(snapshot->at("active").as_array().size(), 1u);
  EXPECT_EQ(snapshot->at("active").as_array()[0].at("instanceId").as_string(), running);
  ASSERT_GE(snapshot->at("history").as_array().size(), 1u);
  EXPECT_EQ(snapshot->at("history").as_array()[0].at("instanceId").as_string(), before);

  const std::string id = start_run(client_, "installed:echo");
  ASSERT_TRUE(ws.read_until([&](const json::object& m) { return is_run_event(m, "started", id); }));
  const auto finished =
      ws.read_until([&](const json::object& m) { return is_run_event(m, "finished", id); });
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->at("run").at("status").as_string(), "completed");

  ASSERT_EQ(client_.send(http::verb::delete_, "/background-agents/" + id).result_int(), 204);
  ASSERT_TRUE(ws.read_until([&](const json::object& m) { return is_run_event(m, "deleted", id); }));
  EXPECT_TRUE(ws.seq_without_gaps());
}

TEST_F(WebSocketApiTest, HeaderTokenIsAcceptedToo) {
  // Beast's client cannot add headers through handshake(); use a decorator.
  net::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), host_.port()));
  ws.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
    request.set(http::field::authorization, std::string("Bearer ") + kToken);
  }));
  ws.handshake("localhost", "/background-agent-ws");
  beast::flat_buffer buffer;
  ws.read(buffer);
  EXPECT_EQ(json::parse(beast::buffers_to_string(buffer.data())).at("type").as_string(),
            "snapshot");
}

TEST_F(WebSocketApiTest, PingGetsPongAndBadMessagesGetErrorsWithoutClosing) {
  WsClient ws(host_.port());
  ASSERT_TRUE(ws.read());
  ws.send(R"({"type": "ping"})");
  auto pong = ws.read();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->at("type").as_string(), "pong");

  for (const std::string& bad :
       {std::string("not json"), std::string("[1]"), std::string(R"({"type": "dance"})"),
        std::string(R"({"type": "subscribe"})"),
        std::string(R"({"type": "subscribe", "instanceId": "x", "after": -1})")}) {
    ws.send(bad);
    auto error = ws.read();
    ASSERT_TRUE(error) << bad;
    EXPECT_EQ(error->at("type").as_string(), "error") << bad;
    EXPECT_EQ(error->at("code").as_string(), "bad_message") << bad;
    EXPECT_TRUE(error->at("message").is_string());
  }
  ws.send_binary("\x01\x02");
  auto binary_error = ws.read();
  ASSERT_TRUE(binary_error);
  EXPECT_EQ(binary_error->at("code").as_string(), "bad_message");

  ws.send(json::serialize(json::object{{"type", "subscribe"}, {"instanceId", generate_uuid()}}));
  auto unknown = ws.read();
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->at("code").as_string(), "run_not_found");

  ws.send(R"({"type": "ping"})");
  auto still_open = ws.read();
  ASSERT_TRUE(still_open);
  EXPECT_EQ(still_open->at("type").as_string(), "pong");
  EXPECT_TRUE(ws.seq_without_gaps());
}

// Collects a subscription's log entries until `count` have come; checks they
// are seq after+1, after+2, ... with none skipped or repeated.
void expect_log_sequence(WsClient& ws, const std::string& id, std::uint64_t after,
                         std::uint64_t last) {
  std::uint64_t expected = after + 1;
  while (expected <= last) {
    auto message = ws.read_until([&](const json::object& m) {
      return m.at("type").as_string() == "logs" && m.at("instanceId").as_string() == id;
    });
    ASSERT_TRUE(message) << "waiting for seq " << expected;
    for (const json::value& entry : message->at("entries").as_array()) {
      ASSERT_EQ(entry.at("seq").to_number<std::uint64_t>(), expected);
      ++expected;
    }
  }
}

TEST_F(WebSocketApiTest, SubscribeRightAfterStartGetsEveryLogEntryOnceInOrder) {
  WsClient ws(host_.port());
  ASSERT_TRUE(ws.read());
  std::string task;
  constexpr int kLines = 3000;
  for (int i = 1; i <= kLines; ++i) task += "line " + std::to_string(i) + "\n";
  // The subscription races the agent: part of the log comes as backlog,
  // part live, and the two must join without a gap or a repeat.
  const std::string id = start_run(client_, "installed:echo", {}, task);
  ws.send(json::serialize(json::object{{"type", "subscribe"}, {"instanceId", id}, {"after", 0}}));
  expect_log_sequence(ws, id, 0, kLines + 1);
  EXPECT_TRUE(ws.seq_without_gaps());
}

TEST_F(WebSocketApiTest, SubscribeSendsBacklogAfterTheGivenSeqThenLiveEntries) {
  const std::string id = start_run(client_, "installed:sleep", {{"seconds", 2}});
  ASSERT_TRUE(testing::wait_until(
      [&] { return get_run(client_, id).at("logCount").to_number<int>() >= 1; }));
  WsClient ws(host_.port());
  ASSERT_TRUE(ws.read());
  ws.send(json::serialize(json::object{{"type", "subscribe"}, {"instanceId", id}, {"after", 0}}));
  expect_log_sequence(ws, id, 0, 2);  // tick 1 from the backlog, tick 2 live

  WsClient later(host_.port());
  ASSERT_TRUE(later.read());
  ASSERT_TRUE(wait_for_status(client_, id, "completed"));
  later.send(
      json::serialize(json::object{{"type", "subscribe"}, {"instanceId", id}, {"after", 1}}));
  expect_log_sequence(later, id, 1, 2);
}

TEST_F(WebSocketApiTest, ClientMessageOver64KiBClosesWith1009) {
  WsClient ws(host_.port());
  ASSERT_TRUE(ws.read());
  ws.send(R"({"type": "ping", "pad": ")" + std::string(70 * 1024, 'x') + "\"}");
  while (ws.read()) {
  }
  EXPECT_TRUE(ws.closed());
  EXPECT_EQ(ws.close_code(), websocket::close_code::too_big);
}

TEST(WebSocketSlowClient, ClientThatDoesNotReadIsClosedWith1013WhileOthersReceiveEverything) {
  HostSettings settings = default_settings();
  settings.server.ws_send_queue_bytes = 4u << 20;
  TestHost host(settings);
  HttpClient client(host.port());

  WsClient slow(host.port(), std::string("/background-agent-ws?token=") + kToken, 4096);
  WsClient fast(host.port());
  ASSERT_TRUE(fast.read());

  // Large run events (a 60 KiB task each) fill the slow client's socket
  // buffers and then its queue. The next run starts only once the fast
  // client has read the previous one's `finished`, so the fast client is
  // never behind by more than one run, however loaded the machine is.
  const std::string task(60 * 1024, 't');
  std::set<std::string> finished;
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(start_run(client, "installed:echo", {}, task));
    while (finished.count(ids.back()) == 0) {
      const auto message = fast.read(std::chrono::seconds(20));
      ASSERT_TRUE(message) << "the fast client stopped receiving after " << i << " runs";
      if (message->at("type").as_string() == "run" &&
          message->at("event").as_string() == "finished") {
        finished.emplace(message->at("run").at("instanceId").as_string());
      }
    }
  }
  EXPECT_EQ(finished, std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_TRUE(fast.seq_without_gaps());
  EXPECT_EQ(host.server().metrics().websocket_slow_client_closes(), 1u);

  // The slow client now reads what was buffered, then the close frame.
  while (slow.read()) {
  }
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(slow.close_code(), websocket::close_code::try_again_later);
  EXPECT_TRUE(slow.seq_without_gaps());
}

}  // namespace
}  // namespace nightshift::api_test
