#include "start_latency.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace nightshift::bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::vector<double> measure_start_latency(const StartLatencyOptions& options) {
  if (options.rate == 0) throw std::invalid_argument("the rate must be at least 1 per second");
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(options.host.endpoint());
  stream.socket().set_option(net::ip::tcp::no_delay(true));
  const auto request = start_request(options.host, "start-latency");
  beast::flat_buffer buffer;
  const auto count = options.rate * static_cast<std::size_t>(options.duration.count());
  const auto interval = std::chrono::nanoseconds(1'000'000'000 / options.rate);
  std::vector<double> latencies;
  latencies.reserve(count);
  auto next = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    std::this_thread::sleep_until(next);
    next += interval;
    const auto sent = Clock::now();
    http::write(stream, request);
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    latencies.push_back(milliseconds_between(sent, Clock::now()));
    if (response.result() != http::status::created) {
      throw std::runtime_error("the host refused a start: " +
                               std::to_string(response.result_int()) + " " + response.body());
    }
  }
  return latencies;
}

}  // namespace nightshift::bench
