// Fuzz target: the API's own HTTP handler from raw bytes: the request parsed
// as a session parses it (the server's header and body limits), then handed
// to HttpApi with everything behind it real: the host check, authentication,
// the router, query parsing, start and message bodies, and the engine and
// SQLite store of a Host in a temporary directory (with no agents, so a start
// that passes validation is refused as an unknown agent rather than run).
// Whatever comes in, exactly one answer comes out, it is never a 500, and a
// JSON answer is JSON.
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "api/http_api.hpp"
#include "fuzz_check.hpp"
#include "host.hpp"

namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

constexpr const char* kToken = "fuzz-token";

nightshift::HostOptions host_options() {
  std::string dir =
      (std::filesystem::temp_directory_path() / "nightshift-api-fuzz-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) nightshift::fuzz::fail("cannot make a temporary directory");
  nightshift::HostOptions options;
  options.data_dir = std::filesystem::path(dir) / "data";
  options.workspace = std::filesystem::path(dir) / "workspace";
  std::filesystem::create_directories(options.workspace);
  return options;
}

nightshift::api::ServerOptions server_options() {
  nightshift::api::ServerOptions options;
  options.listen_host = "127.0.0.1";
  options.token = kToken;
  return options;
}

// Built once and kept for the whole fuzzing run (libFuzzer ends the process).
struct Api {
  nightshift::Host host{host_options()};
  nightshift::api::ServerOptions options = server_options();
  nightshift::api::HistoryCache history;
  nightshift::api::Metrics metrics;
  net::thread_pool pool{1};
  nightshift::api::HttpApi api{options,           true,    host.runs(), host.catalog(),
                               host.automation(), history, metrics,     pool};
  net::io_context ioc;
};

Api& api() {
  static Api* const instance = new Api();
  return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Api& fixture = api();
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(fixture.options.max_header_bytes));
  parser.body_limit(fixture.options.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code error;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    const std::size_t consumed = parser.put(net::buffer(data + used, size - used), error);
    if (error == http::error::need_more) break;
    if (error) return 0;  // the session answers 400 itself; HttpApi never sees it
    if (consumed == 0) break;
    used += consumed;
  }
  if (!parser.is_done()) {
    parser.put_eof(error);
    if (error || !parser.is_done()) return 0;
  }
  auto request = std::make_shared<const nightshift::api::Request>(parser.release());

  std::optional<nightshift::api::Response> answer;
  int answers = 0;
  fixture.api.handle(request, fixture.ioc.get_executor(), [&](nightshift::api::Response response) {
    ++answers;
    answer = std::move(response);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!answer && std::chrono::steady_clock::now() < deadline) {
    fixture.ioc.restart();
    fixture.ioc.run_for(std::chrono::milliseconds(5));
  }
  if (!answer) nightshift::fuzz::fail("no answer within 10 s");
  fixture.ioc.restart();
  fixture.ioc.poll();
  if (answers != 1) nightshift::fuzz::fail("more than one answer to one request");
  const std::string body = answer->body().str();
  if (answer->result_int() == 500) {
    std::fprintf(stderr, "500 for %s %s: %s\n", std::string(request->method_string()).c_str(),
                 std::string(request->target()).c_str(), body.c_str());
    nightshift::fuzz::fail("a request got 500 internal_error");
  }
  if ((*answer)[http::field::content_type] == "application/json" && !body.empty()) {
    boost::json::parse(body, error);
    if (error) nightshift::fuzz::fail("a JSON answer that is not JSON");
  }
  return 0;
}
