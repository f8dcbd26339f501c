// An API failure that the HTTP layer turns into the error body of api.md:
// {"error": {"code": "...", "message": "..."}} with the given status.
#pragma once

#include <boost/beast/http/status.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace nightshift::api {

class ApiError : public std::runtime_error {
 public:
  using Header = std::pair<std::string, std::string>;

  ApiError(boost::beast::http::status status, std::string code, const std::string& message,
           std::vector<Header> headers = {})
      : std::runtime_error(message),
        status_(status),
        code_(std::move(code)),
        headers_(std::move(headers)) {}

  boost::beast::http::status status() const noexcept { return status_; }
  const std::string& code() const noexcept { return code_; }
  // Extra response headers, e.g. Retry-After for 503 or Allow for 405.
  const std::vector<Header>& headers() const noexcept { return headers_; }

 private:
  boost::beast::http::status status_;
  std::string code_;
  std::vector<Header> headers_;
};

}  // namespace nightshift::api
