// What the client modes of nightshift-bench-api share: the host they load (a
// URL and a token), latency summaries, and the open-file limit that 1,000
// sockets need.
#pragma once

#include <signal.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace nightshift::bench {

using Clock = std::chrono::steady_clock;

// A Nightshift host as the client modes reach it.
struct HostAddress {
  std::string host;  // as written in the URL, sent as the Host header
  std::uint16_t port = 0;
  std::string token;
  // Resolves `host`; throws when it cannot be resolved.
  boost::asio::ip::tcp::endpoint endpoint() const;
  std::string host_header() const { return host + ":" + std::to_string(port); }
};

// Parses "http://HOST:PORT" (a path is ignored). Throws std::invalid_argument
// saying what is wrong, e.g. for https or a missing port.
HostAddress parse_host_url(const std::string& url, std::string token);

// A POST /background-agents/start of the echo agent with `task`.
boost::beast::http::request<boost::beast::http::string_body> start_request(const HostAddress& host,
                                                                           const std::string& task);

// Sorted-sample percentile, p in [0, 1]; 0 for no samples.
double percentile(std::vector<double> samples, double p);

// "n=... p50=... ms p99=... ms max=... ms".
std::string summarize_ms(const std::vector<double>& samples_ms);

double milliseconds_between(Clock::time_point from, Clock::time_point to);

// Raises the soft limit of open files to the hard limit and returns the new
// soft limit; throws when it stays below `needed`, saying how to raise it.
std::uint64_t raise_open_file_limit(std::uint64_t needed);

// Blocks SIGINT and SIGTERM in this thread and returns them, for sigwait.
// Call it before any thread is started, so that every thread inherits the
// mask and sigwait is the only place the signals are taken. Throws when the
// mask cannot be set.
sigset_t block_stop_signals();

}  // namespace nightshift::bench
