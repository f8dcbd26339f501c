// nightshift-bench-engine: the run engine's figures, each printed beside a
// ceiling this program measures on the same machine in the same run.
//
//   nightshift-bench-engine [--quick] [--only FIGURE] [--sleepers N] [--agents-dir DIR]
//
// Figures (the real engine, built as a nightshift::Host, with the
// built-in echo and sleep agents, a SQLite file in a temporary directory):
//   - echo runs started, finished and committed per second, started as the
//     API server starts them (asynchronously, answered on commit, up to
//     64 waiting, as wrk's 64 connections in the API bench) (ceilings:
//     bare handoffs to a parked thread and back per second, which is how
//     the engine gives a run a thread when one is parked; and bare pthread
//     create+join per second, which is how it does when none is);
//   - resident memory with 10,000 sleeping runs at once (ceiling: the same
//     number of bare sleeping threads), and where it is: thread stacks, the
//     heap (and how much of it malloc has handed out), mapped files;
//   - stop -> cancelled (committed) latency p99 for a cooperative agent
//     (ceiling: p99 of one small SQLite commit);
//   - log entries committed per second from 100 busy runs, every one of them
//     counted back from the store (ceiling: batched SQLite inserts per second
//     into the store's log table, with the store's pragmas).
#include <SQLiteCpp/SQLiteCpp.h>
#include <malloc.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <semaphore>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "host.hpp"
#include "runs/worker_thread.hpp"
#include "store/store.hpp"

namespace nightshift::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(index, samples.size() - 1)];
}

// VmRSS of this process, in MiB.
double resident_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

void print_figure(const std::string& name, double value, const std::string& unit,
                  const std::string& target, const std::string& ceiling) {
  std::printf("%s: %.*f %s (target %s; ceiling %s)\n", name.c_str(), value < 10 ? 2 : 1, value,
              unit.c_str(), target.c_str(), ceiling.c_str());
  std::fflush(stdout);
}

std::string number(double value, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f %s", value < 10 ? 3 : 1, value, unit);
  return buf;
}

// A temporary data directory for one measurement.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("nightshift-bench-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ---------------------------------------------------------------------------
// Ceilings

// Runs `work(deadline, made)` on `starters` threads at once for `seconds`;
// returns what they counted in `made` per second.
template <class Work>
double counted_per_second(int starters, double seconds, Work work) {
  std::atomic<std::uint64_t> made{0};
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < starters; ++s) threads.emplace_back([&] { work(deadline, made); });
  for (auto& t : threads) t.join();
  return static_cast<double>(made.load()) / seconds_since(start);
}

// User and system CPU time this process has used, in seconds.
double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

// Bare threads with the engine's stack size, created and joined from
// `starters` threads at once.
double pthread_create_join_per_second(std::size_t stack_bytes, int starters, double seconds) {
  return counted_per_second(starters, seconds, [&](auto deadline, auto& made) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack_bytes);
    while (Clock::now() < deadline) {
      pthread_t t{};
      if (pthread_create(
              &t, &attr, [](void*) -> void* { return nullptr; }, nullptr) != 0)
        break;
      pthread_join(t, nullptr);
      made.fetch_add(1, std::memory_order_relaxed);
    }
    pthread_attr_destroy(&attr);
  });
}

// Bare no-op tasks handed to a parked thread, each waited for until it is
// done, from `starters` threads at once, each with a parked thread of its
// own.
double parked_handoffs_per_second(int starters, double seconds) {
  return counted_per_second(starters, seconds, [](auto deadline, auto& made) {
    std::atomic<int> task{0};  // 1: a task is there; 0: done; -1: end
    std::thread parked([&] {
      for (;;) {
        task.wait(0);
        if (task.load() < 0) return;
        task.store(0);
        task.notify_one();
      }
    });
    while (Clock::now() < deadline) {
      task.store(1);
      task.notify_one();
      task.wait(1);
      made.fetch_add(1, std::memory_order_relaxed);
    }
    task.store(-1);
    task.notify_one();
    parked.join();
  });
}

