// Chaos: a real `nightshift serve` is SIGKILLed again and again while clients
// start runs (echo as fast as they go, 30 s sleeps, a shell run printing many
// lines), then restarted on the same data directory. After each restart every
// run that got a 201 must be there exactly once, the runs that were active
// must be `failed` as interrupted, every run's log `seq` must have no gaps,
// and the database must pass `PRAGMA integrity_check`.
//
// NIGHTSHIFT_CHAOS_SEED=N replays the kill times of an earlier run (the seed
// is printed); NIGHTSHIFT_CHAOS_CYCLES=N changes the number of kills.
#include <SQLiteCpp/SQLiteCpp.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "child_process.hpp"
#include "test_support.hpp"

namespace nightshift::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kDefaultCycles = 8;
// No new cycle starts after this; the test stops by itself even on a machine
// far slower than expected.
constexpr auto kCycleBudget = 150s;
constexpr auto kRequestTimeout = 15s;
constexpr auto kHostStartTimeout = 30s;
constexpr int kEchoThreads = 2;
constexpr int kSleepRunsPerCycle = 6;
constexpr int kShellLines = 200000;

unsigned long environment_number(const char* name, unsigned long fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoul(value, nullptr, 10) : fallback;
}

// Concatenation by appending (GCC 12 at -O3 warns falsely on chains of +).
inline void append_part(std::string& out, std::string_view text) {
  out.append(text);
}
template <class Number, std::enable_if_t<std::is_arithmetic_v<Number>, int> = 0>
void append_part(std::string& out, Number number) {
  out += std::to_string(number);
}
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (append_part(out, parts), ...);
  return out;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::string url_encode(const std::string& text) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct Reply {
  int status = 0;
  std::string body;
};

// One keep-alive HTTP/1.1 connection to 127.0.0.1 whose every step has a
// deadline: a host that was killed (or a connection some child process kept
// open) never blocks the test. A failed request closes the connection; the
// next one reconnects.
class Http {
 public:
  Http(std::uint16_t port, std::string token)
      : port_(port), token_(std::move(token)), socket_(ioc_) {}

