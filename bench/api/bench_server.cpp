#include "bench_server.hpp"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <random>
#include <system_error>

#include "api/server.hpp"
#include "bench_support.hpp"
#include "host.hpp"

namespace nightshift::bench {

namespace {

// The host's data and workspace, removed when the bench stops serving.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("nightshift-bench-api-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path_ / "workspace");
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

HostOptions host_options(const BenchServerOptions& options, const ScratchDir& dir) {
  HostOptions host;
  host.data_dir = dir.path() / "data";
  host.workspace = dir.path() / "workspace";
  host.installed_agent_dirs = {options.agents_dir};
  if (options.max_concurrent > 0) host.runs.max_concurrent = options.max_concurrent;
  if (options.max_queued > 0) host.runs.max_queued = options.max_queued;
  return host;
}

api::ServerOptions server_options(const BenchServerOptions& options) {
  api::ServerOptions server;
  server.listen_host = "127.0.0.1";
  server.port = 0;
  server.token = options.token;
  if (options.io_threads > 0) server.io_threads = options.io_threads;
  if (options.worker_threads > 0) server.worker_threads = options.worker_threads;
  server.max_connections = options.max_connections;
  return server;
}

// Finished runs, so that GET /background-agents and every WebSocket snapshot
// carry a history page of the usual size.
void make_history(Host& host, std::size_t runs) {
  for (std::size_t i = 0; i < runs; ++i) {
    const auto run = host.runs().start({"installed:echo", "history " + std::to_string(i), {}});
    if (!host.runs().wait(run.instance_id, std::chrono::seconds(30))) {
      throw std::runtime_error("the echo run " + run.instance_id + " did not finish in 30 s");
    }
  }
}

}  // namespace

void serve_until_signal(const BenchServerOptions& options) {
  const sigset_t signals = block_stop_signals();
  ScratchDir dir;
  Host host(host_options(options, dir));
  make_history(host, options.history);
  api::Server server(server_options(options), host);
  server.start();
  const auto endpoint = server.local_endpoint();
  std::cout << "http://" << endpoint.address().to_string() << ':' << endpoint.port() << ' '
            << options.token << std::endl;

  int signal = 0;
  sigwait(&signals, &signal);
  server.stop_accepting();
  host.shutdown(host.options().runs.stop_grace);
  server.stop();
}

}  // namespace nightshift::bench
