#include "ws_fanout.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace nightshift::bench {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
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
  std::atomic<std::size_t> connected{0};
  std::atomic<std::size_t> failed{0};     // connections or handshakes that failed
  std::atomic<std::size_t> ready{0};      // clients that read their snapshot
  std::atomic<std::size_t> received{0};   // `started` events read, over all clients
  std::atomic<std::size_t> abandoned{0};  // events lost clients will never read
  std::atomic<std::size_t> lost{0};
};

// One WebSocket client, as light as a client can be, so that the clients'
// process takes as little as possible of the machine it shares with the
// host: after Beast has written the upgrade request and parsed the host's
// answer, the client is a socket and a buffer. Its reader thread reads
// whatever has arrived with one recv and takes the frames out of it
// (RFC 6455, 5.2: a server's frames are never masked): a text message is
// looked at, a ping is answered, a close ends the client. The reader thread
// that owns it is the only one that touches it until it is joined.
class FanoutClient {
 public:
  FanoutClient(Progress& progress, std::size_t runs) : progress_(progress), arrivals_(runs) {}
  ~FanoutClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  FanoutClient(const FanoutClient&) = delete;
  FanoutClient& operator=(const FanoutClient&) = delete;

  // Connects and upgrades; false (and counted as failed) when either fails.
  bool open(const tcp::endpoint& endpoint, const HostAddress& host) {
    try {
      net::io_context ioc;
      tcp::socket socket(ioc);
      socket.connect(endpoint);
      socket.set_option(tcp::no_delay(true));
      http::request<http::empty_body> upgrade{http::verb::get,
                                              "/background-agent-ws?token=" + host.token, 11};
      upgrade.set(http::field::host, host.host_header());
      upgrade.set(http::field::upgrade, "websocket");
      upgrade.set(http::field::connection, "Upgrade");
      upgrade.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
      upgrade.set(http::field::sec_websocket_version, "13");
      http::write(socket, upgrade);
      beast::flat_buffer buffer;
      http::response<http::empty_body> answer;
      http::read(socket, buffer, answer);
      if (answer.result() != http::status::switching_protocols) throw std::runtime_error("");
      // Whatever came after the answer (the snapshot's first bytes) is ours.
      const auto rest = buffer.data();
      append(static_cast<const char*>(rest.data()), rest.size());
      fd_ = socket.release();
      progress_.connected.fetch_add(1);
      return true;
    } catch (const std::exception&) {
      progress_.failed.fetch_add(1);
      return false;
    }
  }

  int fd() const { return fd_; }
  bool lost() const { return lost_; }

  // Reads what has arrived and handles every whole frame in it.
  void read(Clock::time_point now) {
    if (buffer_.size() - end_ < kReadBytes) buffer_.resize(end_ + kReadBytes);
    const ssize_t got = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, MSG_DONTWAIT);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return lose();
    }
    if (got > 0) end_ += static_cast<std::size_t>(got);
    take_frames(now);
  }

  // When this client read the `started` of each run (epoch: never).
  const std::vector<Clock::time_point>& arrivals() const { return arrivals_; }

 private:
  static constexpr std::size_t kReadBytes = 64 * 1024;

  void append(const char* data, std::size_t size) {
    if (size == 0) return;
    if (buffer_.size() < end_ + size) buffer_.resize(end_ + size);
    std::memcpy(buffer_.data() + end_, data, size);
    end_ += size;
  }

  void take_frames(Clock::time_point now) {
    while (!lost_) {
      const std::size_t available = end_ - begin_;
      if (available < 2) break;
      const auto* head = reinterpret_cast<const unsigned char*>(buffer_.data() + begin_);
      const bool final = (head[0] & 0x80) != 0;
      const int opcode = head[0] & 0x0F;
      if ((head[1] & 0x80) != 0) return lose();  // masked: not what a server sends
      std::size_t header = 2;
      std::uint64_t length = head[1] & 0x7F;
      if (length >= 126) {
        const std::size_t bytes = length == 126 ? 2 : 8;
        if (available < 2 + bytes) break;
        length = 0;
        for (std::size_t i = 0; i < bytes; ++i) length = (length << 8) | head[2 + i];
        header += bytes;
      }
      if (available < header + length) {
        if (buffer_.size() < begin_ + header + length) buffer_.resize(begin_ + header + length);
        break;
      }
      const std::string_view payload(buffer_.data() + begin_ + header,
                                     static_cast<std::size_t>(length));
      begin_ += header + static_cast<std::size_t>(length);
      handle(opcode, final, payload, now);
    }
    // Keep only what is left of a frame, at the front.
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
  }

  void handle(int opcode, bool final, std::string_view payload, Clock::time_point now) {
    switch (opcode) {
      case 0x0:  // continuation
      case 0x1:  // text
        if (final && message_.empty()) return note(payload, now);
        message_.append(payload);
        if (final) {
          note(message_, now);
          message_.clear();
        }
        return;
      case 0x8:  // close
        return lose();
      case 0x9:  // ping: a pong with the same payload, masked (a client's frame)
        return pong(payload);
      default:  // pong, binary: nothing the host sends the clients
        return;
    }
  }

  void pong(std::string_view payload) {
    if (payload.size() > 125) return lose();  // a control frame never is
    std::string frame;
    frame.push_back(static_cast<char>(0x8A));
    frame.push_back(static_cast<char>(0x80 | payload.size()));
    frame.append(4, '\0');  // the mask key: zero leaves the payload as it is
    frame.append(payload);
    if (::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(frame.size())) {
      lose();
    }
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

  Progress& progress_;
  int fd_ = -1;
  std::vector<char> buffer_;  // [begin_, end_) is read and not handled yet
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::string message_;  // a fragmented message so far
  std::vector<Clock::time_point> arrivals_;
  std::size_t arrived_ = 0;
  bool snapshot_read_ = false;
  bool lost_ = false;
};

