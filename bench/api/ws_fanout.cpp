#include "ws_fanout.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <charconv>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace nightshift::bench {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// Every run of one measurement has the task "ws-fanout-<index>", so that a
// client can tell which start request a `started` event answers.
constexpr std::string_view kTaskPrefix = "ws-fanout-";
constexpr std::string_view kStartedMarker = R"("event":"started")";
constexpr std::string_view kTaskMarker = R"("task":"ws-fanout-)";

// When each start request was sent. Written by the starting thread before it
// sends the request; read by the client threads when the event arrives.
class SentTimes {
 public:
  explicit SentTimes(std::size_t runs) : at_(runs) {}
  void mark(std::size_t run) {
    at_[run].store(Clock::now().time_since_epoch().count(), std::memory_order_release);
  }
  Clock::time_point at(std::size_t run) const {
    return Clock::time_point(Clock::duration(at_[run].load(std::memory_order_acquire)));
  }

 private:
  std::vector<std::atomic<Clock::rep>> at_;
};

// Counters every client adds to; the main thread waits on them.
struct Progress {
  std::atomic<std::size_t> opened{0};  // handshakes finished, successfully or not
  std::atomic<std::size_t> connected{0};
  std::atomic<std::size_t> ready{0};      // clients that read their snapshot
  std::atomic<std::size_t> received{0};   // `started` events read, over all clients
  std::atomic<std::size_t> abandoned{0};  // events lost clients will never read
  std::atomic<std::size_t> lost{0};
};

// One WebSocket client. Its handlers run on its own strand, so its members
// are touched by one thread at a time; the main thread reads `arrivals()`
// only after the io_context threads are joined.
class FanoutClient : public std::enable_shared_from_this<FanoutClient> {
 public:
  FanoutClient(net::io_context& ioc, Progress& progress, std::size_t runs)
      : ws_(net::make_strand(ioc)), progress_(progress), arrivals_(runs) {}

  void open(const tcp::endpoint& endpoint, const HostAddress& host,
            std::function<void()> on_opened) {
    on_opened_ = std::move(on_opened);
    target_ = "/background-agent-ws?token=" + host.token;
    host_header_ = host.host_header();
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws_).async_connect(
        endpoint, beast::bind_front_handler(&FanoutClient::on_connect, shared_from_this()));
  }

  // When this client read the `started` of each run (epoch: never).
  const std::vector<Clock::time_point>& arrivals() const { return arrivals_; }

 private:
  void on_connect(beast::error_code error) {
    if (error) return opened(false);
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.async_handshake(host_header_, target_,
                        beast::bind_front_handler(&FanoutClient::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code error) {
    opened(!error);
    if (!error) read();
  }

  void opened(bool connected) {
    if (connected) progress_.connected.fetch_add(1);
    progress_.opened.fetch_add(1);
    if (auto next = std::exchange(on_opened_, nullptr)) next();
  }

  void read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&FanoutClient::on_read, shared_from_this()));
  }

  void on_read(beast::error_code error, std::size_t) {
    const auto now = Clock::now();
    if (error) return lose();
    const auto data = buffer_.data();
    note(std::string_view(static_cast<const char*>(data.data()), data.size()), now);
    buffer_.consume(buffer_.size());
    read();
  }

  // This thread reads for hundreds of clients, so it must not become what it
  // measures: it looks only for `started` events and their task, in the
  // compact JSON the host writes, without parsing the rest.
  void note(std::string_view message, Clock::time_point now) {
    if (!snapshot_read_) {
      snapshot_read_ = true;
      progress_.ready.fetch_add(1);
      return;
    }
    if (message.find(kStartedMarker) == std::string_view::npos) return;
    const auto task = message.find(kTaskMarker);
    if (task == std::string_view::npos) return;
    const char* digits = message.data() + task + kTaskMarker.size();
    std::size_t run = 0;
    const auto parsed = std::from_chars(digits, message.data() + message.size(), run);
    if (parsed.ec != std::errc() || run >= arrivals_.size()) return;
    if (arrivals_[run] != Clock::time_point{}) return;
    arrivals_[run] = now;
    ++arrived_;
    progress_.received.fetch_add(1);
  }

  void lose() {
    if (lost_) return;
    lost_ = true;
    progress_.lost.fetch_add(1);
    progress_.abandoned.fetch_add(arrivals_.size() - arrived_);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  Progress& progress_;
  std::function<void()> on_opened_;
  std::string target_;
  std::string host_header_;
  std::vector<Clock::time_point> arrivals_;
  std::size_t arrived_ = 0;
  bool snapshot_read_ = false;
  bool lost_ = false;
};

