// A real host for the API tests: a Host (catalog over the built-in agents,
// SQLite store, event bus, run manager) and the Beast server over it on
// 127.0.0.1 with an ephemeral port, plus small synchronous HTTP and
// WebSocket clients built on Beast.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/server.hpp"
#include "host.hpp"
#include "test_support.hpp"

namespace nightshift::api_test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;

inline constexpr const char* kToken = "test-token-0123456789abcdef";

struct HostSettings {
  RunManagerOptions runs;
  api::ServerOptions server;
};

inline HostSettings default_settings() {
  HostSettings settings;
  settings.server.listen_host = "127.0.0.1";
  settings.server.port = 0;
  settings.server.token = kToken;
  settings.runs.stop_grace = std::chrono::milliseconds(2000);
  return settings;
}

// Writes an installed agent whose library is not a library, so the catalog
// lists it as unavailable.
inline std::filesystem::path write_broken_agent(const std::filesystem::path& dir) {
  testing::write_file(dir / "broken" / "agent.json",
                      R"({"name": "broken", "version": "1.0.0", "description": "cannot load",
                          "library": "libbroken.so", "params": {}})");
  testing::write_file(dir / "broken" / "libbroken.so", "this is not an ELF file");
  return dir;
}

class TestHost {
 public:
  explicit TestHost(HostSettings settings = default_settings())
      : host_(host_options(std::move(settings.runs))), server_(settings.server, host_) {
    server_.start();
  }
  ~TestHost() {
    server_.stop_accepting();
    host_.shutdown(std::chrono::milliseconds(2000));
    server_.stop();
  }

  std::uint16_t port() const { return server_.local_endpoint().port(); }
  RunManager& runs() { return host_.runs(); }
  api::Server& server() { return server_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  HostOptions host_options(RunManagerOptions runs) {
    HostOptions options;
    options.data_dir = dir_ / "data";
    options.workspace = dir_ / "workspace";
    std::filesystem::create_directories(options.workspace);
    options.installed_agent_dirs = {NIGHTSHIFT_TEST_AGENTS_DIR,
                                    write_broken_agent(dir_ / "more-agents")};
    options.user_remix_dir = dir_ / "user-remix";
    options.runs = std::move(runs);
    return options;
  }

  testing::TempDir dir_;
  Host host_;
  api::Server server_;
};

using Response = http::response<http::string_body>;
using Headers = std::vector<std::pair<std::string, std::string>>;

inline Headers auth() {
  return {{"Authorization", std::string("Bearer ") + kToken}};
}

// One keep-alive HTTP/1.1 connection.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port) : port_(port), stream_(ioc_) {
    stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  Response send(http::verb method, const std::string& target, const std::string& body = "",
                const Headers& headers = auth(),
                const std::string& content_type = "application/json") {
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty()) {
      if (!content_type.empty()) request.set(http::field::content_type, content_type);
      request.body() = body;
    }
    request.prepare_payload();
    http::write(stream_.socket(), request);
    Response response;
    http::read(stream_.socket(), buffer_, response);
    return response;
  }

  Response get(const std::string& target, const Headers& headers = auth()) {
    return send(http::verb::get, target, "", headers);
  }
  Response post(const std::string& target, const std::string& body = "") {
    return send(http::verb::post, target, body);
  }

 private:
  std::uint16_t port_;
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

inline json::value body_json(const Response& response) {
  return json::parse(response.body());
}

inline std::string error_code(const Response& response) {
  const json::value body = body_json(response);
  return std::string(body.at("error").at("code").as_string());
}

inline std::string start_body(const std::string& agent, const json::object& params = {},
                              const std::optional<std::string>& task = std::nullopt) {
  json::object body{{"agentId", agent}, {"params", params}};
  if (task) body["task"] = *task;
  return json::serialize(body);
}

// Starts a run through the API and returns its instance id.
inline std::string start_run(HttpClient& client, const std::string& agent,
                             const json::object& params = {},
                             const std::optional<std::string>& task = std::nullopt) {
  const Response response =
      client.post("/background-agents/start", start_body(agent, params, task));
  EXPECT_EQ(response.result_int(), 201) << response.body();
  return std::string(body_json(response).at("instanceId").as_string());
}

inline json::object get_run(HttpClient& client, const std::string& id) {
  return body_json(client.get("/background-agents/" + id)).as_object();
}

inline bool wait_for_status(HttpClient& client, const std::string& id, const std::string& status,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return testing::wait_until([&] { return get_run(client, id).at("status").as_string() == status; },
                             timeout, std::chrono::milliseconds(5));
}

// Sends raw bytes and reads one response (for requests a well-behaved client
// would not make).
inline Response raw_exchange(std::uint16_t port, const std::string& bytes) {
  net::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  net::write(socket, net::buffer(bytes));
  beast::flat_buffer buffer;
  Response response;
  http::read(socket, buffer, response);
  return response;
}

// A WebSocket client that checks every message's seq grows by exactly one.
class WsClient {
 public:
  explicit WsClient(std::uint16_t port,
                    const std::string& target = std::string("/background-agent-ws?token=") + kToken,
                    std::optional<int> receive_buffer = std::nullopt)
      : ws_(ioc_) {
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.open(tcp::v4());
    if (receive_buffer) socket.set_option(net::socket_base::receive_buffer_size(*receive_buffer));
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    ws_.read_message_max(0);
    ws_.handshake("127.0.0.1:" + std::to_string(port), target);
  }

  // The next message, or nullopt when none came within `timeout` or the
  // connection closed (then closed() and close_code() say so).
  std::optional<json::object> read(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::optional<json::object> message;
    bool done = false;
    beast::flat_buffer buffer;
    ws_.async_read(buffer, [&](beast::error_code error, std::size_t) {
      done = true;
      if (error) {
        closed_ = true;
        return;
      }
      message = json::parse(beast::buffers_to_string(buffer.data())).as_object();
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!done) {
      beast::get_lowest_layer(ws_).cancel();
      ioc_.restart();
      ioc_.run();
      return std::nullopt;
    }
    if (message) {
      const auto seq = message->at("seq").to_number<std::uint64_t>();
      if (seq != last_seq_ + 1) seq_gaps_ = true;
      last_seq_ = seq;
    }
    return message;
  }

  // Reads until `accept` returns true for a message; returns it.
  std::optional<json::object> read_until(
      const std::function<bool(const json::object&)>& accept,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto message = read(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!message) return std::nullopt;
      if (accept(*message)) return message;
    }
    return std::nullopt;
  }

  void send(const std::string& text) { ws_.write(net::buffer(text)); }
  void send_binary(const std::string& bytes) {
    ws_.binary(true);
    ws_.write(net::buffer(bytes));
    ws_.text(true);
  }

  bool closed() const { return closed_; }
  websocket::close_code close_code() const {
    return static_cast<websocket::close_code>(ws_.reason().code);
  }
  bool seq_without_gaps() const { return !seq_gaps_; }
  std::uint64_t last_seq() const { return last_seq_; }

 private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  std::uint64_t last_seq_ = 0;
  bool seq_gaps_ = false;
  bool closed_ = false;
};

inline bool is_run_event(const json::object& message, const std::string& event,
                         const std::string& id) {
  return message.at("type").as_string() == "run" && message.at("event").as_string() == event &&
         message.at("run").at("instanceId").as_string() == id;
}

}  // namespace nightshift::api_test
