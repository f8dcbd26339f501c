#include "api/server.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "api/connection_count.hpp"
#include "api/history_cache.hpp"
#include "api/http_api.hpp"
#include "api/io_types.hpp"
#include "api/websocket_hub.hpp"
#include "api/websocket_session.hpp"
#include "api/wire.hpp"

namespace nightshift::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// After a response that ends the connection, how long and how much of what
// the client still sends is read and thrown away, so that closing does not
// reset the connection before the client has read the response.
constexpr std::chrono::seconds kDrainTime{2};
constexpr std::size_t kDrainBytes = 8u << 20;

class HttpSession;

net::ip::address parse_listen_address(const std::string& host) {
  if (host == "localhost") return net::ip::make_address("127.0.0.1");
  boost::system::error_code error;
  auto address = net::ip::make_address(host, error);
  if (error) throw std::invalid_argument("'" + host + "' is not an IP address to listen on");
  return address;
}

}  // namespace

// Everything the sessions share. Member order matters for destruction: the
// worker pool, then the io_context, go before the tables their pending
// handlers' sessions touch.
struct ServerCore {
  ServerCore(ServerOptions server_options, RunManager& run_manager, Catalog& catalog,
             Automation& automation, EventBus& event_bus)
      : options(std::move(server_options)),
        runs(run_manager),
        bus(event_bus),
        address(parse_listen_address(options.listen_host)),
        api(options, address.is_loopback(), run_manager, catalog, automation, history, metrics,
            pool) {
    // Webhook payloads carry the Run object as this API shapes it.
    automation.webhooks().set_run_json([](const Run& run) { return wire::run(run, now_ms()); });
  }

  const ServerOptions options;
  RunManager& runs;
  EventBus& bus;
  const net::ip::address address;
  HistoryCache history;
  Metrics metrics;
  ConnectionCount connections;  // HTTP and WebSocket sessions
  HttpApi api;
  WebSocketHub hub;

  std::mutex sessions_mutex;  // guards http_sessions
  std::unordered_map<const HttpSession*, std::weak_ptr<HttpSession>> http_sessions;

  // One io_context that all the I/O threads run. A pool of io_contexts, one
  // per thread, used a little less CPU per GET but made the WebSocket
  // fan-out's p99 worse: a burst of events for 1,000 clients waited on one
  // thread while the other had nothing to do.
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  // On its own strand, as in Beast's advanced_server: accepting and closing
  // never run at once.
  tcp::acceptor acceptor{net::make_strand(ioc)};
  tcp::endpoint endpoint;  // set by start(), read-only after
  net::thread_pool pool{std::max<std::size_t>(1, options.worker_threads)};
  std::vector<std::thread> threads;  // owned by the thread that owns the Server
  bool stopped = false;
  EventBus::Subscription subscription;  // last: released first

  void on_bus_event(const EventPtr& event) noexcept;
  void accept_next();
  void on_accept(boost::system::error_code error, StrandSocket socket);
  void close_http_sessions();
};

namespace {

// One HTTP connection (keep-alive): read a request header, check the limits,
// read the body, answer, repeat; or hand the socket to a WebSocket session.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(StrandSocket&& socket, ServerCore& server)
      : stream_(std::move(socket)), server_(server), connection_(server.connections) {}

  ~HttpSession() {
    std::lock_guard lock(server_.sessions_mutex);
    server_.http_sessions.erase(this);
  }

