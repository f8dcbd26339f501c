// nightshift-bench-isolation: process isolation's figures, each printed
// beside a ceiling this program measures on the same machine in the same run.
//
//   nightshift-bench-isolation [--quick] [--no-spawner] [--only PHASE] [--agents-dir DIR]
//                              [--test-agents-dir DIR]
//
// Figures (the real engine, built as a nightshift::Host with every run forced
// into its own nightshift-worker process, a SQLite file in a temporary dir):
//   - no-op (echo) runs per second (ceiling: fork+exec+wait of /bin/true per
//     second from as many threads as there are cores);
//   - start -> running p99, and start -> the agent's first log entry p99
//     (echo, whose first act is to log; ceiling: p99 of one fork+exec+wait
//     of /bin/true);
//   - proportional set size (PSS) per sleeping run, summed over the run's
//     processes (ceiling: PSS of one bare sleeping process, /bin/sleep);
//   - stop of a spinning agent -> cancelled, p99 (target: the stop grace plus
//     100 ms, the grace being when the host sends SIGTERM).
// Nothing here is asserted: the figures are for people to read.
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host.hpp"

namespace nightshift::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(index, samples.size() - 1)];
}

void print_figure(const std::string& name, double value, const std::string& unit,
                  const std::string& target, const std::string& ceiling) {
  std::printf("%s: %.*f %s (target %s; ceiling %s)\n", name.c_str(), value < 10 ? 2 : 1, value,
              unit.c_str(), target.c_str(), ceiling.c_str());
  std::fflush(stdout);
}

std::string number(double value, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f %s", value < 10 ? 2 : 1, value, unit);
  return buf;
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("nightshift-bench-iso-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ---- ceilings ----

pid_t spawn(const char* program, const char* arg) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(program, program, arg, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

void fork_exec_true() {
  const pid_t pid = spawn("/bin/true", nullptr);
  if (pid > 0) ::waitpid(pid, nullptr, 0);
}

double fork_exec_per_second(double seconds, unsigned threads) {
  std::atomic<std::uint64_t> done{0};
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (seconds_since(start) < seconds) {
        fork_exec_true();
        done.fetch_add(1);
      }
    });
  }
  for (auto& w : workers) w.join();
  return static_cast<double>(done.load()) / seconds_since(start);
}

double fork_exec_p99_ms(int samples) {
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    const auto start = Clock::now();
    fork_exec_true();
    ms.push_back(ms_since(start));
  }
  return percentile(ms, 0.99);
}

// Pss of one process, in KiB (0 when it is gone).
double pss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  while (in >> key) {
    if (key == "Pss:") {
      double kib = 0;
      in >> kib;
      return kib;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(parent) + "/task")) {
    std::ifstream in(task.path() / "children");
    for (pid_t pid; in >> pid;) out.push_back(pid);
  }
  return out;
}

// Every process below `parent`.
std::vector<pid_t> descendants_of(pid_t parent) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo{parent};
  while (!todo.empty()) {
    const pid_t next = todo.back();
    todo.pop_back();
    for (pid_t child : children_of(next)) {
      out.push_back(child);
      todo.push_back(child);
    }
  }
  return out;
}

double bare_sleeper_pss_mib(int count) {
  std::vector<pid_t> pids;
  for (int i = 0; i < count; ++i) pids.push_back(spawn("/bin/sleep", "3600"));
  std::this_thread::sleep_for(300ms);  // let them exec
  double kib = 0;
  for (pid_t pid : pids) kib += pss_kib(pid);
  for (pid_t pid : pids) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return kib / 1024.0 / count;
}

// ---- the engine ----

// --no-spawner: each run's worker is started with posix_spawn, as before
// the process spawner, for comparison.
bool use_spawner = true;

struct Engine {
  Engine(const std::filesystem::path& data_dir, std::vector<std::filesystem::path> agent_dirs,
         RunManagerOptions options)
      : host(host_options(data_dir, std::move(agent_dirs), std::move(options))) {}

