#include "bench_support.hpp"

#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <system_error>

namespace nightshift::bench {

namespace net = boost::asio;
namespace http = boost::beast::http;

net::ip::tcp::endpoint HostAddress::endpoint() const {
  net::io_context ioc;
  net::ip::tcp::resolver resolver(ioc);
  const auto results = resolver.resolve(host, std::to_string(port));
  if (results.empty()) throw std::runtime_error("cannot resolve host " + host);
  return results.begin()->endpoint();
}

HostAddress parse_host_url(const std::string& url, std::string token) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    throw std::invalid_argument("'" + url + "' is not a URL; give one like http://127.0.0.1:7733");
  }
  if (parsed->scheme() != "http") {
    throw std::invalid_argument("'" + url + "': only http:// hosts can be measured");
  }
  if (!parsed->has_port() || parsed->port_number() == 0) {
    throw std::invalid_argument("'" + url + "' has no port; give one like http://127.0.0.1:7733");
  }
  if (token.empty()) throw std::invalid_argument("the host's token is needed (--token)");
  HostAddress address;
  address.host = std::string(parsed->host_address());
  address.port = parsed->port_number();
  address.token = std::move(token);
  return address;
}

http::request<http::string_body> start_request(const HostAddress& host, const std::string& task) {
  http::request<http::string_body> request{http::verb::post, "/background-agents/start", 11};
  request.set(http::field::host, host.host_header());
  request.set(http::field::authorization, "Bearer " + host.token);
  request.set(http::field::content_type, "application/json");
  request.body() =
      boost::json::serialize(boost::json::object{{"agentId", "installed:echo"}, {"task", task}});
  request.prepare_payload();
  return request;
}

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(index, samples.size() - 1)];
}

std::string summarize_ms(const std::vector<double>& samples_ms) {
  char text[160];
  std::snprintf(text, sizeof text, "n=%zu p50=%.2f ms p99=%.2f ms max=%.2f ms", samples_ms.size(),
                percentile(samples_ms, 0.5), percentile(samples_ms, 0.99),
                percentile(samples_ms, 1.0));
  return text;
}

double milliseconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::uint64_t raise_open_file_limit(std::uint64_t needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw std::system_error(errno, std::generic_category(), "getrlimit(RLIMIT_NOFILE)");
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      throw std::system_error(errno, std::generic_category(), "setrlimit(RLIMIT_NOFILE)");
    }
  }
  if (limit.rlim_cur < needed) {
    throw std::runtime_error("this process may open only " + std::to_string(limit.rlim_cur) +
                             " files, " + std::to_string(needed) +
                             " are needed; raise the hard limit (ulimit -Hn) and run it again");
  }
  return limit.rlim_cur;
}

sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (const int error = pthread_sigmask(SIG_BLOCK, &signals, nullptr); error != 0) {
    throw std::system_error(error, std::generic_category(), "pthread_sigmask");
  }
  return signals;
}

}  // namespace nightshift::bench
