// nightshift-bench-hosts: the engine on a PostgreSQL store, beside the
// SQLite figure of the same run on the same machine.
//
//   nightshift-bench-hosts [--quick] [--runs N] [--agents-dir DIR]
//                          [--starters N] [--pg-setting NAME=VALUE]...
//
// It starts a private PostgreSQL server (as tests/support/postgres_server.hpp
// does: initdb in a temporary directory, its own socket directory) with the
// durable settings of a real deployment: fsync, synchronous_commit and
// full_page_writes on (every commit is flushed before it is answered), and
// shared_buffers=256MB. --pg-setting adds or overrides a server setting (e.g.
// synchronous_commit=off, to compare); the settings are printed. It measures,
// with the built-in echo agent:
//   - echo runs started, executed and committed per second on one host, with
//     SQLite and with PostgreSQL;
//   - the same with two hosts on one PostgreSQL database (the starts split
//     between them; either host may execute any run);
//   - claim latency: from a run's createdAt to its startedAt (queued, then
//     claimed and begun on a worker), p50 and p99.
// The figures are printed, never asserted.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "host.hpp"
#include "postgres_server.hpp"
#include "store/store.hpp"

namespace nightshift::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

HostOptions host_options(const std::filesystem::path& dir, const std::filesystem::path& agents,
                         const std::string& store, const std::string& name, int total) {
  HostOptions o;
  o.data_dir = dir / name;
  o.workspace = dir;
  o.installed_agent_dirs = {agents};
  o.user_remix_dir = dir / "user-remix";
  o.store = store;
  o.host_name = name;
  o.runs.max_concurrent = 64;
  o.runs.max_queued = static_cast<std::size_t>(total) + 1;
  return o;
}

struct Figures {
  double runs_per_second = 0;
  double claim_p50_ms = 0;
  double claim_p99_ms = 0;
};

// `total` echo runs started from `starters` threads spread over `hosts` (each
// waits for its start to be answered, i.e. committed, before the next),
// counted once every one is executed and its final record committed.
Figures echo_runs(std::vector<std::unique_ptr<Host>>& hosts, int total, int starters) {
  std::vector<std::vector<std::string>> ids(static_cast<std::size_t>(starters));
  std::atomic<int> refused{0};
  const auto start = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (int s = 0; s < starters; ++s) {
      threads.emplace_back([&, s] {
        RunManager& runs = hosts[static_cast<std::size_t>(s) % hosts.size()]->runs();
        for (int i = s; i < total; i += starters) {
          try {
            ids[static_cast<std::size_t>(s)].push_back(
                runs.start(StartRequest{"installed:echo", std::nullopt, {}}).instance_id);
          } catch (const std::exception&) {
            refused.fetch_add(1);
          }
        }
      });
    }
  }
  const double starts_secs = seconds_since(start);
  const auto expected = static_cast<std::uint64_t>(total - refused.load());
  const auto executed = [&] {
    std::uint64_t done = 0;
    for (const auto& host : hosts) done += host->runs().stats().completed;
    return done;
  };
  const auto deadline = Clock::now() + 600s;
  while (executed() < expected && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  Figures figures;
  figures.runs_per_second = static_cast<double>(executed()) / seconds_since(start);
  std::printf("  (%d starts returned after %.2f s, all executed after %.2f s%s)\n", total,
              starts_secs, seconds_since(start), refused.load() > 0 ? ", some starts refused" : "");
  std::vector<double> claims;
  for (const auto& list : ids) {
    for (const std::string& id : list) {
      const auto run = hosts.front()->store().get_run(id);
      if (run && run->started_at) {
        claims.push_back(static_cast<double>((*run->started_at - run->created_at).count()));
      }
    }
  }
  figures.claim_p50_ms = percentile(claims, 0.5);
  figures.claim_p99_ms = percentile(claims, 0.99);
  return figures;
}

void print(const char* name, const Figures& figures, const Figures* sqlite) {
  std::printf("%s: %.0f runs/s, queued to started p50 %.1f ms, p99 %.1f ms", name,
              figures.runs_per_second, figures.claim_p50_ms, figures.claim_p99_ms);
  if (sqlite != nullptr) {
    std::printf(" (SQLite, same run: %.0f runs/s, p99 %.1f ms)", sqlite->runs_per_second,
                sqlite->claim_p99_ms);
  }
  std::printf("\n");
}

