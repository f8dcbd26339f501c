// The host side of nightshift-bench-api: a real Host (the built-in echo and
// sleep agents, SQLite in a temporary directory) behind the API's Server on
// 127.0.0.1, with a history of finished runs, in its own process, so that the
// load programs (wrk, the WebSocket clients) never share its CPU time
// accounting or its threads.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace nightshift::bench {

struct BenchServerOptions {
  std::filesystem::path agents_dir;  // where the built echo agent is
  std::string token = "bench-token";
  std::size_t history = 50;  // finished echo runs made before serving
  // 0: the defaults of `nightshift serve` (api::ServerOptions, RunManagerOptions).
  std::size_t io_threads = 0;
  std::size_t worker_threads = 0;
  std::size_t max_concurrent = 0;
  std::size_t max_queued = 0;
  std::size_t max_connections = 8192;  // 1,000 WebSocket clients and wrk beside them
};

// Prints "URL TOKEN" on one line once the host answers, then serves until
// SIGINT or SIGTERM; then stops the server and the host gracefully and
// returns. Blocks those signals in every thread, so call it before any
// thread is started. Throws when the host cannot start.
void serve_until_signal(const BenchServerOptions& options);

}  // namespace nightshift::bench