  static HostOptions host_options(const std::filesystem::path& data_dir,
                                  std::vector<std::filesystem::path> agent_dirs,
                                  RunManagerOptions options) {
    HostOptions o;
    o.data_dir = data_dir;
    o.workspace = data_dir / "workspace";
    o.installed_agent_dirs = std::move(agent_dirs);
    o.runs = std::move(options);
    o.runs.force_process_isolation = true;
    o.runs.process_spawner = use_spawner;
    return o;
  }
  Run start(const std::string& agent, boost::json::object params = {}) {
    return host.runs().start(StartRequest{agent, std::nullopt, std::move(params)});
  }
  Host host;
};

double noop_runs_per_second(const std::vector<std::filesystem::path>& dirs, int total,
                            int starters) {
  TempDir dir;
  RunManagerOptions options;
  options.max_concurrent = 64;
  Engine engine(dir.path(), dirs, options);
  std::vector<std::vector<std::string>> ids(static_cast<std::size_t>(starters));
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < starters; ++s) {
    threads.emplace_back([&, s] {
      for (int i = s; i < total; i += starters) {
        ids[static_cast<std::size_t>(s)].push_back(engine.start("installed:echo").instance_id);
      }
    });
  }
  for (auto& t : threads) t.join();
  int failed = 0;
  for (const auto& list : ids) {
    for (const std::string& id : list) {
      const auto run = engine.host.runs().wait(id, 120s);
      if (!run || run->status != RunStatus::completed) ++failed;
    }
  }
  const double rate = total / seconds_since(start);
  if (failed > 0) std::printf("  (%d of %d no-op runs did not complete)\n", failed, total);
  return rate;
}

// Start -> running (the record) and start -> the first log entry (agent code ran).
void start_latencies(const std::vector<std::filesystem::path>& dirs, int samples,
                     std::vector<double>& to_running, std::vector<double>& to_first_log) {
  TempDir dir;
  Engine engine(dir.path(), dirs, RunManagerOptions{});
  RunManager& runs = engine.host.runs();
  for (int i = 0; i < samples; ++i) {
    const auto start = Clock::now();
    // echo logs its task at once: its first entry is the agent's first act.
    const Run run = engine.host.runs().start(StartRequest{"installed:echo", "x", {}});
    bool running = false;
    for (;;) {
      const auto now = runs.get(run.instance_id);
      if (!running && now && now->status != RunStatus::queued) {
        running = true;
        to_running.push_back(ms_since(start));
      }
      if (now && now->log_count > 0) {
        to_first_log.push_back(ms_since(start));
        break;
      }
      if (seconds_since(start) > 30) break;
      std::this_thread::sleep_for(100us);
    }
    runs.wait(run.instance_id, 30s);
  }
}

double sleeping_run_pss_mib(const std::vector<std::filesystem::path>& dirs, int count) {
  TempDir dir;
  RunManagerOptions options;
  options.max_concurrent = static_cast<std::size_t>(count);
  Engine engine(dir.path(), dirs, options);
  RunManager& runs = engine.host.runs();
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    ids.push_back(engine.start("installed:sleep", {{"seconds", 3600}}).instance_id);
  }
  // Each agent process has logged its first tick: all of them are up.
  const auto deadline = Clock::now() + 300s;
  for (const std::string& id : ids) {
    while (Clock::now() < deadline) {
      const auto run = runs.get(id);
      if (run && run->log_count > 0) break;
      std::this_thread::sleep_for(5ms);
    }
  }
  double kib = 0;
  for (pid_t pid : descendants_of(::getpid())) kib += pss_kib(pid);
  engine.host.shutdown(10s);
  return kib / 1024.0 / count;
}

std::vector<double> spinner_stop_ms(const std::vector<std::filesystem::path>& dirs, int samples,
                                    std::chrono::milliseconds grace) {
  TempDir dir;
  RunManagerOptions options;
  options.stop_grace = grace;
  Engine engine(dir.path(), dirs, options);
  RunManager& runs = engine.host.runs();
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    const Run run = engine.start("installed:iso-misbehave", {{"mode", "burn"}});
    // Spinning once it has said so. Read from its entries: a running
    // record's log_count is not raised until the record is written again,
    // which a spinner never makes happen (waiting on it cost 30 s a sample).
    const auto up = Clock::now();
    while (seconds_since(up) < 30) {
      bool burning = false;
      for (const LogEntry& entry : runs.logs(run.instance_id, 0, 10).entries) {
        burning = burning || entry.message == "burning";
      }
      if (burning) break;
      std::this_thread::sleep_for(1ms);
    }
    const auto start = Clock::now();
    runs.stop(run.instance_id);
    const auto done = runs.wait(run.instance_id, 60s);
    if (done && done->status == RunStatus::cancelled) ms.push_back(ms_since(start));
  }
  return ms;
}