// Inserts into a table shaped like the store's log table, with the store's
// pragmas, in transactions of `batch` rows.
double sqlite_inserts_per_second(const std::filesystem::path& file, std::size_t batch,
                                 double seconds) {
  SQLite::Database db(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA foreign_keys = ON");
  db.exec(
      "CREATE TABLE logs (run INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, "
      "level INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (run, seq)) WITHOUT ROWID");
  SQLite::Statement insert(
      db, "INSERT INTO logs (run, seq, ts, level, message) VALUES (?, ?, ?, ?, ?)");
  const std::string message = "entry 1234 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  std::uint64_t rows = 0;
  // Like the store: each transaction appends one batch to one run's log, the
  // runs taking turns.
  std::vector<std::int64_t> next_seq(100, 1);
  for (std::size_t turn = 0; Clock::now() < deadline; ++turn) {
    const auto run = static_cast<std::int64_t>(turn % next_seq.size());
    SQLite::Transaction tx(db);
    for (std::size_t i = 0; i < batch; ++i) {
      insert.reset();
      insert.bind(1, run);
      insert.bind(2, next_seq[turn % next_seq.size()]++);
      insert.bind(3, static_cast<std::int64_t>(1'700'000'000'000 + rows));
      insert.bind(4, 2);
      insert.bindNoCopy(5, message);
      insert.exec();
    }
    tx.commit();
    rows += batch;
  }
  return static_cast<double>(rows) / seconds_since(start);
}

// p99 of one single-row commit with the store's pragmas, in ms.
double sqlite_commit_p99_ms(const std::filesystem::path& file, int samples) {
  SQLite::Database db(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT NOT NULL)");
  SQLite::Statement upsert(db, "INSERT OR REPLACE INTO t (id, status) VALUES (?, 'cancelled')");
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    const auto start = Clock::now();
    SQLite::Transaction tx(db);
    upsert.reset();
    upsert.bind(1, i % 64);
    upsert.exec();
    tx.commit();
    ms.push_back(seconds_since(start) * 1000.0);
  }
  return percentile(ms, 0.99);
}

// RSS growth with `count` bare threads parked on a condition variable.
double bare_sleeping_threads_mib(std::size_t count, std::size_t stack_bytes) {
  const double before = resident_mib();
  std::mutex mutex;
  std::condition_variable_any cv;
  std::stop_source stop;
  std::vector<pthread_t> threads;
  struct Arg {
    std::mutex* mutex;
    std::condition_variable_any* cv;
    std::stop_token token;
  };
  Arg arg{&mutex, &cv, stop.get_token()};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes);
  for (std::size_t i = 0; i < count; ++i) {
    pthread_t t{};
    auto body = [](void* p) -> void* {
      auto* a = static_cast<Arg*>(p);
      std::unique_lock lock(*a->mutex);
      a->cv->wait(lock, a->token, [] { return false; });
      return nullptr;
    };
    if (pthread_create(&t, &attr, body, &arg) != 0) break;
    threads.push_back(t);
  }
  pthread_attr_destroy(&attr);
  std::this_thread::sleep_for(200ms);  // let them all reach the wait
  const double grown = resident_mib() - before;
  stop.request_stop();
  for (pthread_t t : threads) pthread_join(t, nullptr);
  return grown;
}

// ---------------------------------------------------------------------------
// The engine

// The engine as the host builds it: a nightshift::Host over a temporary
// data directory, with the built-in agents.
struct Engine {
  Engine(const std::filesystem::path& data_dir, const std::filesystem::path& agents_dir,
         RunManagerOptions options)
      : host(host_options(data_dir, agents_dir, std::move(options))),
        store(host.store()),
        bus(host.bus()),
        manager(&host.runs()) {}

  static HostOptions host_options(const std::filesystem::path& data_dir,
                                  const std::filesystem::path& agents_dir,
                                  RunManagerOptions options) {
    HostOptions o;
    o.data_dir = data_dir;
    o.database_name = "runs.db";
    o.workspace = data_dir;
    o.installed_agent_dirs = {agents_dir};
    o.user_remix_dir = data_dir / "user-remix";
    o.runs = std::move(options);
    return o;
  }

  Host host;
  Store& store;
  EventBus& bus;
  RunManager* manager;
};

