// The WebSocket fan-out figure, measured from the client's side in a process
// of its own: N clients connected to /background-agent-ws of a host, R echo
// runs started through POST /background-agents/start, and for every (client,
// run) the delay from the moment the start request was sent to the moment
// that client read the run's `started` event.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "bench_support.hpp"

namespace nightshift::bench {

struct WsFanoutOptions {
  HostAddress host;
  std::size_t clients = 1000;
  std::size_t runs = 50;
  std::size_t threads = 2;                    // reader threads, each with its share of the clients
  std::chrono::milliseconds spacing{20};      // between two starts
  std::chrono::milliseconds deadline{30000};  // for every event to arrive after the last start
};

struct WsFanoutResult {
  std::size_t clients_connected = 0;
  std::size_t clients_lost = 0;   // closed or failed before every event arrived
  std::size_t expected = 0;       // clients_connected * runs
  std::vector<double> delays_ms;  // one per (client, run) that arrived
  // Per run: the delay until the last client had its `started`.
  std::vector<double> last_client_ms;
};

// Connects the clients, waits until each has its snapshot, starts the runs,
// and collects every delay. Throws when the host cannot be reached or refuses
// a start.
WsFanoutResult measure_ws_fanout(const WsFanoutOptions& options);

}  // namespace nightshift::bench