int run(bool quick, const std::string& only, const std::filesystem::path& agents_dir,
        const std::filesystem::path& test_agents_dir) {
  const auto phase = [&](const char* name) { return only.empty() || only == name; };
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("nightshift-bench-isolation%s%s: %u cores\n", quick ? " (quick)" : "",
              use_spawner ? "" : " (no spawner)", cores);
  const std::vector<std::filesystem::path> dirs{agents_dir, test_agents_dir};

  if (phase("noop")) {
    const double fork_rate = fork_exec_per_second(quick ? 0.5 : 2.0, cores);
    const double noop_rate = noop_runs_per_second(dirs, quick ? 200 : 3000, 4);
    print_figure("no-op runs in process isolation", noop_rate, "runs/s",
                 ">= 65% of the ceiling (" + number(0.65 * fork_rate, "runs/s") + ")",
                 number(fork_rate, "fork+exec of /bin/true per second"));
  }

  if (phase("latency")) {
    const double fork_p99 = fork_exec_p99_ms(quick ? 100 : 1000);
    std::vector<double> to_running, to_first_log;
    start_latencies(dirs, quick ? 20 : 200, to_running, to_first_log);
    print_figure("start -> running p99", percentile(to_running, 0.99), "ms", "<= 5 ms",
                 number(fork_p99, "ms, fork+exec+wait of /bin/true p99"));
    print_figure("start -> agent's first log entry p99", percentile(to_first_log, 0.99), "ms",
                 "none (includes the store's batching)",
                 number(fork_p99, "ms, fork+exec+wait of /bin/true p99"));
  }

  if (phase("pss")) {
    const int sleepers = quick ? 50 : 1000;
    const double bare_pss = bare_sleeper_pss_mib(quick ? 20 : 100);
    const double run_pss = sleeping_run_pss_mib(dirs, sleepers);
    print_figure("PSS per sleeping run (" + std::to_string(sleepers) + " at once)", run_pss, "MiB",
                 "<= 1 MiB", number(bare_pss, "MiB, one bare sleeping process"));
  }

  if (phase("stop")) {
    const auto grace = 500ms;
    const auto stops = spinner_stop_ms(dirs, quick ? 3 : 20, grace);
    print_figure("stop of a spinning agent -> cancelled p99", percentile(stops, 0.99), "ms",
                 "<= the grace + 100 ms (" + std::to_string(grace.count() + 100) + " ms)",
                 std::to_string(grace.count()) + " ms, the stop grace");
  }
  return 0;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) {
  CLI::App app("nightshift-bench-isolation: process isolation's figures beside the machine's");
  bool quick = false;
  std::string agents_dir = NIGHTSHIFT_BUILD_AGENTS_DIR;
  std::string test_agents_dir = NIGHTSHIFT_ISO_TEST_AGENTS_DIR;
  app.add_flag("--quick", quick, "a short smoke run with smaller counts");
  bool no_spawner = false;
  std::string only;
  app.add_option("--only", only, "one phase: noop, latency, pss or stop")
      ->check(CLI::IsMember({"noop", "latency", "pss", "stop"}));
  app.add_flag("--no-spawner", no_spawner,
               "start each run's worker with posix_spawn instead of the process spawner");
  app.add_option("--agents-dir", agents_dir, "where the built-in agents are")
      ->capture_default_str();
  app.add_option("--test-agents-dir", test_agents_dir, "where iso-misbehave (the spinner) is")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  nightshift::bench::use_spawner = !no_spawner;
  try {
    return nightshift::bench::run(quick, only, agents_dir, test_agents_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nightshift-bench-isolation: %s\n", e.what());
    return 1;
  }
}