  void run() {
    {
      std::lock_guard lock(server_.sessions_mutex);
      server_.http_sessions[this] = weak_from_this();
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }

  // Answers 503 at once: the server has as many connections as it allows.
  void refuse_overloaded() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->respond_and_close(http::status::service_unavailable, "too_many_connections",
                              "the server has as many connections as it allows; retry later");
    });
  }

  // [thread-safe] Ends the connection (server shutdown).
  void shut_down() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->stream_.close();
    });
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    // One deadline for the whole request, header and body.
    stream_.expires_after(server_.options.request_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
  }

  void on_header(beast::error_code error, std::size_t) {
    if (error == http::error::header_limit) {
      return respond_and_close(http::status::request_header_fields_too_large, "headers_too_large",
                               "the request's headers are over " +
                                   std::to_string(server_.options.max_header_bytes) + " bytes");
    }
    // Beast checks a Content-Length against the body limit with the header.
    if (error == http::error::body_limit) return refuse_large_body();
    if (error) return on_read_failure(error);
    const auto length = parser_->content_length();
    if (length && *length > server_.options.max_body_bytes) return refuse_large_body();
    if (parser_->is_done()) return handle_request();
    const auto expect = parser_->get()[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      continue_.emplace(http::status::continue_, parser_->get().version());
      return http::async_write(
          stream_, *continue_,
          [self = shared_from_this()](beast::error_code write_error, std::size_t) {
            if (write_error) return self->close_now();
            self->read_body();
          });
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_body, shared_from_this()));
  }

  void on_body(beast::error_code error, std::size_t) {
    if (error == http::error::body_limit) return refuse_large_body();
    if (error) return on_read_failure(error);
    handle_request();
  }

  void on_read_failure(beast::error_code error) {
    // A malformed request gets a 400; a timeout, a reset or an end of stream
    // between requests just ends the connection.
    if (error.category() == http::make_error_code(http::error::bad_target).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message) {
      return respond_and_close(http::status::bad_request, "invalid_request",
                               "the request is not valid HTTP/1.1: " + error.message());
    }
    close_now();
  }

  void refuse_large_body() {
    respond_and_close(
        http::status::payload_too_large, "payload_too_large",
        "the body is over " + std::to_string(server_.options.max_body_bytes) + " bytes");
  }

  // One request at a time: the next is read only once this one's response
  // is written, so pipelined requests are answered in order even when an
  // answer comes from the pool or a commit.
  void handle_request() {
    auto request = std::make_shared<Request>(parser_->release());
    if (beast::websocket::is_upgrade(*request) && server_.api.may_upgrade(*request)) {
      return start_websocket(std::move(*request));
    }
    // Whatever is slow happens off this thread; no deadline runs meanwhile.
    stream_.expires_never();
    server_.api.handle(
        std::move(request), stream_.get_executor(),
        [self = shared_from_this()](Response response) { self->send(std::move(response)); });
  }

  void start_websocket(Request request) {
    stream_.expires_never();
    auto session = std::make_shared<WebSocketSession>(
        std::move(stream_),
        WebSocketSession::Context{server_.options, server_.runs, server_.history, server_.metrics,
                                  server_.hub, server_.connections, server_.pool});
    session->start(std::move(request));
  }

  // On the strand. A client that does not read its response is dropped
  // after the request timeout. The head and the body's parts go out in one
  // gathered write.
  void send(Response response) {
    server_.metrics.count_response(response.result_int());
    response_ = std::move(response);
    response_.set(http::field::server, "nightshift");
    response_.prepare_payload();
    serialize_head(response_, head_);
    keep_alive_ = response_.keep_alive();
    const auto body = response_.body().buffers();
    const std::array<net::const_buffer, 4> buffers{net::buffer(head_), body[0], body[1], body[2]};
    stream_.expires_after(server_.options.request_timeout);
    net::async_write(stream_, buffers,
                     beast::bind_front_handler(&HttpSession::on_write, shared_from_this()));
  }

  void respond_and_close(http::status status, std::string_view code, std::string_view message) {
    send(HttpApi::error_response(11, false, status, code, message));
  }

  void on_write(beast::error_code error, std::size_t) {
    // Released as soon as it is written: its fields while they are still in
    // this core's cache, and the cached page it may share, which an idle
    // keep-alive connection would otherwise hold until its next request.
    response_ = {};
    if (error) return close_now();
    if (keep_alive_) return read_request();
    close_gracefully();
  }

  // Half-closes, then reads and discards what the client still sends (e.g.
  // the rest of a body too large to accept) until it closes too, so that it
  // sees the response rather than a reset.
  void close_gracefully() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kDrainTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(
        net::buffer(drain_buffer_),
        [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
          self->drained_ += bytes;
          if (error || self->drained_ > kDrainBytes) return self->close_now();
          self->drain();
        });
  }

  void close_now() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }

  TcpStream stream_;  // its executor is this session's strand
  ServerCore& server_;
  ConnectionCount::Slot connection_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  Response response_;        // while it is being written
  std::string head_;         // response_'s status line and fields, serialized
  bool keep_alive_ = false;  // whether the connection stays open after it
  std::array<char, 16384> drain_buffer_{};
  std::size_t drained_ = 0;
};

}  // namespace