// One reader thread: connects its share of the clients, one after the other,
// then reads whichever of them has something to read (epoll) until told to
// stop.
class Reader {
 public:
  Reader(std::vector<std::unique_ptr<FanoutClient>>& clients, std::size_t first, std::size_t count)
      : clients_(clients), first_(first), count_(count), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_ < 0) throw std::runtime_error("epoll_create1 failed");
  }
  ~Reader() { ::close(epoll_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  void run(const tcp::endpoint& endpoint, const HostAddress& host, const std::atomic<bool>& stop) {
    for (std::size_t i = first_; i < first_ + count_ && !stop.load(); ++i) {
      FanoutClient& client = *clients_[i];
      if (!client.open(endpoint, host)) continue;
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.ptr = &client;
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, client.fd(), &event);
      client.read(Clock::now());  // what came with the handshake's answer
    }
    std::array<epoll_event, 256> events{};
    while (!stop.load(std::memory_order_relaxed)) {
      const int ready = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 10);
      if (ready <= 0) continue;
      const auto now = Clock::now();
      for (int i = 0; i < ready; ++i) {
        auto& client = *static_cast<FanoutClient*>(events[static_cast<std::size_t>(i)].data.ptr);
        client.read(now);
        if (client.lost()) ::epoll_ctl(epoll_, EPOLL_CTL_DEL, client.fd(), nullptr);
      }
    }
  }

 private:
  std::vector<std::unique_ptr<FanoutClient>>& clients_;
  const std::size_t first_;
  const std::size_t count_;
  const int epoll_;
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

WsFanoutResult collect(const std::vector<std::unique_ptr<FanoutClient>>& clients,
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
  const tcp::endpoint endpoint = options.host.endpoint();
  Progress progress;
  SentTimes sent(options.runs);
  std::vector<std::unique_ptr<FanoutClient>> clients;
  clients.reserve(options.clients);
  for (std::size_t i = 0; i < options.clients; ++i) {
    clients.push_back(std::make_unique<FanoutClient>(progress, options.runs));
  }
  const std::size_t threads = std::min(options.threads, options.clients);
  std::vector<std::unique_ptr<Reader>> readers;
  for (std::size_t t = 0; t < threads; ++t) {
    const std::size_t first = options.clients * t / threads;
    const std::size_t last = options.clients * (t + 1) / threads;
    readers.push_back(std::make_unique<Reader>(clients, first, last - first));
  }
  std::atomic<bool> stop{false};
  std::vector<std::jthread> reading;
  for (const auto& reader : readers) {
    reading.emplace_back([&, raw = reader.get()] { raw->run(endpoint, options.host, stop); });
  }
  const auto stop_readers = [&] {
    stop.store(true);
    reading.clear();
  };
  try {
    const bool connected = wait_until(
        [&] {
          return progress.connected.load() + progress.failed.load() == options.clients &&
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
    stop_readers();
    throw;
  }
  stop_readers();
  return collect(clients, progress, sent, options.runs);
}

}  // namespace nightshift::bench