  std::optional<Reply> request(http::verb method, const std::string& target,
                               const std::string& body = {},
                               std::chrono::milliseconds timeout = kRequestTimeout) {
    if (!socket_.is_open()) {
      const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port_);
      if (!run([&](auto handler) { socket_.async_connect(endpoint, handler); }, timeout)) {
        close();
        return std::nullopt;
      }
    }
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, cat("127.0.0.1:", port_));
    request.set(http::field::authorization, cat("Bearer ", token_));
    if (!body.empty()) {
      request.set(http::field::content_type, "application/json");
      request.body() = body;
    }
    request.prepare_payload();
    if (!run([&](auto handler) { http::async_write(socket_, request, handler); }, timeout)) {
      close();
      return std::nullopt;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    if (!run([&](auto handler) { http::async_read(socket_, buffer_, parser, handler); }, timeout)) {
      close();
      return std::nullopt;
    }
    auto response = parser.release();
    if (!response.keep_alive()) close();
    return Reply{static_cast<int>(response.result_int()), std::move(response.body())};
  }

  std::optional<Reply> get(const std::string& target) { return request(http::verb::get, target); }

 private:
  template <class Start>
  bool run(Start&& start, std::chrono::milliseconds timeout) {
    bool done = false;
    beast::error_code error;
    start([&done, &error](beast::error_code result, auto&&...) {
      done = true;
      error = result;
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!done) {
      close();
      ioc_.restart();
      ioc_.run();
      return false;
    }
    return !error;
  }

  void close() {
    beast::error_code ignored;
    socket_.close(ignored);
    buffer_.clear();
  }

  std::uint16_t port_;
  std::string token_;
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

std::optional<json::object> parse_object(const std::string& text) {
  boost::system::error_code error;
  json::value value = json::parse(text, error);
  if (error || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

std::string string_field(const json::object& object, const char* name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

std::optional<std::uint64_t> unsigned_field(const json::object& object, const char* name) {
  const auto* value = object.if_contains(name);
  if (value == nullptr || !(value->is_int64() || value->is_uint64())) return std::nullopt;
  return value->to_number<std::uint64_t>();
}

// ---- processes --------------------------------------------------------------

std::string command_line_of(const std::string& pid) {
  std::string text = testing::read_proc_file(std::filesystem::path("/proc") / pid / "cmdline");
  for (auto& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

// Live processes whose command line holds `marker` (zombies have none).
std::vector<pid_t> processes_with(const std::string& marker) {
  std::vector<pid_t> found;
  if (marker.empty()) return found;
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) return found;
  while (const dirent* entry = ::readdir(proc.get())) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    if (command_line_of(name).find(marker) != std::string::npos) found.push_back(pid);
  }
  return found;
}

// Kills what is left of the shell runs' commands: their process groups when
// they have their own, the processes alone when they share the test's group.
void kill_processes_with(const std::string& marker) {
  for (const pid_t pid : processes_with(marker)) {
    const pid_t group = ::getpgid(pid);
    if (group > 1 && group != ::getpgrp()) {
      ::kill(-group, SIGKILL);
    } else {
      ::kill(pid, SIGKILL);
    }
  }
}

// ---- what the clients saw -----------------------------------------------------

enum class Kind { echo, sleep, shell };

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::echo:
      return "echo";
    case Kind::sleep:
      return "sleep";
    case Kind::shell:
      return "shell";
  }
  return "?";
}

struct Accepted {
  std::string id;
  Kind kind;
  int cycle;
};

class Record {
 public:
  void add(const std::string& id, Kind kind, int cycle) {
    std::lock_guard lock(mutex_);
    if (!ids_.insert(id).second) {
      duplicates_.push_back(cat("the host answered 201 twice with the instanceId ", id));
    }
    runs_.push_back({id, kind, cycle});
    ++count_by_cycle_[cycle][kind];
  }
  std::vector<Accepted> runs() const {
    std::lock_guard lock(mutex_);
    return runs_;
  }
  std::vector<std::string> duplicates() const {
    std::lock_guard lock(mutex_);
    return duplicates_;
  }
  int count(int cycle, Kind kind) const {
    std::lock_guard lock(mutex_);
    const auto found = count_by_cycle_.find(cycle);
    if (found == count_by_cycle_.end()) return 0;
    const auto per_kind = found->second.find(kind);
    return per_kind == found->second.end() ? 0 : per_kind->second;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Accepted> runs_;
  std::set<std::string> ids_;
  std::vector<std::string> duplicates_;
  std::map<int, std::map<Kind, int>> count_by_cycle_;
};

// ---- the host -----------------------------------------------------------------

class ServeHost {
 public:
  ServeHost(const std::filesystem::path& dir, int number, const std::filesystem::path& data_dir,
            const std::filesystem::path& workspace) {
    out_ = dir / cat("host-", number, ".out");
    err_ = dir / cat("host-", number, ".err");
    const std::vector<std::string> argv{NIGHTSHIFT_TEST_BINARY,
                                        "serve",
                                        "--listen",
                                        "127.0.0.1:0",
                                        "--data-dir",
                                        data_dir.string(),
                                        "--workspace",
                                        workspace.string(),
                                        "--agents-dir",
                                        NIGHTSHIFT_TEST_AGENTS_DIR};
    process_ = std::make_unique<ChildProcess>(
        argv,
        environment_with({{"XDG_DATA_HOME", (dir / "xdg-data").string()},
                          {"XDG_CONFIG_HOME", (dir / "xdg-config").string()},
                          {"NIGHTSHIFT_TOKEN", ""},
                          {"NIGHTSHIFT_URL", ""}}),
        out_, err_, dir);
  }

  // The port from the `listening on` line, or nullopt (with the reason in
  // `why`) when the host exited or did not get there in time.
  std::optional<std::uint16_t> wait_listening(std::string& why) {
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)\n");
    std::smatch match;
    std::string text;
    const bool ready = wait_until(
        [&] {
          text = read_file(out_);
          return std::regex_search(text, match, listening) ||
                 process_->wait_for_exit(0ms).has_value();
        },
        kHostStartTimeout, 10ms);
    if (ready && std::regex_search(text, match, listening)) {
      return static_cast<std::uint16_t>(std::stoi(match[1]));
    }
    why = cat(ready ? "the host exited before it listened" : "the host did not listen in time",
              "; its stderr:\n", read_file(err_));
    return std::nullopt;
  }

  void kill() { process_->send_signal(SIGKILL); }
  void terminate() { process_->send_signal(SIGTERM); }
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    return process_->wait_for_exit(timeout);
  }
  std::string stderr_text() const { return read_file(err_); }

 private:
  std::filesystem::path out_;
  std::filesystem::path err_;
  std::unique_ptr<ChildProcess> process_;
};

// ---- checks -------------------------------------------------------------------

struct Listing {
  std::map<std::string, json::object> runs;  // active and history, by instanceId
  std::size_t active = 0;
  std::vector<std::string> problems;
};

Listing list_everything(Http& client) {
  Listing listing;
  std::optional<std::string> cursor;
  bool first = true;
  for (int page = 0; page < 10000; ++page) {
    std::string target = "/background-agents?limit=500";
    if (cursor) target += cat("&cursor=", url_encode(*cursor));
    const auto reply = client.get(target);
    if (!reply || reply->status != 200) {
      listing.problems.push_back(
          reply ? cat("GET ", target, " answered ", reply->status, ": ", reply->body)
                : cat("GET ", target, " got no answer"));
      return listing;
    }
    const auto body = parse_object(reply->body);
    if (!body || !body->contains("active") || !body->contains("history")) {
      listing.problems.push_back("GET /background-agents answered a body without active/history");
      return listing;
    }
    std::vector<const json::value*> runs;
    if (first) {
      for (const auto& run : body->at("active").as_array()) runs.push_back(&run);
      listing.active = runs.size();
      first = false;
    }
    for (const auto& run : body->at("history").as_array()) runs.push_back(&run);
    for (const auto* run : runs) {
      const auto id = string_field(run->as_object(), "instanceId");
      if (!listing.runs.emplace(id, run->as_object()).second) {
        listing.problems.push_back(cat("run ", id, " is listed twice"));
      }
    }
    const auto* next = body->if_contains("nextCursor");
    if (next == nullptr || !next->is_string()) return listing;
    cursor = std::string(next->as_string());
  }
  listing.problems.push_back("GET /background-agents kept giving a nextCursor (10000 pages)");
  return listing;
}

// What is wrong with a run's state after a kill and restart, or empty.
std::string state_problem(const json::object& run, Kind kind) {
  const auto status = string_field(run, "status");
  const auto error = string_field(run, "error");
  const bool interrupted = status == "failed" && error.rfind("interrupted", 0) == 0;
  if (interrupted) return {};
  if (status == "completed" && kind != Kind::sleep) return {};
  std::string problem = cat("is ", status);
  if (!error.empty()) problem += cat(" (error: ", error, ")");
  problem += kind == Kind::sleep ? ", expected failed as interrupted (a 30 s sleep was active)"
                                 : ", expected completed or failed as interrupted";
  return problem;
}

// Pages through a run's log: seq must run 1, 2, 3, ... with no gap, the count
// must be the run's logCount, and the last page must say complete.
std::string log_problem(Http& client, const std::string& id, std::uint64_t log_count,
                        std::uint64_t& entries_read) {
  std::uint64_t expected = 1;
  std::uint64_t after = 0;
  const std::uint64_t max_pages = log_count / 5000 + 5;
  for (std::uint64_t page = 0; page < max_pages; ++page) {
    const auto target = cat("/background-agents/", id, "/logs?limit=5000&after=", after);
    const auto reply = client.get(target);
    if (!reply || reply->status != 200) {
      return reply ? cat("GET ", target, " answered ", reply->status, ": ", reply->body)
                   : cat("GET ", target, " got no answer");
    }
    const auto body = parse_object(reply->body);
    if (!body || !body->contains("entries")) return "a logs page without entries";
    const auto& entries = body->at("entries").as_array();
    for (const auto& entry : entries) {
      const auto seq = unsigned_field(entry.as_object(), "seq");
      if (!seq || *seq != expected) {
        return cat("log seq ", seq ? std::to_string(*seq) : std::string("missing"), " where ",
                   expected, " was due (a gap or a repeat)");
      }
      ++expected;
    }
    entries_read = expected - 1;
    const auto* complete = body->if_contains("complete");
    const bool is_complete = complete != nullptr && complete->is_bool() && complete->as_bool();
    if (is_complete || entries.empty()) {
      std::string problem;
      if (!is_complete) problem = "the log of an ended run never says complete";
      if (entries_read != log_count) {
        if (!problem.empty()) problem += "; ";
        problem += cat("logCount is ", log_count, " but the log holds ", entries_read, " entries");
      }
      return problem;
    }
    const auto next = unsigned_field(*body, "nextAfter");
    if (!next || *next < after) return "a logs page without a usable nextAfter";
    after = *next;
  }
  return "the log did not end within logCount/5000 + 5 pages";
}

std::string integrity_of(const std::filesystem::path& database) {
  try {
    SQLite::Database db(database.string(), SQLite::OPEN_READONLY);
    db.setBusyTimeout(10000);
    SQLite::Statement query(db, "PRAGMA integrity_check");
    std::string result;
    while (query.executeStep()) {
      if (!result.empty()) result += "; ";
      result += query.getColumn(0).getString();
    }
    return result;
  } catch (const std::exception& error) {
    return cat("cannot check: ", error.what());
  }
}

// ---- the test -------------------------------------------------------------------

class ChaosTest : public ::testing::Test {
 protected:
  // Whatever happened, no host and no shell command of this test outlives it.
  ~ChaosTest() override {
    host_.reset();
    kill_processes_with(marker_);
  }

  void SetUp() override {
    std::filesystem::create_directories(data_dir_);
    std::filesystem::create_directories(workspace_);
    std::random_device device;
    seed_ = static_cast<unsigned>(environment_number("NIGHTSHIFT_CHAOS_SEED", 0));
    if (seed_ == 0) seed_ = device() | 1u;
    cycles_ = static_cast<int>(environment_number("NIGHTSHIFT_CHAOS_CYCLES", kDefaultCycles));
    marker_ = cat("nightshift-chaos-", ::getpid(), "-", device());
    std::cout << "chaos: seed " << seed_ << " (NIGHTSHIFT_CHAOS_SEED replays it), " << cycles_
              << " cycles, data dir " << data_dir_ << std::endl;
  }

  // Starts a host on the kept data directory and returns its port.
  std::optional<std::uint16_t> start_host() {
    host_ = std::make_unique<ServeHost>(dir_.path(), ++host_count_, data_dir_, workspace_);
    std::string why;
    const auto port = host_->wait_listening(why);
    if (!port) {
      ADD_FAILURE() << "start " << host_count_ << ": " << why;
      return std::nullopt;
    }
    if (token_.empty()) token_ = trim(read_file(data_dir_ / "token"));
    return port;
  }

  std::string start_body(Kind kind, int cycle) const {
    json::object body;
    switch (kind) {
      case Kind::echo:
        body = {{"agentId", "installed:echo"}, {"task", "chaos echo"}, {"params", json::object{}}};
        break;
      case Kind::sleep:
        body = {{"agentId", "installed:sleep"}, {"params", json::object{{"seconds", 30}}}};
        break;
      case Kind::shell: {
        // The marker is on the command line of sh and of seq, so whatever the
        // host leaves behind can be found.
        const auto command =
            cat("seq -f '", marker_, " cycle ", cycle, " line %g' 1 ", kShellLines);
        body = {{"agentId", "installed:shell"}, {"task", command}, {"params", json::object{}}};
        break;
      }
    }
    return json::serialize(body);
  }

  // POST start; records the run when it got 201. Returns its id or empty.
  std::string start(Http& client, Kind kind, int cycle) {
    const auto reply =
        client.request(http::verb::post, "/background-agents/start", start_body(kind, cycle));
    if (!reply) return {};
    if (reply->status != 201) {
      if (reply->status != 503) {
        std::lock_guard lock(unexpected_mutex_);
        unexpected_starts_.push_back(
            cat("start of ", kind_name(kind), " answered ", reply->status, ": ", reply->body));
      }
      return {};
    }
    const auto body = parse_object(reply->body);
    const auto id = body ? string_field(*body, "instanceId") : std::string();
    if (id.empty()) {
      std::lock_guard lock(unexpected_mutex_);
      unexpected_starts_.push_back(cat("a 201 without an instanceId: ", reply->body));
      return {};
    }
    record_.add(id, kind, cycle);
    return id;
  }

  // One cycle of load; returns once the host was SIGKILLed and every client
  // thread has stopped.
  void load_and_kill(std::uint16_t port, int cycle, std::mt19937& random) {
    Http main_client(port, token_);
    const auto shell_id = start(main_client, Kind::shell, cycle);
    EXPECT_FALSE(shell_id.empty()) << "cycle " << cycle << ": the shell run was not started";

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> shell_log_count{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kEchoThreads; ++i) {
      threads.emplace_back([&, port, cycle] {
        Http client(port, token_);
        while (!stop) {
          if (start(client, Kind::echo, cycle).empty()) std::this_thread::sleep_for(5ms);
        }
      });
    }
    threads.emplace_back([&, port, cycle] {
      Http client(port, token_);
      for (int started = 0; !stop && started < kSleepRunsPerCycle;) {
        if (!start(client, Kind::sleep, cycle).empty()) ++started;
        std::this_thread::sleep_for(50ms);
      }
    });
    // Watches how many log entries the API says the shell run has: after the
    // restart at least as many must be there (nothing counted, then lost).
    threads.emplace_back([&, port] {
      if (shell_id.empty()) return;
      Http client(port, token_);
      while (!stop) {
        const auto reply = client.get(cat("/background-agents/", shell_id));
        if (reply && reply->status == 200) {
          if (const auto body = parse_object(reply->body)) {
            const auto count = unsigned_field(*body, "logCount").value_or(0);
            if (count > shell_log_count) shell_log_count = count;
          }
        }
        std::this_thread::sleep_for(20ms);
      }
    });

    // Every kind of load is under way before the kill's clock starts.
    const bool loaded = wait_until(
        [&] {
          return record_.count(cycle, Kind::echo) > 0 && record_.count(cycle, Kind::sleep) > 0;
        },
        20s, 5ms);
    EXPECT_TRUE(loaded) << "cycle " << cycle << ": no echo or sleep run was accepted in 20 s";
    std::uniform_int_distribution<int> delay_ms(300, 1500);
    const auto delay = std::chrono::milliseconds(delay_ms(random));
    std::this_thread::sleep_for(delay);  // the chaos: a random moment to kill at
    host_->kill();
    const auto exit = host_->wait_for_exit(20s);
    EXPECT_TRUE(exit.has_value()) << "cycle " << cycle << ": the host outlived SIGKILL";
    stop = true;
    for (auto& thread : threads) thread.join();
    if (!shell_id.empty()) shell_log_counts_[shell_id] = shell_log_count;
    kill_delays_.push_back(delay);

    // The shell command must not outlive the host for long: it is in its own
    // process group, and with the host gone its pipe has no reader.
    if (!wait_until([&] { return processes_with(marker_).empty(); }, 2s, 20ms)) {
      const auto left = processes_with(marker_);
      survivors_ += left.size();
      std::cout << "chaos: cycle " << cycle << ": " << left.size()
                << " process(es) of the shell run outlived the host by 2 s (killed now)"
                << std::endl;
      kill_processes_with(marker_);
    }
    // The crash state itself must be a sound database.
    const auto integrity = integrity_of(data_dir_ / "nightshift.db");
    EXPECT_EQ(integrity, "ok") << "cycle " << cycle << ": integrity_check after the SIGKILL";
  }

  // Everything recorded so far, checked against a freshly restarted host.
  // `deep_from_cycle`: runs of this cycle and later also get GET by id and a
  // full log check (earlier ones were checked after their own cycle).
  void check_after_restart(std::uint16_t port, int deep_from_cycle, const std::string& when) {
    Http client(port, token_);
    Listing listing;
    // Interrupted runs are marked at start-up; nothing else runs now.
    const bool quiet = wait_until(
        [&] {
          listing = list_everything(client);
          return !listing.problems.empty() || listing.active == 0;
        },
        20s, 100ms);
    for (const auto& problem : listing.problems) ADD_FAILURE() << when << ": " << problem;
    EXPECT_TRUE(quiet) << when << ": " << listing.active
                       << " run(s) still active after the restart with no client";

    std::size_t accounted = 0;
    std::size_t interrupted = 0;
    std::set<std::string> seen;
    for (const auto& run : record_.runs()) {
      const auto prefix =
          cat(when, ": ", kind_name(run.kind), " run ", run.id, " (201 in cycle ", run.cycle, ")");
      if (!seen.insert(run.id).second) continue;  // reported by Record
      const auto listed = listing.runs.find(run.id);
      if (listed == listing.runs.end()) {
        ADD_FAILURE() << prefix << " is missing from GET /background-agents";
        continue;
      }
      bool ok = true;
      if (string_field(listed->second, "status") == "failed") ++interrupted;
      const auto state = state_problem(listed->second, run.kind);
      if (!state.empty()) {
        ADD_FAILURE() << prefix << " " << state;
        ok = false;
      }
      if (run.cycle >= deep_from_cycle) ok = deep_check(client, run, prefix) && ok;
      if (ok) ++accounted;
    }
    accounted_ = accounted;
    interrupted_ = interrupted;
    extra_runs_ = listing.runs.size() - std::min(listing.runs.size(), seen.size());
  }

  bool deep_check(Http& client, const Accepted& run, const std::string& prefix) {
    const auto reply = client.get(cat("/background-agents/", run.id));
    if (!reply || reply->status != 200) {
      ADD_FAILURE() << prefix << ": GET by id answered "
                    << (reply ? cat(reply->status, " ", reply->body) : std::string("nothing"));
      return false;
    }
    const auto body = parse_object(reply->body);
    if (!body) {
      ADD_FAILURE() << prefix << ": GET by id answered a body that is not a JSON object";
      return false;
    }
    bool ok = true;
    const auto state = state_problem(*body, run.kind);
    if (!state.empty()) {
      ADD_FAILURE() << prefix << " (GET by id) " << state;
      ok = false;
    }
    const auto log_count = unsigned_field(*body, "logCount").value_or(0);
    const auto seen_before = shell_log_counts_.find(run.id);
    if (seen_before != shell_log_counts_.end() && log_count < seen_before->second) {
      ADD_FAILURE() << prefix << ": logCount was " << seen_before->second
                    << " before the kill and is " << log_count
                    << " after the restart (counted, then lost)";
      ok = false;
    }
    std::uint64_t entries = 0;
    const auto logs = log_problem(client, run.id, log_count, entries);
    if (!logs.empty()) {
      ADD_FAILURE() << prefix << ": " << logs;
      ok = false;
    }
    log_entries_checked_ += entries;
    return ok;
  }

  // On failure the data directory is kept beside the test for a post-mortem.
  void keep_data_dir_on_failure() {
    if (!HasFailure()) return;
    const auto kept = std::filesystem::current_path() / cat("chaos-failed-", seed_);
    std::error_code error;
    std::filesystem::remove_all(kept, error);
    std::filesystem::copy(data_dir_, kept, std::filesystem::copy_options::recursive, error);
    std::cout << "chaos: the data directory and host logs are kept in " << kept << std::endl;
    for (int i = 1; i <= host_count_; ++i) {
      const auto name = cat("host-", i, ".err");
      std::filesystem::copy(dir_ / name, kept / name, error);
    }
  }

  TempDir dir_;
  std::filesystem::path data_dir_ = dir_ / "data";
  std::filesystem::path workspace_ = dir_ / "workspace";
  unsigned seed_ = 0;
  int cycles_ = kDefaultCycles;
  std::string marker_;
  std::string token_;
  std::unique_ptr<ServeHost> host_;
  int host_count_ = 0;
  Record record_;
  std::mutex unexpected_mutex_;
  std::vector<std::string> unexpected_starts_;
  std::map<std::string, std::uint64_t> shell_log_counts_;
  std::vector<std::chrono::milliseconds> kill_delays_;
  std::size_t survivors_ = 0;
  std::size_t accounted_ = 0;
  std::size_t interrupted_ = 0;
  std::size_t extra_runs_ = 0;
  std::uint64_t log_entries_checked_ = 0;
};

TEST_F(ChaosTest, KilledHostsUnderLoadLoseNothingAndStaySound) {
  std::mt19937 random(seed_);
  const auto began = Clock::now();
  int cycles_run = 0;
  for (int cycle = 1; cycle <= cycles_; ++cycle) {
    if (Clock::now() - began > kCycleBudget) {
      std::cout << "chaos: time budget spent after " << cycles_run << " cycles" << std::endl;
      break;
    }
    const auto port = start_host();
    if (!port) break;
    if (cycle > 1) {
      check_after_restart(*port, cycle - 1, cat("after kill ", cycle - 1));
    }
    if (HasFailure()) break;
    load_and_kill(*port, cycle, random);
    ++cycles_run;
    if (HasFailure()) break;
  }

  // The last restart: check, then a graceful stop and a last integrity check.
  if (cycles_run > 0 && !HasFailure()) {
    if (const auto port = start_host()) {
      // Every run once more in depth: later kills must not have hurt earlier runs.
      check_after_restart(*port, 1, cat("after kill ", cycles_run));
      host_->terminate();
      const auto exit = host_->wait_for_exit(30s);
      EXPECT_TRUE(exit && *exit == 0)
          << "the host's exit on SIGTERM: " << (exit ? cat("status ", *exit) : "none in 30 s")
          << "; stderr:\n"
          << host_->stderr_text();
      EXPECT_EQ(integrity_of(data_dir_ / "nightshift.db"), "ok") << "after the graceful stop";
    }
  }

  for (const auto& duplicate : record_.duplicates()) ADD_FAILURE() << duplicate;
  {
    std::lock_guard lock(unexpected_mutex_);
    for (std::size_t i = 0; i < unexpected_starts_.size() && i < 10; ++i) {
      ADD_FAILURE() << unexpected_starts_[i];
    }
  }
  const auto runs = record_.runs();
  std::size_t sleeps = 0;
  std::size_t shells = 0;
  for (const auto& run : runs) {
    sleeps += run.kind == Kind::sleep ? 1 : 0;
    shells += run.kind == Kind::shell ? 1 : 0;
  }
  std::ostringstream delays;
  for (const auto delay : kill_delays_) delays << ' ' << delay.count();
  std::cout << "chaos: " << cycles_run << " cycles (SIGKILL after" << delays.str()
            << " ms of load), " << runs.size() << " starts answered 201 (" << sleeps << " sleep, "
            << shells << " shell), " << accounted_ << " runs accounted for (" << interrupted_
            << " of them failed as interrupted), " << extra_runs_
            << " more runs from starts cut off by a kill, " << log_entries_checked_
            << " log entries checked, " << survivors_ << " shell processes outlived the host, seed "
            << seed_ << std::endl;
  EXPECT_GE(cycles_run, 1);
  EXPECT_EQ(accounted_, runs.size()) << "every run that got a 201 must be accounted for";
  keep_data_dir_on_failure();
}

}  // namespace
}  // namespace nightshift::testing
