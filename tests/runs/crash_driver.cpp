// A real engine in a process of its own, for the crash test: over the data
// directory it is given, it starts runs of the log-flooding test agent, says
// "runs going: N" on standard output once entries of every run are
// committed (2,000 entries of each run), and keeps going until it is killed.
//
//   nightshift_runs_crash_driver DATA_DIR RUNS AGENTS_DIR...
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "engine_fixture.hpp"

namespace {

bool every_run_has_committed_logs(nightshift::Store& store, const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    if (store.read_logs(id, 1999, 1).empty()) return false;  // 2,000 entries committed
  }
  return true;
}

int drive(const std::filesystem::path& data_dir, int runs,
          std::vector<std::filesystem::path> agent_dirs) {
  using namespace nightshift;
  RunManagerOptions options;
  options.log_max_entries = 1u << 30;
  options.log_max_bytes = std::size_t{1} << 40;
  HostOptions host_options = testing::engine_options(data_dir, std::move(agent_dirs), options);
  host_options.store_read_connections = 2;
  Host host(std::move(host_options));
  RunManager& manager = host.runs();
  Store& store = host.store();

  std::vector<std::string> ids;
  for (int i = 0; i < runs; ++i) {
    boost::json::object params{{"count", 0}, {"size", 48}, {"pauseEvery", 50}};
    ids.push_back(
        manager.start(StartRequest{"installed:runs-flood", std::nullopt, params}).instance_id);
  }
  while (!every_run_has_committed_logs(store, ids)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::printf("runs going: %d\n", runs);
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // until SIGKILL
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s DATA_DIR RUNS AGENTS_DIR...\n", argv[0]);
    return 2;
  }
  try {
    return drive(argv[1], std::stoi(argv[2]),
                 std::vector<std::filesystem::path>(argv + 3, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash driver: %s\n", e.what());
    return 1;
  }
}