bool wait_for(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// No-op echo runs, started as the API server starts them: asynchronously,
// each answered by its commit, from `starters` threads that keep at most
// `in_flight` starts waiting for their commit (so a commit carries many
// starts, as it does under many clients); counted once finished and
// committed (the manager counts a run when its final record is committed).
double echo_runs_per_second(const std::filesystem::path& agents_dir, int total, int starters,
                            int in_flight) {
  ScratchDir dir;
  RunManagerOptions options;
  options.max_concurrent = 64;
  options.max_queued = static_cast<std::size_t>(total) + 1;
  Engine engine(dir.path(), agents_dir, options);
  RunManager& manager = *engine.manager;
  std::atomic<int> refused{0};
  std::counting_semaphore<> window(in_flight);
  const double cpu_before = process_cpu_seconds();
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < starters; ++s) {
    threads.emplace_back([&, s] {
      for (int i = s; i < total; i += starters) {
        window.acquire();
        manager.start(StartRequest{"installed:echo", std::nullopt, {}},
                      [&](RunManager::StartOutcome outcome) {
                        if (outcome.error) refused.fetch_add(1);
                        window.release();
                      });
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < in_flight; ++i) window.acquire();  // every start answered
  const double starts_secs = seconds_since(start);
  const auto expected = static_cast<std::uint64_t>(total - refused.load());
  wait_for([&] { return manager.stats().completed >= expected; }, 300s);
  const double rate = static_cast<double>(manager.stats().completed) / seconds_since(start);
  const double cpu_secs = process_cpu_seconds() - cpu_before;
  std::printf(
      "  (%d starts returned after %.2f s, all finished after %.2f s; %.1f us of CPU per run, "
      "starters included)\n",
      total, starts_secs, seconds_since(start), cpu_secs * 1e6 / total);
  if (refused.load() > 0) std::fprintf(stderr, "  (%d starts refused)\n", refused.load());
  if (engine.store.count_runs() != static_cast<std::size_t>(total)) {
    std::fprintf(stderr, "  warning: %zu runs in the store, expected %d\n",
                 engine.store.count_runs(), total);
  }
  return rate;
}

// Where the resident memory is, from /proc/self/smaps: the worker threads'
// stacks (read-write mappings of a worker stack's size), the heap (with what malloc
// has handed out of it), mapped files, and the rest.
std::string resident_parts(std::size_t stack_bytes) {
  std::ifstream smaps("/proc/self/smaps");
  double stacks_kib = 0, heap_kib = 0, files_kib = 0, other_kib = 0;
  std::size_t mapping_bytes = 0;
  bool file = false, heap = false;
  std::string line;
  while (std::getline(smaps, line)) {
    unsigned long low = 0, high = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &low, &high) == 2 && line.find(':') > 8) {
      // A mapping's first line: "low-high perms offset dev inode [path]".
      mapping_bytes = high - low;
      const auto path = line.find('/');
      file = path != std::string::npos;
      heap = line.find("[heap]") != std::string::npos;
      continue;
    }
    if (line.rfind("Rss:", 0) != 0) continue;
    const double kib = std::atof(line.c_str() + 4);
    if (file) {
      files_kib += kib;
    } else if (heap) {
      heap_kib += kib;
    } else if (mapping_bytes == stack_bytes) {
      stacks_kib += kib;
    } else {
      other_kib += kib;  // malloc's other arenas, mostly
    }
  }
  const struct mallinfo2 malloc_info = mallinfo2();
  char text[256];
  std::snprintf(text, sizeof text,
                "%.1f MiB worker stacks, %.1f MiB heap and other anonymous memory (malloc has "
                "handed out %.1f MiB of it), %.1f MiB mapped files",
                stacks_kib / 1024, (heap_kib + other_kib) / 1024,
                static_cast<double>(malloc_info.uordblks + malloc_info.hblkhd) / (1024 * 1024),
                files_kib / 1024);
  return text;
}

// RSS with `count` sleeping runs at once.
double sleeping_runs_mib(const std::filesystem::path& agents_dir, int count, double* start_secs,
                         std::string* parts) {
  ScratchDir dir;
  RunManagerOptions options;
  options.max_concurrent = static_cast<std::size_t>(count);
  options.stop_grace = 30s;
  Engine engine(dir.path(), agents_dir, options);
  RunManager& manager = *engine.manager;
  const auto start = Clock::now();
  // The bench keeps nothing of its own per run (not even the ids), so that
  // the figure is the engine's alone.
  for (int i = 0; i < count; ++i) {
    manager.start(StartRequest{"installed:sleep", std::nullopt, {{"seconds", 600}}});
  }
  wait_for([&] { return manager.stats().running >= static_cast<std::size_t>(count); }, 300s);
  *start_secs = seconds_since(start);
  std::this_thread::sleep_for(200ms);  // every agent is parked in sleep_for
  const double rss = resident_mib();
  *parts = resident_parts(WorkerThread::stack_mapping_bytes(options.worker_stack_bytes));
  const auto stats = manager.stats();
  if (stats.running != static_cast<std::size_t>(count)) {
    std::fprintf(stderr, "  warning: only %zu of %d runs running\n", stats.running, count);
  }
  manager.shutdown(60s);
  return rss;
}

// stop() -> `finished` (cancelled, committed) for the sleep agent, in ms.
std::vector<double> stop_latencies_ms(const std::filesystem::path& agents_dir, int samples) {
  ScratchDir dir;
  Engine engine(dir.path(), agents_dir, RunManagerOptions{});
  RunManager& manager = *engine.manager;
  std::mutex mutex;
  std::condition_variable cv;
  std::unordered_map<std::string, Clock::time_point> finished_at;
  auto subscription = engine.bus.subscribe([&](const EventPtr& event) {
    const auto* run_event = std::get_if<RunEvent>(event.get());
    if (!run_event || run_event->kind != RunEventKind::finished) return;
    std::lock_guard lock(mutex);
    finished_at[run_event->run.instance_id] = Clock::now();
    cv.notify_all();
  });
  std::vector<double> out;
  for (int i = 0; i < samples; ++i) {
    const Run run = manager.start(StartRequest{"installed:sleep", std::nullopt, {{"seconds", 60}}});
    wait_for(
        [&] {
          auto now = manager.get(run.instance_id);
          return now && now->status == RunStatus::running;
        },
        30s);
    std::this_thread::sleep_for(1ms);  // the agent is inside sleep_for
    const auto asked = Clock::now();
    manager.stop(run.instance_id);
    std::unique_lock lock(mutex);
    cv.wait_for(lock, 10s, [&] { return finished_at.count(run.instance_id) > 0; });
    if (finished_at.count(run.instance_id) > 0) {
      out.push_back(
          std::chrono::duration<double, std::milli>(finished_at[run.instance_id] - asked).count());
    }
  }
  return out;
}

// 100 echo runs each logging `lines` entries as fast as the host takes them;
// the rate counts entries committed, checked back in the store.
double log_entries_per_second(const std::filesystem::path& agents_dir, int runs, int lines,
                              bool* all_there) {
  ScratchDir dir;
  RunManagerOptions options;
  options.max_concurrent = static_cast<std::size_t>(runs);
  options.log_max_entries = static_cast<std::size_t>(lines) + 10;
  Engine engine(dir.path(), agents_dir, options);
  RunManager& manager = *engine.manager;
  std::string task;
  for (int i = 1; i <= lines; ++i) task += "line " + std::to_string(i) + " of the busy run\n";
  task.pop_back();

  const auto start = Clock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < runs; ++i) {
    ids.push_back(manager.start(StartRequest{"installed:echo", task, {}}).instance_id);
  }
  wait_for([&] { return manager.stats().completed >= static_cast<std::uint64_t>(runs); }, 600s);
  const double secs = seconds_since(start);
  const auto stats = manager.stats();

  // Every entry, counted back from the store.
  std::uint64_t stored = 0;
  *all_there = stats.log_entries_dropped == 0;
  for (const std::string& id : ids) {
    std::uint64_t after = 0;
    for (;;) {
      const auto entries = engine.store.read_logs(id, after, 50000);
      if (entries.empty()) break;
      for (const LogEntry& e : entries) {
        if (e.seq != after + 1) *all_there = false;
        after = e.seq;
      }
      stored += entries.size();
    }
    const auto run = manager.get(id);
    if (!run || run->status != RunStatus::completed || run->log_count != after) *all_there = false;
    if (after < static_cast<std::uint64_t>(lines)) *all_there = false;
  }
  if (stored != stats.log_entries_written) *all_there = false;
  std::printf("  (%llu entries committed and read back from %d runs in %.2f s)\n",
              static_cast<unsigned long long>(stored), runs, secs);
  return static_cast<double>(stored) / secs;
}