void ServerCore::on_bus_event(const EventPtr& event) noexcept {
  try {
    if (const auto* run_event = std::get_if<RunEvent>(event.get())) {
      // First the cache, then the clients: a client that hears of a finished
      // run and asks for the history at once finds it there.
      if (run_event->kind == RunEventKind::deleted || is_terminal(run_event->run.status)) {
        history.invalidate();
      }
    }
    hub.publish(event);
  } catch (const std::exception& error) {
    spdlog::error("fanning an event out to WebSocket clients failed: {}", error.what());
  }
}

void ServerCore::accept_next() {
  acceptor.async_accept(net::make_strand(ioc),
                        [this](boost::system::error_code error, StrandSocket socket) {
                          on_accept(error, std::move(socket));
                        });
}

void ServerCore::on_accept(boost::system::error_code error, StrandSocket socket) {
  if (error == net::error::operation_aborted || !acceptor.is_open()) return;
  if (error) {
    spdlog::warn("accepting a connection failed: {}", error.message());
  } else {
    socket.set_option(tcp::no_delay(true), error);
    auto session = std::make_shared<HttpSession>(std::move(socket), *this);
    if (connections.size() > options.max_connections) {
      session->refuse_overloaded();
    } else {
      session->run();
    }
  }
  accept_next();
}

void ServerCore::close_http_sessions() {
  std::vector<std::shared_ptr<HttpSession>> sessions;
  {
    std::lock_guard lock(sessions_mutex);
    for (const auto& [key, weak] : http_sessions) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->shut_down();
}

struct Server::Impl : ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(ServerOptions options, Host& host)
    : impl_(std::make_unique<Impl>(std::move(options), host.runs(), host.catalog(),
                                   host.automation(), host.bus())) {}

Server::~Server() {
  stop();
}

void Server::start() {
  Impl& core = *impl_;
  const tcp::endpoint wanted(core.address, core.options.port);
  core.acceptor.open(wanted.protocol());
  core.acceptor.set_option(net::socket_base::reuse_address(true));
  core.acceptor.bind(wanted);
  core.acceptor.listen(net::socket_base::max_listen_connections);
  core.endpoint = core.acceptor.local_endpoint();
  core.subscription =
      core.bus.subscribe([&core](const EventPtr& event) { core.on_bus_event(event); });
  // The fan-out runs beside the I/O threads, not behind what it posts them.
  core.hub.attach(net::make_strand(core.pool));
  core.work.emplace(core.ioc.get_executor());
  net::post(core.acceptor.get_executor(), [&core] { core.accept_next(); });
  const std::size_t count = std::max<std::size_t>(1, core.options.io_threads);
  for (std::size_t i = 0; i < count; ++i) {
    core.threads.emplace_back([&core] {
      for (;;) {
        try {
          core.ioc.run();
          return;
        } catch (const std::exception& error) {
          spdlog::error("an I/O handler failed: {}", error.what());
        }
      }
    });
  }
}

tcp::endpoint Server::local_endpoint() const {
  return impl_->endpoint;
}

void Server::stop_accepting() {
  net::post(impl_->acceptor.get_executor(), [&core = *impl_] {
    boost::system::error_code ignored;
    core.acceptor.close(ignored);
  });
}

void Server::stop() {
  Impl& core = *impl_;
  if (core.stopped) return;
  core.stopped = true;
  if (core.threads.empty()) return;
  stop_accepting();
  core.subscription.reset();
  core.hub.close_all();
  core.close_http_sessions();
  // The close handshakes get a moment; then whatever is left is stopped.
  core.connections.wait_until_none(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  core.api.close();
  core.pool.stop();
  core.pool.join();
  core.work.reset();
  core.ioc.stop();
  for (std::thread& thread : core.threads) thread.join();
  core.threads.clear();
  core.hub.detach();
}

std::vector<RouteSpec> Server::routes() const {
  return impl_->api.routes();
}

const Metrics& Server::metrics() const {
  return impl_->metrics;
}

}  // namespace nightshift::api
