// The latency of one start at a time: POST /background-agents/start paced at
// a fixed rate on one keep-alive connection, each request timed from the
// moment it is written to the moment its whole 201 response is read.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "bench_support.hpp"

namespace nightshift::bench {

struct StartLatencyOptions {
  HostAddress host;
  std::size_t rate = 1000;  // starts per second
  std::chrono::seconds duration{5};
};

// One sample per start, in milliseconds. Throws when a start is refused.
std::vector<double> measure_start_latency(const StartLatencyOptions& options);

}  // namespace nightshift::bench