int run(bool quick, const std::filesystem::path& agents_dir, const std::string& only,
        int sleepers) {
  const auto wanted = [&](const char* name) { return only.empty() || only == name; };
  spdlog::set_level(spdlog::level::warn);
  const RunManagerOptions defaults;
  const double ceiling_secs = quick ? 0.3 : 1.5;
  std::printf("nightshift-bench-engine%s: %u cores\n", quick ? " (quick)" : "",
              std::thread::hardware_concurrency());

  // Ceilings first, on a quiet process.
  const double handoffs_per_sec = parked_handoffs_per_second(2, ceiling_secs);
  const double threads_per_sec =
      pthread_create_join_per_second(defaults.worker_stack_bytes, 2, ceiling_secs);
  double sqlite_rows_per_sec = 0;
  double commit_p99 = 0;
  {
    ScratchDir dir;
    sqlite_rows_per_sec = sqlite_inserts_per_second(dir.path() / "ceiling.db", 1024, ceiling_secs);
    commit_p99 = sqlite_commit_p99_ms(dir.path() / "commit.db", quick ? 200 : 2000);
  }

  if (wanted("echo")) {
    const int echo_total = quick ? 5000 : 100000;
    const double echo_rate = echo_runs_per_second(agents_dir, echo_total, 2, 64);
    print_figure("echo runs started, finished and persisted", echo_rate, "runs/s",
                 ">= 25000 runs/s",
                 number(handoffs_per_sec, "bare handoffs to a parked thread/s") + ", " +
                     number(threads_per_sec, "bare pthread create+join/s"));
  }
  if (wanted("sleep")) {
    if (sleepers <= 0) sleepers = quick ? 1000 : 10000;
    // The echo phase leaves malloc's arenas full of freed chunks, resident
    // until trimmed; they would count against the sleeping runs. Start the
    // phase from what a fresh process holds.
    malloc_trim(0);
    const double bare_mib =
        bare_sleeping_threads_mib(static_cast<std::size_t>(sleepers), defaults.worker_stack_bytes);
    double start_secs = 0;
    std::string parts;
    const double sleeping_mib = sleeping_runs_mib(agents_dir, sleepers, &start_secs, &parts);
    print_figure(std::to_string(sleepers) + " concurrent sleeping runs, resident memory",
                 sleeping_mib, "MiB", "<= 120 MiB",
                 number(bare_mib, "MiB for as many bare sleeping threads"));
    std::printf("  (all %d running after %.2f s; resident: %s)\n", sleepers, start_secs,
                parts.c_str());
  }
  if (wanted("stop")) {
    const auto latencies = stop_latencies_ms(agents_dir, quick ? 50 : 300);
    print_figure("stop -> cancelled (committed) latency p99", percentile(latencies, 0.99), "ms",
                 "<= 5 ms", number(commit_p99, "ms p99 of one SQLite commit"));
    std::printf("  (p50 %.2f ms over %zu stops)\n", percentile(latencies, 0.5), latencies.size());
  }
  if (!wanted("logs")) return 0;

  bool all_there = false;
  const double log_rate = log_entries_per_second(agents_dir, 100, quick ? 2000 : 20000, &all_there);
  print_figure("log entries persisted from 100 busy runs", log_rate, "entries/s",
               ">= 1000000 entries/s, none lost",
               number(sqlite_rows_per_sec, "batched SQLite inserts/s"));
  std::printf("  (none lost: %s)\n", all_there ? "yes, every count checked in the store" : "NO");
  return all_there ? 0 : 1;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) {
  CLI::App app{"Measures the Nightshift run engine beside this machine's own ceilings."};
  bool quick = false;
  std::string agents_dir = NIGHTSHIFT_BUILD_AGENTS_DIR;
  std::string only;
  int sleepers = 0;
  app.add_flag("--quick", quick, "a short smoke run with smaller counts");
  app.add_option("--sleepers", sleepers, "sleeping runs at once (default 10000; 1000 with --quick)")
      ->check(CLI::PositiveNumber);
  app.add_option("--only", only, "measure one figure only")
      ->check(CLI::IsMember({"echo", "sleep", "stop", "logs"}));
  app.add_option("--agents-dir", agents_dir, "where the built-in agents are")
      ->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);
  try {
    return nightshift::bench::run(quick, agents_dir, only, sleepers);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nightshift-bench-engine: %s\n", e.what());
    return 1;
  }
}
