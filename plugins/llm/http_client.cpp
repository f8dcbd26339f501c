#include "http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <limits>
#include <optional>
#include <stdexcept>

namespace nightshift::llm {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// How often a request in flight looks at `cancelled` and its deadline.
constexpr auto poll_interval = std::chrono::milliseconds(20);
constexpr std::size_t read_piece_bytes = 16 * 1024;
constexpr std::size_t max_error_body_bytes = 64 * 1024;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One request: connect, (handshake,) write, read the header, read the body,
// or, on a connection kept open from the previous request, write and read.
// Each step's handler starts the next; the poll timer may close the
// connection at any time, after which the handlers only record how it ended.
template <class Stream>
class Exchange {
 public:
  Exchange(asio::io_context& io, Stream& stream, beast::flat_buffer& buffer, bool reuse,
           const Endpoint& endpoint, http::request<http::string_body>& request,
           Clock::time_point deadline, const std::function<bool()>& cancelled,
           const std::function<void(const HttpResult&)>& on_header,
           const std::function<void(std::string_view)>& on_body)
      : io_(io),
        stream_(stream),
        buffer_(buffer),
        reuse_(reuse),
        endpoint_(endpoint),
        request_(request),
        deadline_(deadline),
        cancelled_(cancelled),
        on_header_(on_header),
        on_body_(on_body),
        resolver_(io),
        timer_(io) {
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_.header_limit(64 * 1024);
  }

  HttpResult run() {
    arm_timer();
    if (reuse_) {
      write();
    } else if (is_ip_address(endpoint_.host)) {
      boost::system::error_code ec;
      const auto address = asio::ip::make_address(endpoint_.host, ec);
      const auto port = static_cast<unsigned short>(std::stoul(endpoint_.port));
      std::array<tcp::endpoint, 1> endpoints{tcp::endpoint(address, port)};
      connect(endpoints);
    } else {
      resolver_.async_resolve(endpoint_.host, endpoint_.port,
                              [this](boost::system::error_code ec, tcp::resolver::results_type r) {
                                if (finished_) return;
                                if (ec) {
                                  return fail(
                                      HttpFailure::connect_failed,
                                      "cannot resolve " + endpoint_.host + ": " + ec.message());
                                }
                                connect(r);
                              });
    }
    try {
      io_.run();
    } catch (...) {
      // A callback threw: close, and let every pending handler see that
      // the exchange is over before it goes away.
      fail(HttpFailure::dropped, "aborted");
      io_.restart();
      io_.run();
      throw;
    }
    return std::move(result_);
  }

  // The connection stays open for the next request (a whole answer came,
  // and the server did not say it closes).
  bool kept_open() const noexcept { return kept_open_; }
  // A reused connection failed before any answer: the server had closed it
  // while it was idle, and the request may be sent again on a new one.
  bool stale() const noexcept { return stale_; }

