// A small HTTP/1.1 client for one model server (Boost.Beast over Asio, TLS
// with OpenSSL): POSTs a request and hands a successful answer's body over
// piece by piece as it arrives, so an SSE stream is parsed while it streams.
//
// Every request runs on an io_context of its own on the calling thread; a
// timer looks at `cancelled` every few tens of milliseconds and closes the
// connection at once when it says so, and enforces the request's deadline.
// HTTPS verifies the server's certificate against the system's CA
// certificates (OpenSSL's default paths, which SSL_CERT_FILE and
// SSL_CERT_DIR can change) and its host name, and sends SNI.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift::llm {

// Where the server is: parsed from the baseUrl param.
struct Endpoint {
  bool tls = false;
  std::string host;       // a name or an address (IPv6 without brackets)
  std::string port;       // always set (80 / 443 by default)
  std::string base_path;  // the URL's path without a trailing '/', e.g. "/v1"
  std::string display;    // scheme://host:port/path, for messages (no user info, no query)

  // Throws std::invalid_argument saying what is wrong with the URL.
  static Endpoint parse(std::string_view url);
};

struct HttpHeader {
  std::string name;
  std::string value;
};

enum class HttpFailure {
  none,            // an answer came (any status)
  cancelled,       // `cancelled` said so; the request was aborted
  timed_out,       // the deadline passed
  connect_failed,  // name resolution or TCP connect failed
  tls_failed,      // the TLS handshake failed (e.g. the certificate was refused)
  dropped,         // the connection failed or closed before the answer was complete
};

struct HttpResult {
  HttpFailure failure = HttpFailure::none;
  std::string failure_text;  // what went wrong, when failure != none
  int status = 0;            // 0 when no status line came
  std::string retry_after;   // the Retry-After header, if any
  std::string content_type;
  std::string body;  // a body that was not handed to on_body (at most 64 KiB of it)
};

class HttpClient {
 public:
  HttpClient(Endpoint endpoint, std::function<bool()> cancelled);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const Endpoint& endpoint() const noexcept;

  // POSTs `body` (JSON) to `target`. A 2xx answer's body goes to on_body as
  // it arrives (its Content-Type is already in the result passed by
  // reference to on_header first); any other answer's body is collected in
  // the result. An exception thrown by a callback aborts the request and
  // propagates.
  HttpResult post(const std::string& target, const std::string& body,
                  const std::vector<HttpHeader>& headers, std::chrono::milliseconds timeout,
                  const std::function<void(const HttpResult&)>& on_header,
                  const std::function<void(std::string_view)>& on_body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nightshift::llm
