#include "automation/webhook_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <memory>

namespace nightshift {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct Target {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;  // origin-form target
};

std::optional<Target> parse_target(const std::string& url, std::string* why) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    if (why) *why = "'" + url + "' is not an absolute URL";
    return std::nullopt;
  }
  Target target;
  const std::string scheme(parsed->scheme());
  if (scheme != "http" && scheme != "https") {
    if (why) *why = "the URL must start with http:// or https://, not " + scheme + "://";
    return std::nullopt;
  }
  target.tls = scheme == "https";
  target.host = std::string(parsed->host_address());
  if (!target.host.empty() && target.host.front() == '[') {
    target.host = target.host.substr(1, target.host.size() - 2);
  }
  if (target.host.empty()) {
    if (why) *why = "the URL '" + url + "' has no host";
    return std::nullopt;
  }
  target.port = parsed->has_port() ? std::string(parsed->port()) : (target.tls ? "443" : "80");
  target.path = std::string(parsed->encoded_path());
  if (target.path.empty()) target.path = "/";
  if (parsed->has_query()) target.path += "?" + std::string(parsed->encoded_query());
  return target;
}

std::string describe(const beast::error_code& error) {
  if (error == net::error::operation_aborted) return "timed out";
  return error.message();
}

// One POST; kept alive by the handlers it has in flight.
template <class Stream>
class Exchange : public std::enable_shared_from_this<Exchange<Stream>> {
 public:
  Exchange(net::io_context& ioc, Stream stream, Target target, WebhookPost post,
           std::function<void(WebhookAnswer)> done)
      : resolver_(ioc),
        timer_(ioc),
        stream_(std::move(stream)),
        target_(std::move(target)),
        post_(std::move(post)),
        done_(std::move(done)) {}

  void run() {
    auto self = this->shared_from_this();
    timer_.expires_after(post_.timeout);
    timer_.async_wait([self](const beast::error_code& error) {
      if (error || self->finished_) return;
      self->timed_out_ = true;
      self->resolver_.cancel();
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().close(ignored);
    });
    resolver_.async_resolve(target_.host, target_.port,
                            [self](const beast::error_code& error, tcp::resolver::results_type r) {
                              self->on_resolve(error, std::move(r));
                            });
  }

 private:
  void on_resolve(const beast::error_code& error, const tcp::resolver::results_type& results) {
    if (error) return finish(std::nullopt, "cannot resolve " + target_.host + ": " + reason(error));
    auto self = this->shared_from_this();
    beast::get_lowest_layer(stream_).async_connect(
        results, [self](const beast::error_code& e, const tcp::endpoint&) { self->on_connect(e); });
  }

  void on_connect(const beast::error_code& error) {
    if (error) return finish(std::nullopt, "cannot connect: " + reason(error));
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      if (!SSL_set_tlsext_host_name(stream_.native_handle(), target_.host.c_str())) {
        return finish(std::nullopt, "cannot set the TLS server name");
      }
      stream_.set_verify_callback(net::ssl::host_name_verification(target_.host));
      auto self = this->shared_from_this();
      stream_.async_handshake(net::ssl::stream_base::client, [self](const beast::error_code& e) {
        if (e) return self->finish(std::nullopt, "TLS handshake failed: " + self->reason(e));
        self->write();
      });
    } else {
      write();
    }
  }

  void write() {
    request_.method(http::verb::post);
    request_.target(target_.path);
    request_.version(11);
    const bool default_port = target_.port == (target_.tls ? "443" : "80");
    request_.set(http::field::host,
                 default_port ? target_.host : target_.host + ":" + target_.port);
    request_.set(http::field::user_agent, "nightshift-webhook");
    request_.set(http::field::content_type, "application/json");
    request_.set(http::field::connection, "close");
    for (const auto& [name, value] : post_.headers) request_.set(name, value);
    request_.body() = post_.body;
    request_.prepare_payload();
    auto self = this->shared_from_this();
    http::async_write(stream_, request_, [self](const beast::error_code& e, std::size_t) {
      if (e) return self->finish(std::nullopt, "cannot send: " + self->reason(e));
      self->parser_.body_limit(64 * 1024);
      http::async_read_header(
          self->stream_, self->buffer_, self->parser_,
          [self](const beast::error_code& error, std::size_t) { self->on_header(error); });
    });
  }

  void on_header(const beast::error_code& error) {
    if (error) return finish(std::nullopt, "no answer: " + reason(error));
    const int code = static_cast<int>(parser_.get().result_int());
    if (code >= 200 && code < 300) return finish(code, std::nullopt);
    finish(code, "the receiver answered HTTP " + std::to_string(code));
  }

  std::string reason(const beast::error_code& error) const {
    if (timed_out_) {
      return "timed out after " + std::to_string(post_.timeout.count()) + " ms";
    }
    return describe(error);
  }

  void finish(std::optional<int> code, std::optional<std::string> error) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).socket().close(ignored);
    done_(WebhookAnswer{code, std::move(error)});
  }

  tcp::resolver resolver_;
  net::steady_timer timer_;
  Stream stream_;
  Target target_;
  WebhookPost post_;
  std::function<void(WebhookAnswer)> done_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  bool finished_ = false;
  bool timed_out_ = false;
};

}  // namespace

std::optional<std::string> check_webhook_url(const std::string& url) {
  std::string why;
  if (!parse_target(url, &why)) return why;
  return std::nullopt;
}

net::ssl::context& WebhookTls::context() {
  if (!context_) {
    net::ssl::context made(net::ssl::context::tls_client);
    made.set_default_verify_paths();
    made.set_verify_mode(net::ssl::verify_peer);
    context_.emplace(std::move(made));
  }
  return *context_;
}

void post_webhook(net::io_context& ioc, WebhookTls& tls, WebhookPost post,
                  std::function<void(WebhookAnswer)> done) {
  std::string why;
  auto target = parse_target(post.url, &why);
  if (!target) {
    done(WebhookAnswer{std::nullopt, why});
    return;
  }
  if (target->tls) {
    net::ssl::context* context = nullptr;
    try {
      context = &tls.context();
    } catch (const boost::system::system_error& error) {
      // Answered like a failed connection: the delivery is tried again later.
      done(WebhookAnswer{std::nullopt, std::string("cannot set up TLS: ") + error.what()});
      return;
    }
    auto exchange = std::make_shared<Exchange<beast::ssl_stream<beast::tcp_stream>>>(
        ioc, beast::ssl_stream<beast::tcp_stream>(ioc, *context), std::move(*target),
        std::move(post), std::move(done));
    exchange->run();
  } else {
    auto exchange = std::make_shared<Exchange<beast::tcp_stream>>(
        ioc, beast::tcp_stream(ioc), std::move(*target), std::move(post), std::move(done));
    exchange->run();
  }
}

}  // namespace nightshift
