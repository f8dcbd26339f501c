// Fuzz target: an HTTP request from raw bytes, the way the API reads one:
// Boost.Beast's request parser (with the server's header and body limits),
// the target as an origin-form URL with its query, and the body as JSON
// with the checks a start makes (numbers as written, then params). It
// stands in for the API's own handler until that can be driven without a
// socket.
#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <cstddef>
#include <cstdint>

#include "catalog/json_numbers.hpp"
#include "catalog/param_schema.hpp"
#include "fuzz_check.hpp"

namespace http = boost::beast::http;
namespace json = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1024 * 1024);
  parser.eager(true);
  boost::beast::error_code error;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    const std::size_t consumed = parser.put(boost::asio::buffer(data + used, size - used), error);
    if (error == http::error::need_more) break;
    if (error) return 0;
    if (consumed == 0) break;
    used += consumed;
  }
  if (!parser.is_done()) {
    parser.put_eof(error);
    if (error || !parser.is_done()) return 0;
  }
  const http::request<http::string_body>& request = parser.get();

  auto target = boost::urls::parse_origin_form(request.target());
  if (target) {
    for (const auto& param : target->params()) {
      (void)param.key.size();
      (void)param.value.size();
    }
    (void)target->encoded_path();
    for (const auto& segment : target->segments()) (void)segment.size();
  }

  // The body as a start reads it: its numbers checked as written, then
  // parsed. A body whose numbers pass holds no number JSON cannot carry.
  const auto inexact = nightshift::find_inexact_number(request.body());
  json::value body = json::parse(request.body(), error);
  if (!error && !inexact) nightshift::fuzz::expect_storable(body, "a body whose numbers passed");
  if (!error && body.is_object()) {
    if (const json::value* params = body.get_object().if_contains("params")) {
      if (!nightshift::find_non_finite_number(*params, "params")) {
        nightshift::fuzz::expect_storable(*params, "params that passed the check");
      }
    }
  }
  return 0;
}
