// The API under abuse, against a real host: connections that hold a slot
// without finishing a request, WebSocket clients that never read, and a
// subscription to a run with a huge log. Each test says what must hold; none
// depends on how fast the machine is (deadlines are generous, and only the
// outcome is checked).
#include <sys/resource.h>

#include <array>
#include <fstream>
#include <set>
#include <thread>

#include "api_test_host.hpp"

namespace nightshift::api_test {
namespace {

using Clock = std::chrono::steady_clock;

// Whether the server has closed `socket` (a read gives end of file or an
// error), waiting at most `timeout`.
bool closed_by_server(tcp::socket& socket, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  socket.non_blocking(true);
  std::array<char, 256> scratch{};
  while (Clock::now() < deadline) {
    beast::error_code error;
    socket.read_some(net::buffer(scratch), error);
    if (error && error != net::error::would_block) return true;
    if (error == net::error::would_block)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Connections that take every slot and never finish a request (some send
// nothing, some drip one byte of their request line at a time) lock a
// normal client out only until the request timeout cuts them, however they
// drip: the timeout is for the whole request.
TEST(ApiAbuse, IdleAndSlowDripConnectionsAtTheCapAreCutAtTheRequestTimeout) {
  // Both ends of every connection are in this process: raise the soft limit
  // on open files as far as the hard one allows.
  rlimit files{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  files.rlim_cur = std::min<rlim_t>(files.rlim_max, 8192);
  setrlimit(RLIMIT_NOFILE, &files);
  getrlimit(RLIMIT_NOFILE, &files);
  const std::size_t kConnections =
      std::min<std::size_t>(1000, (static_cast<std::size_t>(files.rlim_cur) - 256) / 2);
  const std::size_t kDrippers = kConnections / 5;
  HostSettings settings = default_settings();
  settings.server.max_connections = kConnections;
  settings.server.request_timeout = std::chrono::milliseconds(1000);
  TestHost host(settings);

  net::io_context ioc;
  std::vector<tcp::socket> abusers;
  abusers.reserve(kConnections);
  for (std::size_t i = 0; i < kConnections; ++i) {
    abusers.emplace_back(ioc);
    abusers.back().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), host.port()));
  }
  // Counted once the server has accepted them all: then a newcomer is over.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const Response refused =
            raw_exchange(host.port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        return refused.result_int() == 503;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(20)));

  // Drip one byte each round; try a normal request each round too.
  const std::string request_line = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  bool served = false;
  std::size_t dripped = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!served && Clock::now() < deadline) {
    for (std::size_t i = 0; i < kDrippers; ++i) {
      beast::error_code ignored;
      const char byte = request_line[std::min(dripped, request_line.size() - 1)];
      abusers[i].write_some(net::buffer(&byte, 1), ignored);
    }
    ++dripped;
    try {
      const Response response =
          raw_exchange(host.port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      served = response.result_int() == 200;
    } catch (const boost::system::system_error&) {
      // Refused or reset while the slots were full: try again next round.
    }
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(served) << "a normal client was locked out for 30 s by " << kConnections
                      << " connections that never finished a request";
  // Every abuser, dripping or silent, was cut (408 or a plain close).
  for (std::size_t i = 0; i < kConnections; ++i) {
    EXPECT_TRUE(closed_by_server(abusers[i], std::chrono::seconds(10)))
        << "connection " << i << (i < kDrippers ? " (dripping)" : " (idle)") << " still open";
  }
}

// WebSocket clients that never read are shed once the queues of all clients
// together pass their bound, while a client that reads gets everything. The
// per-client bound is set far above what the test sends, so only the bound
// of all clients together can close them.
TEST(ApiAbuse, WebSocketClientsThatNeverReadAreShedAtTheBoundOfAllClientsTogether) {
  constexpr int kSlowClients = 8;
  HostSettings settings = default_settings();
  settings.server.ws_send_queue_bytes = 256u << 20;
  // Each client's share of the bound (8 MiB / 9 clients) holds about 15 of
  // the 60 KiB messages below, so the reading client, which may hold a burst
  // of a few while its writes complete, is never over its share.
  settings.server.ws_total_send_queue_bytes = 8u << 20;
  TestHost host(settings);
  HttpClient client(host.port());

  std::vector<std::unique_ptr<WsClient>> slow;
  for (int i = 0; i < kSlowClients; ++i) {
    slow.push_back(std::make_unique<WsClient>(
        host.port(), std::string("/background-agent-ws?token=") + kToken, 4096));
  }
  WsClient fast(host.port());
  ASSERT_TRUE(fast.read());

  const std::string task(60 * 1024, 't');
  std::set<std::string> finished;
  std::vector<std::string> ids;
  std::int64_t most_queued = 0;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(start_run(client, "installed:echo", {}, task));
    while (finished.count(ids.back()) == 0) {
      const auto message = fast.read(std::chrono::seconds(20));
      ASSERT_TRUE(message) << "the reading client stopped receiving after " << i << " runs";
      if (message->at("type").as_string() == "run" &&
          message->at("event").as_string() == "finished") {
        finished.emplace(message->at("run").at("instanceId").as_string());
      }
    }
    most_queued = std::max(most_queued, host.server().metrics().websocket_queued_bytes());
  }
  EXPECT_EQ(finished, std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_TRUE(fast.seq_without_gaps());
  EXPECT_EQ(host.server().metrics().websocket_slow_client_closes(),
            static_cast<std::uint64_t>(kSlowClients));
  // Over the bound by at most one message per client.
  EXPECT_LE(most_queued, (8 << 20) + (kSlowClients + 1) * (64 << 10));

  for (auto& client_that_did_not_read : slow) {
    while (client_that_did_not_read->read()) {
    }
    EXPECT_TRUE(client_that_did_not_read->closed());
    EXPECT_EQ(client_that_did_not_read->close_code(), websocket::close_code::try_again_later);
    EXPECT_TRUE(client_that_did_not_read->seq_without_gaps());
  }
  slow.clear();
  // Nothing stays queued for clients that are gone.
  EXPECT_TRUE(testing::wait_until(
      [&] { return host.server().metrics().websocket_queued_bytes() <= (64 << 10); },
      std::chrono::seconds(10)));
}

// A subscription to a run whose log is larger than a client's queue bound is
// paced by the client's reading (read from the store a page at a time), not
// queued whole: a client that reads nothing for a while is not closed, and
// then receives every entry in order.
TEST(ApiAbuse, ASubscriptionToAHugeLogIsPacedNotBufferedWhole) {
  constexpr int kEntries = 50'000;
  HostSettings settings = default_settings();
  settings.server.ws_send_queue_bytes = 4u << 20;  // the log is about 12 MB as messages
  TestHost host(settings);
  HttpClient client(host.port());
  const std::string id =
      start_run(client, "installed:runs-flood", {{"count", kEntries}, {"size", 200}});
  ASSERT_TRUE(wait_for_status(client, id, "completed", std::chrono::seconds(60)));

  WsClient reader(host.port(), std::string("/background-agent-ws?token=") + kToken, 4096);
  ASSERT_TRUE(reader.read());  // the snapshot
  reader.send(R"({"type":"subscribe","instanceId":")" + id + R"("})");
  // Not reading: the host fills what the socket takes and a page or two.
  std::int64_t most_queued = 0;
  const auto idle_until = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < idle_until) {
    most_queued = std::max(most_queued, host.server().metrics().websocket_queued_bytes());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(most_queued, 4 << 20);
  EXPECT_EQ(host.server().metrics().websocket_slow_client_closes(), 0u);

  std::uint64_t next = 1;
  while (next <= static_cast<std::uint64_t>(kEntries)) {
    const auto message = reader.read(std::chrono::seconds(20));
    ASSERT_TRUE(message) << "the log stopped at entry " << next;
    if (message->at("type").as_string() != "logs") continue;
    for (const json::value& entry : message->at("entries").as_array()) {
      ASSERT_EQ(entry.at("seq").to_number<std::uint64_t>(), next);
      ++next;
    }
  }
  EXPECT_TRUE(reader.seq_without_gaps());
  EXPECT_FALSE(reader.closed());
}

}  // namespace
}  // namespace nightshift::api_test

namespace nightshift::api_test {
namespace {

std::size_t resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

// A measurement, run by hand (--gtest_also_run_disabled_tests): the host's
// resident memory (this process holds it) before, while 500 clients that
// never read are subscribed to a run with a 100,000-entry log, and after they
// have gone.
TEST(ApiAbuseMeasurement, DISABLED_MemoryUnderClientsThatNeverReadAHugeLog) {
  constexpr int kClients = 500;
  TestHost host;
  HttpClient client(host.port());
  const std::string id =
      start_run(client, "installed:runs-flood", {{"count", 100'000}, {"size", 100}});
  ASSERT_TRUE(wait_for_status(client, id, "completed", std::chrono::seconds(120)));
  const std::size_t before = resident_kib();
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsClient>(
        host.port(), std::string("/background-agent-ws?token=") + kToken, 4096));
    clients.back()->send(R"({"type":"subscribe","instanceId":")" + id + R"("})");
  }
  std::this_thread::sleep_for(std::chrono::seconds(5));
  const std::size_t during = resident_kib();
  const auto queued = host.server().metrics().websocket_queued_bytes();
  clients.clear();
  ASSERT_TRUE(testing::wait_until([&] { return host.server().metrics().websocket_clients() == 0; },
                                  std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::size_t after = resident_kib();
  std::printf(
      "%d clients that never read, subscribed to a 100,000-entry log: resident %zu MiB "
      "before, %zu MiB while subscribed (%lld KiB queued), %zu MiB after they left\n",
      kClients, before / 1024, during / 1024, static_cast<long long>(queued / 1024), after / 1024);
}

}  // namespace
}  // namespace nightshift::api_test
