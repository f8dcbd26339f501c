// Load program for the API (run by hand, see README.md; never a test). Runs a
// real host in-process on 127.0.0.1 with 50 finished runs in its history and:
//   serve          prints "PORT TOKEN" and serves until stdin closes (for wrk)
//   start-latency  POST /background-agents/start paced at --rate per second
//                  for --seconds; prints p50/p99/max latency
//   ws-fanout      --clients WebSocket clients; starts --runs runs and prints
//                  p50/p99/max delay from the start request to each client's
//                  `started` event
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/server.hpp"
#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "loader/plugin_loader.hpp"
#include "runs/run_manager.hpp"
#include "store/run_store.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
namespace ns = nightshift;

namespace {

constexpr const char* kToken = "bench-token";

struct Host {
  explicit Host(const std::filesystem::path& dir)
      : loader(dir / "copies"),
        catalog(ns::CatalogOptions{{NIGHTSHIFT_BENCH_AGENTS_DIR}, dir / "ws", dir / "remix"},
                loader),
        store(ns::StoreOptions{dir / "bench.db"}),
        runs(catalog, store, bus, options(dir)),
        server(server_options(), runs, catalog, bus) {
    server.start();
  }
  static ns::RunManagerOptions options(const std::filesystem::path& dir) {
    ns::RunManagerOptions o;
    o.workspace = dir;
    o.max_concurrent = 256;
    return o;
  }
  static ns::api::ServerOptions server_options() {
    ns::api::ServerOptions o;
    o.port = 0;
    o.token = kToken;
    o.max_connections = 5000;
    return o;
  }
  ns::PluginLoader loader;
  ns::Catalog catalog;
  ns::RunStore store;
  ns::EventBus bus;
  ns::RunManager runs;
  ns::api::Server server;
};

void seed_history(Host& host) {
  for (int i = 0; i < 50; ++i) {
    const auto run = host.runs.start({"installed:echo", "seed " + std::to_string(i), {}});
    host.runs.wait(run.instance_id, std::chrono::seconds(10));
  }
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(p * values.size()))];
}

void print_latencies(const std::string& what, const std::vector<double>& ms) {
  std::cout << what << ": n=" << ms.size() << " p50=" << percentile(ms, 0.5)
            << " ms p99=" << percentile(ms, 0.99) << " ms max=" << percentile(ms, 1.0) << " ms\n";
}

http::request<http::string_body> start_request(std::uint16_t port,
                                               const std::string& task = "bench") {
  http::request<http::string_body> request{http::verb::post, "/background-agents/start", 11};
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  request.set(http::field::authorization, std::string("Bearer ") + kToken);
  request.set(http::field::content_type, "application/json");
  request.body() = json::serialize(json::object{{"agentId", "installed:echo"}, {"task", task}});
  request.prepare_payload();
  return request;
}

void start_latency(Host& host, int rate, int seconds) {
  net::io_context ioc;
  tcp::socket socket(ioc);
  const auto port = host.server.local_endpoint().port();
  socket.connect(host.server.local_endpoint());
  socket.set_option(tcp::no_delay(true));
  const auto request = start_request(port);
  beast::flat_buffer buffer;
  std::vector<double> latencies;
  const auto interval = std::chrono::nanoseconds(1'000'000'000 / rate);
  auto next = Clock::now();
  for (int i = 0; i < rate * seconds; ++i) {
    std::this_thread::sleep_until(next);
    next += interval;
    const auto sent = Clock::now();
    http::write(socket, request);
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    if (response.result_int() != 201) {
      std::cerr << "start failed: " << response.result_int() << ' ' << response.body() << '\n';
      return;
    }
  }
  print_latencies("POST /background-agents/start at " + std::to_string(rate) + "/s", latencies);
}

void ws_fanout(Host& host, int clients, int runs) {
  net::io_context ioc;
  const auto endpoint = host.server.local_endpoint();
  std::mutex mutex;
  std::map<std::string, Clock::time_point> sent_at;  // task text -> when its start was sent
  std::vector<double> delays;
  int received = 0;
  struct Client {
    explicit Client(net::io_context& ioc) : ws(ioc) {}
    websocket::stream<tcp::socket> ws;
    beast::flat_buffer buffer;
  };
  std::vector<std::unique_ptr<Client>> sockets;
  for (int i = 0; i < clients; ++i) {
    auto client = std::make_unique<Client>(ioc);
    client->ws.next_layer().connect(endpoint);
    client->ws.handshake("127.0.0.1", std::string("/background-agent-ws?token=") + kToken);
    sockets.push_back(std::move(client));
  }
  std::function<void(Client*)> read = [&](Client* client) {
    client->ws.async_read(client->buffer, [&, client](beast::error_code error, std::size_t) {
      if (error) return;
      const auto now = Clock::now();
      // One thread reads for every client, so it must not become the
      // bottleneck it is measuring: only `started` events are looked at,
      // and only for their task (the server writes compact JSON).
      const std::string message = beast::buffers_to_string(client->buffer.data());
      client->buffer.consume(client->buffer.size());
      const auto task_at = message.find("\"task\":\"");
      if (message.find("\"event\":\"started\"") != std::string::npos &&
          task_at != std::string::npos) {
        const auto begin = task_at + 8;
        const std::string id = message.substr(begin, message.find('"', begin) - begin);
        std::lock_guard lock(mutex);
        if (auto it = sent_at.find(id); it != sent_at.end()) {
          delays.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
        }
        ++received;
      }
      read(client);
    });
  };
  for (auto& client : sockets) read(client.get());
  std::thread io([&] { ioc.run(); });

  net::io_context http_ioc;
  tcp::socket socket(http_ioc);
  socket.connect(endpoint);
  beast::flat_buffer buffer;
  for (int i = 0; i < runs; ++i) {
    const std::string task = "fanout " + std::to_string(i);
    const auto request = start_request(endpoint.port(), task);
    {
      std::lock_guard lock(mutex);
      sent_at[task] = Clock::now();
    }
    http::write(socket, request);
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    {
      std::lock_guard lock(mutex);
      if (received >= clients * runs) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ioc.stop();
  io.join();
  std::lock_guard lock(mutex);
  std::cout << "WebSocket clients: " << clients << ", started events received " << received
            << " of " << clients * runs << '\n';
  print_latencies("start request -> `started` on every client", delays);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "serve";
  const auto arg = [&](const std::string& name, int fallback) {
    for (int i = 2; i + 1 < argc; ++i) {
      if (argv[i] == name) return std::stoi(argv[i + 1]);
    }
    return fallback;
  };
  const auto dir = std::filesystem::temp_directory_path() /
                   ("nightshift-bench-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  int status = 0;
  try {
    Host host(dir);
    seed_history(host);
    if (mode == "serve") {
      std::cout << host.server.local_endpoint().port() << ' ' << kToken << std::endl;
      std::string line;
      while (std::getline(std::cin, line)) {
      }
    } else if (mode == "start-latency") {
      start_latency(host, arg("--rate", 1000), arg("--seconds", 5));
    } else if (mode == "ws-fanout") {
      ws_fanout(host, arg("--clients", 1000), arg("--runs", 50));
    } else {
      std::cerr << "usage: api_load serve | start-latency [--rate N --seconds S] | ws-fanout "
                   "[--clients N --runs R]\n";
      status = 2;
    }
    host.server.stop_accepting();
    host.runs.shutdown(std::chrono::seconds(2));
    host.server.stop();
  } catch (const std::exception& error) {
    std::cerr << "api_load: " << error.what() << '\n';
    status = 1;
  }
  std::filesystem::remove_all(dir);
  return status;
}
