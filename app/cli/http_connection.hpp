// One keep-alive HTTP/1.1 connection to the host (Boost.Beast, synchronous:
// a command does one thing at a time, so blocking calls keep it simple).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/verb.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/host_endpoint.hpp"

namespace nightshift::cli {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, when the host sent one
};

class HttpConnection {
 public:
  explicit HttpConnection(HostEndpoint endpoint);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends one request (target relative to the URL's path, e.g.
  // "/agents") and returns the response. Throws CliError(host_unreachable)
  // when no host answers at the URL.
  HttpResponse request(boost::beast::http::verb method, std::string_view target,
                       std::string_view json_body = {});

  const HostEndpoint& endpoint() const { return endpoint_; }

  // Connects a fresh socket to the host (also used for the WebSocket).
  boost::asio::ip::tcp::socket connect_socket();

 private:
  HttpResponse exchange(boost::beast::http::verb method, std::string_view target,
                        std::string_view json_body);
  void close();

  HostEndpoint endpoint_;
  boost::asio::io_context io_;
  std::optional<boost::asio::ip::tcp::socket> socket_;  // open while kept alive
  boost::beast::flat_buffer buffer_;
};

// The message for "nothing listens at the URL", shared by HTTP and WebSocket.
std::string host_unreachable_message(const HostEndpoint& endpoint);

}  // namespace nightshift::cli
