// The ceiling beside the WebSocket fan-out figure: a bare server, in its own
// process, that the same clients measure the same way. It upgrades every
// WebSocket request (Beast's handshake), sends a snapshot of the host's size,
// and answers each POST /background-agents/start at once with 201, then
// sends the run's three events (`started`, `updated`, `finished`, each of
// the size the host sends) to every client. No engine, no store, no JSON,
// no seq: what is left is the handshake, Asio and the kernel's TCP on this
// machine, which any host pays; the host's figure beside it shows what the
// rest costs.
//
// The bytes reach each client the cheapest way: a run's three events are
// handed to each client at once and leave in one write (whatever waits when
// a socket is free leaves in one gathered write), where a host publishes
// them one at a time, as the run goes.
#pragma once

#include <cstddef>

namespace nightshift::bench {

struct BareFanoutOptions {
  std::size_t io_threads = 2;              // as many as the host's I/O threads by default
  std::size_t snapshot_bytes = 32 * 1024;  // the host's snapshot with 50 finished runs
  std::size_t event_bytes = 660;           // a `run` message of an echo run
};

// Prints "URL TOKEN" on one line once it listens on 127.0.0.1 (any token is
// taken), then serves until SIGINT or SIGTERM. Call it before any thread is
// started (it blocks those signals for every thread).
void serve_bare_fanout_until_signal(const BareFanoutOptions& options);

}  // namespace nightshift::bench