int run(int total, int starters, const std::filesystem::path& agents,
        const std::vector<std::string>& settings) {
  std::printf(
      "nightshift-bench-hosts: %d echo runs per figure from %d starting threads, %u cores\n", total,
      starters, std::thread::hardware_concurrency());
  // The durable settings of a real deployment, then the caller's.
  std::vector<std::string> server_settings = {"fsync=on", "synchronous_commit=on",
                                              "full_page_writes=on", "shared_buffers=256MB"};
  server_settings.insert(server_settings.end(), settings.begin(), settings.end());
  testing::TempDir dir;
  Figures sqlite;
  {
    std::vector<std::unique_ptr<Host>> hosts;
    hosts.push_back(std::make_unique<Host>(host_options(dir.path(), agents, "", "sqlite", total)));
    sqlite = echo_runs(hosts, total, starters);
    print("SQLite, one host", sqlite, nullptr);
  }
  if (const auto missing = testing::PostgresServer::missing_binaries()) {
    std::printf("PostgreSQL figures skipped: %s\n", missing->c_str());
    return 0;
  }
  testing::PostgresServer::Options server;
  server.durable = true;
  std::string shown;
  for (const std::string& setting : server_settings) {
    server.extra_settings += (server.extra_settings.empty() ? "-c " : " -c ") + setting;
    shown += (shown.empty() ? "" : " ") + setting;
  }
  std::printf("PostgreSQL server settings: %s\n", shown.c_str());
  testing::PostgresServer postgres(server);
  {
    const std::string uri = postgres.uri(postgres.create_database());
    std::vector<std::unique_ptr<Host>> hosts;
    hosts.push_back(std::make_unique<Host>(host_options(dir.path(), agents, uri, "one", total)));
    const Figures one = echo_runs(hosts, total, starters);
    print("PostgreSQL, one host", one, &sqlite);
  }
  {
    const std::string uri = postgres.uri(postgres.create_database());
    std::vector<std::unique_ptr<Host>> hosts;
    hosts.push_back(std::make_unique<Host>(host_options(dir.path(), agents, uri, "a", total)));
    hosts.push_back(std::make_unique<Host>(host_options(dir.path(), agents, uri, "b", total)));
    const Figures two = echo_runs(hosts, total, starters);
    print("PostgreSQL, two hosts", two, &sqlite);
  }
  return 0;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) {
  CLI::App app{"The engine on a PostgreSQL store beside the SQLite store"};
  bool quick = false;
  int runs = 20000;
  std::string agents_dir = NIGHTSHIFT_BUILD_AGENTS_DIR;
  app.add_flag("--quick", quick, "a short smoke run (2,000 runs per figure)");
  app.add_option("--runs", runs, "echo runs per figure")->check(CLI::Range(1, 1000000));
  app.add_option("--agents-dir", agents_dir, "where the built-in agents are");
  int starters = 16;
  app.add_option("--starters", starters,
                 "threads starting runs, each waiting for its start to be answered (committed) "
                 "before the next")
      ->check(CLI::Range(1, 1024));
  std::vector<std::string> settings;
  app.add_option("--pg-setting", settings,
                 "a PostgreSQL server setting NAME=VALUE added to the durable defaults "
                 "(repeatable), e.g. synchronous_commit=off")
      ->check([](const std::string& value) {
        return value.find('=') == std::string::npos || value.find(' ') != std::string::npos
                   ? std::string("expected NAME=VALUE without spaces")
                   : std::string();
      });
  CLI11_PARSE(app, argc, argv);
  // Line by line, so that nothing buffered is copied into the server
  // processes the bench forks, and a reader of a file sees each figure as
  // it comes.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  spdlog::set_level(spdlog::level::warn);
  try {
    return nightshift::bench::run(quick ? 2000 : runs, starters, agents_dir, settings);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nightshift-bench-hosts: %s\n", e.what());
    return 1;
  }
}