 private:
  void arm_timer() {
    timer_.expires_after(poll_interval);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || finished_) return;
      if (cancelled_()) return fail(HttpFailure::cancelled, "the request was stopped");
      if (Clock::now() >= deadline_) {
        return fail(HttpFailure::timed_out, "no complete answer within the request timeout");
      }
      arm_timer();
    });
  }

  template <class Endpoints>
  void connect(const Endpoints& endpoints) {
    beast::get_lowest_layer(stream_).async_connect(
        endpoints, [this](boost::system::error_code ec, const tcp::endpoint&) {
          if (finished_) return;
          if (ec) {
            return fail(HttpFailure::connect_failed, "cannot connect to " + endpoint_.host + ":" +
                                                         endpoint_.port + ": " + ec.message());
          }
          boost::system::error_code ignored;
          beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true), ignored);
          handshake();
        });
  }

  void handshake() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      write();
    } else {
      SSL* ssl = stream_.native_handle();
      // SNI carries a host name, never an address (RFC 6066).
      if (!is_ip_address(endpoint_.host) &&
          !SSL_set_tlsext_host_name(ssl, endpoint_.host.c_str())) {
        return fail(HttpFailure::tls_failed, "cannot set the TLS server name " + endpoint_.host);
      }
      stream_.set_verify_mode(ssl::verify_peer);
      stream_.set_verify_callback(ssl::host_name_verification(endpoint_.host));
      stream_.async_handshake(ssl::stream_base::client, [this](boost::system::error_code ec) {
        if (finished_) return;
        if (ec) {
          std::string why = ec.message();
          const long verify = SSL_get_verify_result(stream_.native_handle());
          if (verify != X509_V_OK) {
            why = std::string("the server's certificate was refused: ") +
                  X509_verify_cert_error_string(verify);
          }
          return fail(HttpFailure::tls_failed,
                      "TLS handshake with " + endpoint_.host + " failed: " + why);
        }
        write();
      });
    }
  }

  void write() {
    http::async_write(stream_, request_, [this](boost::system::error_code ec, std::size_t) {
      if (finished_) return;
      if (ec) {
        stale_ = reuse_;
        return fail(HttpFailure::dropped, "sending the request failed: " + ec.message());
      }
      read_header();
    });
  }

  void read_header() {
    http::async_read_header(
        stream_, buffer_, parser_, [this](boost::system::error_code ec, std::size_t) {
          if (finished_) return;
          if (ec) {
            stale_ = reuse_;
            return fail(HttpFailure::dropped,
                        "the connection ended before an answer came: " + ec.message());
          }
          const auto& header = parser_.get();
          result_.status = static_cast<int>(header.result_int());
          if (auto it = header.find(http::field::retry_after); it != header.end()) {
            result_.retry_after = std::string(it->value());
          }
          if (auto it = header.find(http::field::content_type); it != header.end()) {
            result_.content_type = lower(it->value());
          }
          streaming_ = result_.status / 100 == 2 && on_body_;
          if (streaming_ && on_header_) on_header_(result_);
          read_body();
        });
  }

  void read_body() {
    if (parser_.is_done()) return finish();
    parser_.get().body().data = piece_.data();
    parser_.get().body().size = piece_.size();
    parser_.get().body().more = true;
    http::async_read(stream_, buffer_, parser_, [this](boost::system::error_code ec, std::size_t) {
      if (finished_) return;
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t got = piece_.size() - parser_.get().body().size;
      if (got > 0) deliver(std::string_view(piece_.data(), got));
      if (finished_) return;
      if (ec && !parser_.is_done()) {
        return fail(HttpFailure::dropped, "the connection dropped mid-answer: " + ec.message());
      }
      read_body();
    });
  }

  void deliver(std::string_view bytes) {
    if (streaming_) {
      on_body_(bytes);
      return;
    }
    const std::size_t room = max_error_body_bytes - result_.body.size();
    result_.body.append(bytes.substr(0, room));
    if (result_.body.size() >= max_error_body_bytes) finish();  // enough to say what went wrong
  }

  void fail(HttpFailure failure, std::string text) {
    if (finished_) return;
    result_.failure = failure;
    result_.failure_text = std::move(text);
    finish();
  }

  void finish() {
    finished_ = true;
    timer_.cancel();
    resolver_.cancel();
    kept_open_ =
        result_.failure == HttpFailure::none && parser_.is_done() && parser_.get().keep_alive();
    if (!kept_open_) beast::get_lowest_layer(stream_).close();
  }

  asio::io_context& io_;
  Stream& stream_;
  beast::flat_buffer& buffer_;
  bool reuse_;
  const Endpoint& endpoint_;
  http::request<http::string_body>& request_;
  Clock::time_point deadline_;
  const std::function<bool()>& cancelled_;
  const std::function<void(const HttpResult&)>& on_header_;
  const std::function<void(std::string_view)>& on_body_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  http::response_parser<http::buffer_body> parser_;
  std::array<char, read_piece_bytes> piece_{};
  HttpResult result_;
  bool streaming_ = false;
  bool finished_ = false;
  bool kept_open_ = false;
  bool stale_ = false;
};

}  // namespace

