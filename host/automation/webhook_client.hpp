// One webhook POST over Boost.Beast, asynchronous on the caller's
// io_context: resolve, connect, TLS for https (peer and host name checked
// against the system's CA store), write, read the status line and headers.
// One deadline covers it all, so a receiver that never answers costs a
// timer, not a thread.
//
// Thread safety: post_webhook is called on the io_context's thread (or
// before it runs); `done` is called once, on that thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nightshift {

struct WebhookPost {
  std::string url;  // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent as application/json
  std::chrono::milliseconds timeout{10000};
};

struct WebhookAnswer {
  std::optional<int> status_code;    // when the receiver answered
  std::optional<std::string> error;  // why it is not a success (none for a 2xx)
  bool success() const { return !error; }
};

// Checks a URL for a webhook: http or https with a host. Returns why not.
std::optional<std::string> check_webhook_url(const std::string& url);

// The TLS client context of https webhooks, made on the first https POST
// and kept: reading the system's CA certificates costs about half a
// megabyte of heap, and more of libcrypto's pages, that a host posting only
// over http (or not at all) should not pay. [the io_context's thread]
class WebhookTls {
 public:
  // Peers are checked against the system's CA store. Throws
  // boost::system::system_error when the context cannot be made.
  boost::asio::ssl::context& context();

 private:
  std::optional<boost::asio::ssl::context> context_;
};

void post_webhook(boost::asio::io_context& ioc, WebhookTls& tls, WebhookPost post,
                  std::function<void(WebhookAnswer)> done);

}  // namespace nightshift
