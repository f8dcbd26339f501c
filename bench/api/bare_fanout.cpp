#include "bare_fanout.hpp"

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/batching_stream.hpp"
#include "bench_support.hpp"

namespace nightshift::bench {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

using Frame = std::shared_ptr<const std::string>;

// One unmasked final text frame (RFC 6455) holding `payload`.
Frame text_frame(const std::string& payload) {
  std::string frame;
  api::append_text_frame_header(frame, payload.size());
  return std::make_shared<const std::string>(frame + payload);
}

// `head` + a padding field + `tail`, `size` bytes in all.
std::string padded(const std::string& head, const std::string& tail, std::size_t size) {
  const std::string open = ",\"pad\":\"";
  const std::size_t fixed = head.size() + open.size() + 1 + tail.size();
  return head + open + std::string(size > fixed ? size - fixed : 0, 'x') + "\"" + tail;
}

class Client;

// The connected clients. [thread-safe]
class Clients {
 public:
  void join(const std::shared_ptr<Client>& client) {
    std::lock_guard lock(mutex_);
    clients_.push_back(client);
  }
  void leave(const Client* client) {
    std::lock_guard lock(mutex_);
    std::erase_if(clients_, [&](const auto& c) { return c.get() == client; });
  }
  std::vector<std::shared_ptr<Client>> all() const {
    std::lock_guard lock(mutex_);
    return clients_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Client>> clients_;
};

// One WebSocket client. After Beast's handshake, Beast is not used again:
// the frames are written to the socket as they are, and the reads only wait
// for the connection to end. Everything but deliver() runs on its strand.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(beast::tcp_stream&& stream, Clients& clients)
      : ws_(std::move(stream)), clients_(clients) {}

  void start(http::request<http::string_body> request, Frame snapshot) {
    request_ = std::move(request);
    ws_.async_accept(request_, [self = shared_from_this(),
                                snapshot = std::move(snapshot)](beast::error_code error) {
      if (error) return;
      self->clients_.join(self);
      self->queue_.push_back(snapshot);
      self->write();
      self->read();
    });
  }

  void deliver(std::shared_ptr<const std::vector<Frame>> frames) {  // [thread-safe]
    net::post(ws_.get_executor(), [self = shared_from_this(), frames = std::move(frames)] {
      self->queue_.insert(self->queue_.end(), frames->begin(), frames->end());
      self->write();
    });
  }

 private:
  tcp::socket& socket() { return beast::get_lowest_layer(ws_).socket(); }

  void write() {
    if (!writing_.empty() || queue_.empty()) return;
    writing_.swap(queue_);
    buffers_.clear();
    for (const Frame& frame : writing_) buffers_.push_back(net::buffer(*frame));
    net::async_write(socket(), buffers_,
                     [self = shared_from_this()](beast::error_code error, std::size_t) {
                       self->writing_.clear();
                       if (!error) self->write();
                     });
  }

  void read() {
    socket().async_read_some(net::buffer(scratch_),
                             [self = shared_from_this()](beast::error_code error, std::size_t) {
                               if (error) return self->clients_.leave(self.get());
                               self->read();
                             });
  }

  websocket::stream<beast::tcp_stream> ws_;
  Clients& clients_;
  http::request<http::string_body> request_;
  std::vector<Frame> queue_;
  std::vector<Frame> writing_;
  std::vector<net::const_buffer> buffers_;
  std::array<char, 512> scratch_{};
};

struct Server {
  const BareFanoutOptions& options;
  Clients clients;
  Frame snapshot;
};

// The run's three events, each a frame of the host's size.
std::vector<Frame> run_events(const BareFanoutOptions& options, const std::string& task) {
  std::vector<Frame> frames;
  for (const char* kind : {"started", "updated", "finished"}) {
    frames.push_back(text_frame(padded(
        std::string(R"({"type":"run","event":")") + kind + R"(","run":{"task":")" + task + '"',
        "}}", options.event_bytes)));
  }
  return frames;
}

// The task of a start request's JSON body, found without parsing it.
std::string task_of(std::string_view body) {
  constexpr std::string_view marker = R"("task":")";
  const auto begin = body.find(marker);
  if (begin == std::string_view::npos) return {};
  const auto end = body.find('"', begin + marker.size());
  if (end == std::string_view::npos) return {};
  return std::string(body.substr(begin + marker.size(), end - begin - marker.size()));
}

// One HTTP connection: start requests answered at once, or an upgrade.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket&& socket, Server& server) : stream_(std::move(socket)), server_(server) {}

  void read() {
    request_ = {};
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code error, std::size_t) {
                       if (!error) self->handle();
                     });
  }

 private:
  void handle() {
    if (websocket::is_upgrade(request_)) {
      auto client = std::make_shared<Client>(std::move(stream_), server_.clients);
      return client->start(std::move(request_), server_.snapshot);
    }
    response_ = {};
    response_.version(request_.version());
    response_.keep_alive(request_.keep_alive());
    response_.set(http::field::content_type, "application/json");
    std::vector<Frame> events;
    if (request_.method() == http::verb::post &&
        request_.target().starts_with("/background-agents/start")) {
      response_.result(http::status::created);
      response_.body() = R"({"instanceId":"bare"})";
      events = run_events(server_.options, task_of(request_.body()));
    } else {
      response_.result(http::status::not_found);
      response_.body() = R"({"error":{"code":"not_found","message":"a bare server"}})";
    }
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code error, std::size_t) {
                        if (!error && self->response_.keep_alive()) self->read();
                      });
    // The run's three events in one delivery to each client, so that they
    // leave in one write: the least a host could do.
    if (!events.empty()) {
      const auto shared = std::make_shared<const std::vector<Frame>>(std::move(events));
      for (const auto& client : server_.clients.all()) client->deliver(shared);
    }
  }

  beast::tcp_stream stream_;
  Server& server_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

void accept_next(tcp::acceptor& acceptor, net::io_context& ioc, Server& server) {
  acceptor.async_accept(net::make_strand(ioc), [&](beast::error_code error, tcp::socket socket) {
    if (!error) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Connection>(std::move(socket), server)->read();
    }
    accept_next(acceptor, ioc, server);
  });
}

}  // namespace

void serve_bare_fanout_until_signal(const BareFanoutOptions& options) {
  const sigset_t signals = block_stop_signals();
  raise_open_file_limit(4096);
  net::io_context ioc(static_cast<int>(options.io_threads));
  Server server{options,
                {},
                text_frame(padded(R"({"type":"snapshot","active":[],"history":[])", "}",
                                  options.snapshot_bytes))};
  tcp::acceptor acceptor(net::make_strand(ioc),
                         tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  accept_next(acceptor, ioc, server);
  std::vector<std::jthread> threads;
  for (std::size_t i = 0; i < options.io_threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  const auto endpoint = acceptor.local_endpoint();
  std::cout << "http://" << endpoint.address().to_string() << ':' << endpoint.port() << " bare"
            << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  ioc.stop();
}

}  // namespace nightshift::bench