// Opens `clients` clients, at most `in_flight` handshakes at a time: each
// finished handshake starts the next one.
class Connector {
 public:
  Connector(net::io_context& ioc, Progress& progress, const WsFanoutOptions& options)
      : ioc_(ioc), progress_(progress), options_(options), endpoint_(options.host.endpoint()) {
    clients_.reserve(options.clients);
    for (std::size_t i = 0; i < options.clients; ++i) {
      clients_.push_back(std::make_shared<FanoutClient>(ioc_, progress_, options.runs));
    }
  }

  void start() {
    const auto chains = std::min(options_.connects_in_flight, clients_.size());
    for (std::size_t i = 0; i < chains; ++i) open_next();
  }

  const std::vector<std::shared_ptr<FanoutClient>>& clients() const { return clients_; }

 private:
  void open_next() {
    const auto index = next_.fetch_add(1);
    if (index >= clients_.size()) return;
    clients_[index]->open(endpoint_, options_.host, [this] { open_next(); });
  }

  net::io_context& ioc_;
  Progress& progress_;
  const WsFanoutOptions& options_;
  tcp::endpoint endpoint_;
  std::vector<std::shared_ptr<FanoutClient>> clients_;
  std::atomic<std::size_t> next_{0};
};

// Polls `done` every millisecond until it holds or `timeout` passes; a
// benchmark's main thread, not a test, so a short poll is fine here.
template <class Done>
bool wait_until(Done done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Starts the runs one after the other on one keep-alive connection, marking
// when each request leaves.
void start_runs(const WsFanoutOptions& options, SentTimes& sent) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(options.host.endpoint());
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  auto next = Clock::now();
  for (std::size_t run = 0; run < options.runs; ++run) {
    std::this_thread::sleep_until(next);
    next += options.spacing;
    const auto request =
        start_request(options.host, std::string(kTaskPrefix) + std::to_string(run));
    sent.mark(run);
    http::write(stream, request);
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    if (response.result() != http::status::created) {
      throw std::runtime_error("the host refused a start: " +
                               std::to_string(response.result_int()) + " " + response.body());
    }
  }
}

WsFanoutResult collect(const std::vector<std::shared_ptr<FanoutClient>>& clients,
                       const Progress& progress, const SentTimes& sent, std::size_t runs) {
  WsFanoutResult result;
  result.clients_connected = progress.connected.load();
  result.clients_lost = progress.lost.load();
  result.expected = result.clients_connected * runs;
  std::vector<Clock::time_point> last(runs);
  for (const auto& client : clients) {
    const auto& arrivals = client->arrivals();
    for (std::size_t run = 0; run < runs; ++run) {
      if (arrivals[run] == Clock::time_point{}) continue;
      result.delays_ms.push_back(milliseconds_between(sent.at(run), arrivals[run]));
      last[run] = std::max(last[run], arrivals[run]);
    }
  }
  for (std::size_t run = 0; run < runs; ++run) {
    if (last[run] != Clock::time_point{}) {
      result.last_client_ms.push_back(milliseconds_between(sent.at(run), last[run]));
    }
  }
  return result;
}

}  // namespace

WsFanoutResult measure_ws_fanout(const WsFanoutOptions& options) {
  if (options.clients == 0 || options.runs == 0 || options.threads == 0) {
    throw std::invalid_argument("clients, runs and threads must each be at least 1");
  }
  raise_open_file_limit(options.clients + 64);
  net::io_context ioc(static_cast<int>(options.threads));
  auto guard = net::make_work_guard(ioc);
  Progress progress;
  SentTimes sent(options.runs);
  Connector connector(ioc, progress, options);
  std::vector<std::jthread> threads;
  for (std::size_t i = 0; i < options.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  const auto stop_threads = [&] {
    guard.reset();
    ioc.stop();
    threads.clear();
  };
  try {
    net::post(ioc, [&connector] { connector.start(); });
    const bool connected = wait_until(
        [&] {
          return progress.opened.load() == options.clients &&
                 progress.ready.load() + progress.lost.load() >= progress.connected.load();
        },
        std::chrono::seconds(120));
    if (!connected || progress.connected.load() == 0) {
      throw std::runtime_error(
          std::to_string(progress.connected.load()) + " of " + std::to_string(options.clients) +
          " WebSocket clients connected and " + std::to_string(progress.ready.load()) +
          " read their snapshot within 120 s; is the host running, and is the token right?");
    }
    start_runs(options, sent);
    wait_until(
        [&] {
          return progress.received.load() + progress.abandoned.load() >=
                 progress.connected.load() * options.runs;
        },
        options.deadline);
  } catch (...) {
    stop_threads();
    throw;
  }
  stop_threads();
  return collect(connector.clients(), progress, sent, options.runs);
}

}  // namespace nightshift::bench