Endpoint Endpoint::parse(std::string_view url) {
  const auto hint = std::string(
      " (baseUrl should look like http://127.0.0.1:8080/v1 or https://api.example.com/v1)");
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed)
    throw std::invalid_argument("baseUrl '" + std::string(url) + "' is not a URL" + hint);
  const boost::urls::url_view& view = *parsed;
  Endpoint out;
  const std::string scheme = lower(view.scheme());
  if (scheme == "https") {
    out.tls = true;
  } else if (scheme != "http") {
    throw std::invalid_argument("baseUrl '" + std::string(url) +
                                "': the scheme must be http or https" + hint);
  }
  if (view.has_userinfo()) {
    throw std::invalid_argument(
        "baseUrl must not hold a user or password; put the key in the environment variable named "
        "by apiKeyEnv");
  }
  out.host = view.host_address();
  if (out.host.empty()) {
    throw std::invalid_argument("baseUrl '" + std::string(url) + "' has no host" + hint);
  }
  if (view.has_port()) {
    if (view.port().empty() || view.port_number() == 0) {
      throw std::invalid_argument("baseUrl '" + std::string(url) + "' has an invalid port" + hint);
    }
    out.port = std::to_string(view.port_number());
  } else {
    out.port = out.tls ? "443" : "80";
  }
  out.base_path = std::string(view.encoded_path());
  while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  const bool ipv6 = out.host.find(':') != std::string::npos;
  out.display =
      scheme + "://" + (ipv6 ? "[" + out.host + "]" : out.host) + ":" + out.port + out.base_path;
  return out;
}

// The connection is kept between requests (HTTP/1.1 keep-alive), so a run
// does not connect, and over HTTPS does not handshake, for every turn.
struct HttpClient::Impl {
  Endpoint endpoint;
  std::function<bool()> cancelled;
  std::optional<ssl::context> tls;
  asio::io_context io;  // before the streams, which it must outlive
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool open = false;  // a stream is connected and may carry the next request
};

HttpClient::HttpClient(Endpoint endpoint, std::function<bool()> cancelled)
    : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = std::move(endpoint);
  impl_->cancelled = std::move(cancelled);
  if (impl_->endpoint.tls) {
    impl_->tls.emplace(ssl::context::tls_client);
    impl_->tls->set_default_verify_paths();
    impl_->tls->set_verify_mode(ssl::verify_peer);
  }
}

HttpClient::~HttpClient() = default;

const Endpoint& HttpClient::endpoint() const noexcept {
  return impl_->endpoint;
}

HttpResult HttpClient::post(const std::string& target, const std::string& body,
                            const std::vector<HttpHeader>& headers,
                            std::chrono::milliseconds timeout,
                            const std::function<void(const HttpResult&)>& on_header,
                            const std::function<void(std::string_view)>& on_body) {
  const Endpoint& endpoint = impl_->endpoint;
  http::request<http::string_body> request{http::verb::post, target, 11};
  const bool default_port = endpoint.port == (endpoint.tls ? "443" : "80");
  const bool ipv6 = endpoint.host.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + endpoint.host + "]" : endpoint.host;
  request.set(http::field::host, default_port ? host : host + ":" + endpoint.port);
  request.set(http::field::user_agent, "nightshift-llm/1.0");
  request.set(http::field::content_type, "application/json");
  for (const HttpHeader& header : headers) request.set(header.name, header.value);
  request.body() = body;
  request.prepare_payload();

  const auto deadline = Clock::now() + timeout;
  Impl& impl = *impl_;
  for (int round = 0;; ++round) {
    const bool reuse = impl.open;
    impl.open = false;
    if (!reuse) {
      impl.buffer.clear();
      if (endpoint.tls) {
        impl.secure.emplace(impl.io, *impl.tls);
      } else {
        impl.plain.emplace(impl.io);
      }
    }
    impl.io.restart();
    HttpResult result;
    bool stale = false;
    if (endpoint.tls) {
      Exchange exchange(impl.io, *impl.secure, impl.buffer, reuse, endpoint, request, deadline,
                        impl.cancelled, on_header, on_body);
      result = exchange.run();
      impl.open = exchange.kept_open();
      stale = exchange.stale();
    } else {
      Exchange exchange(impl.io, *impl.plain, impl.buffer, reuse, endpoint, request, deadline,
                        impl.cancelled, on_header, on_body);
      result = exchange.run();
      impl.open = exchange.kept_open();
      stale = exchange.stale();
    }
    // The server closed the idle connection: once more on a new one.
    if (stale && round == 0 && result.failure == HttpFailure::dropped) continue;
    return result;
  }
}

}  // namespace nightshift::llm
