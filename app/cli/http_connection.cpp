#include "cli/http_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>

#include "cli/exit_codes.hpp"

namespace nightshift::cli {
namespace http = boost::beast::http;
using boost::asio::ip::tcp;

namespace {

// Responses such as a long log page can be large; the default limit (8 MB)
// is too tight for them.
constexpr std::uint64_t kResponseBodyLimit = 256ull * 1024 * 1024;

bool is_stale_connection_error(const boost::system::error_code& error) {
  return error == http::error::end_of_stream || error == boost::asio::error::connection_reset ||
         error == boost::asio::error::broken_pipe || error == boost::asio::error::eof;
}

}  // namespace

std::string host_unreachable_message(const HostEndpoint& endpoint) {
  return "no Nightshift host at " + endpoint.url + "; start one with `nightshift serve`";
}

HttpConnection::HttpConnection(HostEndpoint endpoint) : endpoint_(std::move(endpoint)) {}

HttpConnection::~HttpConnection() {
  close();
}

void HttpConnection::close() {
  if (!socket_) return;
  boost::system::error_code ignored;
  socket_->shutdown(tcp::socket::shutdown_both, ignored);
  socket_->close(ignored);
  socket_.reset();
}

tcp::socket HttpConnection::connect_socket() {
  boost::system::error_code error;
  tcp::resolver resolver(io_);
  const auto addresses = resolver.resolve(endpoint_.host, endpoint_.port, error);
  if (error) throw CliError(ExitCode::host_unreachable, host_unreachable_message(endpoint_));
  tcp::socket socket(io_);
  boost::asio::connect(socket, addresses, error);
  if (error) throw CliError(ExitCode::host_unreachable, host_unreachable_message(endpoint_));
  return socket;
}

HttpResponse HttpConnection::request(http::verb method, std::string_view target,
                                     std::string_view json_body) {
  const bool reused = socket_.has_value();
  try {
    return exchange(method, target, json_body);
  } catch (const boost::system::system_error& failure) {
    close();
    // A kept-alive connection the host has since closed: retry once on a
    // fresh one. A fresh connection failing means the host went away.
    if (reused && is_stale_connection_error(failure.code())) {
      try {
        return exchange(method, target, json_body);
      } catch (const boost::system::system_error&) {
        close();
      }
    }
    throw CliError(ExitCode::host_unreachable,
                   host_unreachable_message(endpoint_) +
                       " (connection lost: " + failure.code().message() + ")");
  }
}

HttpResponse HttpConnection::exchange(http::verb method, std::string_view target,
                                      std::string_view json_body) {
  if (!socket_) socket_.emplace(connect_socket());
  http::request<http::string_body> request{method, endpoint_.base_path + std::string(target), 11};
  request.set(http::field::host, endpoint_.host_header);
  request.set(http::field::user_agent, "nightshift-cli");
  request.set(http::field::accept, "application/json");
  if (!endpoint_.token.empty()) {
    request.set(http::field::authorization, "Bearer " + endpoint_.token);
  }
  if (!json_body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(json_body);
  }
  request.keep_alive(true);
  request.prepare_payload();
  http::write(*socket_, request);

  http::response_parser<http::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  http::read(*socket_, buffer_, parser);
  auto response = parser.release();
  HttpResponse result;
  result.status = response.result_int();
  result.body = std::move(response.body());
  if (auto retry = response.find(http::field::retry_after); retry != response.end()) {
    result.retry_after = std::string(retry->value());
  }
  if (!response.keep_alive()) close();
  return result;
}

}  // namespace nightshift::cli
