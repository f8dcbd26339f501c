// nightshift-bench-api: the API's load program (run by hand through run.sh,
// never a test). The host and the load run in different processes:
//
//   nightshift-bench-api serve [--io-threads N ...]
//       a real host on 127.0.0.1 with a history of 50 finished echo runs;
//       prints "URL TOKEN" and serves until SIGINT/SIGTERM
//   nightshift-bench-api serve-bare [--io-threads N]
//       the ceiling of ws-fanout: a bare WebSocket fan-out server (no engine,
//       no store) that the same clients measure; prints "URL TOKEN"
//   nightshift-bench-api ws-fanout --url URL --token T [--clients 1000 --runs 50]
//       WebSocket clients in this process; prints the delay from each start
//       request to each client's `started` event
//   nightshift-bench-api start-latency --url URL --token T [--rate 1000 --seconds 5]
//       paced starts on one connection; prints their latency
//
// Lines "NAME VALUE" at the end of each client mode are for run.sh.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "bare_fanout.hpp"
#include "bench_server.hpp"
#include "start_latency.hpp"
#include "ws_fanout.hpp"

namespace nightshift::bench {
namespace {

struct ClientOptions {
  std::string url;
  std::string token;
};

void add_host_options(CLI::App& command, ClientOptions& options) {
  command.add_option("--url", options.url, "the host, e.g. http://127.0.0.1:7733")->required();
  command.add_option("--token", options.token, "the host's bearer token")
      ->envname("NIGHTSHIFT_TOKEN")
      ->required();
}

void report_ws_fanout(const WsFanoutOptions& options, const WsFanoutResult& result) {
  const bool complete = result.delays_ms.size() == result.expected;
  std::printf(
      "WebSocket: %zu of %zu clients connected (%zu lost), %zu runs: %zu of %zu `started`"
      " events read%s\n",
      result.clients_connected, options.clients, result.clients_lost, options.runs,
      result.delays_ms.size(), result.expected, complete ? "" : " (SOME MISSING)");
  std::printf("start request -> `started` on a client:        %s\n",
              summarize_ms(result.delays_ms).c_str());
  std::printf("start request -> `started` on its last client: %s\n",
              summarize_ms(result.last_client_ms).c_str());
  std::printf("ws_fanout_p99_ms %.3f\nws_fanout_complete %d\n", percentile(result.delays_ms, 0.99),
              complete ? 1 : 0);
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) {
  using namespace nightshift::bench;
  CLI::App app{"Nightshift API benchmark: a host to load, and the clients that load it"};
  app.require_subcommand(1);

  BenchServerOptions serve;
  serve.agents_dir = NIGHTSHIFT_BUILD_AGENTS_DIR;
  auto* serve_command = app.add_subcommand("serve", "serve a bench host until SIGINT/SIGTERM");
  serve_command->add_option("--agents-dir", serve.agents_dir, "where the built echo agent is");
  serve_command->add_option("--history", serve.history, "finished runs made before serving");
  serve_command->add_option("--io-threads", serve.io_threads,
                            "HTTP/WebSocket threads (0: default)");
  serve_command->add_option("--worker-threads", serve.worker_threads,
                            "threads for handlers that wait (0: default)");
  serve_command->add_option("--max-concurrent", serve.max_concurrent,
                            "runs executing at once (0: default)");
  serve_command->add_option("--max-queued", serve.max_queued,
                            "runs waiting for a slot (0: default)");

  BareFanoutOptions bare;
  auto* bare_command = app.add_subcommand(
      "serve-bare",
      "the ceiling of ws-fanout: a bare WebSocket fan-out server, until SIGINT/SIGTERM");
  bare_command->add_option("--io-threads", bare.io_threads, "its threads")
      ->check(CLI::Range(1, 64));

  ClientOptions fanout_host;
  WsFanoutOptions fanout;
  auto* fanout_command =
      app.add_subcommand("ws-fanout", "WebSocket clients: start request -> `started` delay");
  add_host_options(*fanout_command, fanout_host);
  fanout_command->add_option("--clients", fanout.clients, "WebSocket clients");
  fanout_command->add_option("--runs", fanout.runs, "runs started, 20 ms apart");
  fanout_command->add_option("--threads", fanout.threads, "the clients' threads");

  ClientOptions latency_host;
  StartLatencyOptions latency;
  std::size_t latency_seconds = 5;
  auto* latency_command =
      app.add_subcommand("start-latency", "paced starts on one connection: their latency");
  add_host_options(*latency_command, latency_host);
  latency_command->add_option("--rate", latency.rate, "starts per second");
  latency_command->add_option("--seconds", latency_seconds, "how long");

  CLI11_PARSE(app, argc, argv);
  try {
    if (serve_command->parsed()) {
      serve_until_signal(serve);
    } else if (bare_command->parsed()) {
      serve_bare_fanout_until_signal(bare);
    } else if (fanout_command->parsed()) {
      fanout.host = parse_host_url(fanout_host.url, fanout_host.token);
      report_ws_fanout(fanout, measure_ws_fanout(fanout));
    } else if (latency_command->parsed()) {
      latency.host = parse_host_url(latency_host.url, latency_host.token);
      latency.duration = std::chrono::seconds(latency_seconds);
      const auto samples = measure_start_latency(latency);
      std::printf("POST /background-agents/start at %zu/s: %s\n", latency.rate,
                  summarize_ms(samples).c_str());
      std::printf("start_latency_p99_ms %.3f\n", percentile(samples, 0.99));
    }
  } catch (const std::exception& error) {
    std::cerr << "nightshift-bench-api: " << error.what() << '\n';
    return 1;
  }
  return 0;
}
