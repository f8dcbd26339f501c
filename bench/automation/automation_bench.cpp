// nightshift-bench-automation: prints, never asserts.
//   1. 10,000 enabled schedules (varied cron expressions and time zones):
//      the time to load them from the store and compute their next times,
//      and the time a Host takes to start over them (target: under 1 s).
//   2. Webhook latency: from a run's endedAt to the moment a receiver on
//      127.0.0.1 has read the run.finished delivery, p50/p99 over N runs
//      (target: p99 within 50 ms).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/wire.hpp"
#include "automation/cron.hpp"
#include "host.hpp"
#include "store/automation_store.hpp"

namespace {

using namespace nightshift;
using Clock = std::chrono::steady_clock;
namespace net = boost::asio;
namespace http = boost::beast::http;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

HostOptions options_for(const std::filesystem::path& dir) {
  HostOptions options;
  options.data_dir = dir / "data";
  options.workspace = dir / "workspace";
  std::filesystem::create_directories(options.workspace);
  options.installed_agent_dirs = {NIGHTSHIFT_BUILD_AGENTS_DIR};
  return options;
}

void bench_schedules(const std::filesystem::path& dir) {
  constexpr int kSchedules = 10000;
  const std::vector<std::string> crons = {"*/5 * * * *",  "0 3 * * *",      "30 2 * * 1-5",
                                          "15 */2 * * *", "0 9-17 * * 1-5", "@hourly",
                                          "@daily",       "0 0 1,15 * *",   "45 23 * * 0"};
  const std::vector<std::string> zones = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo",
                                          "Australia/Sydney"};
  {
    Host host(options_for(dir));
    AutomationStore& store = host.automation().store();
    for (int i = 0; i < kSchedules; ++i) {
      Schedule s;
      s.id = generate_uuid();
      s.agent_id = "installed:echo";
      s.cron = crons[static_cast<std::size_t>(i) % crons.size()];
      s.timezone = zones[static_cast<std::size_t>(i / 7) % zones.size()];
      s.created_at = now_ms();
      s.next_run_at = now_ms() + std::chrono::hours(1);  // not due: nothing starts
      store.put_schedule(s);
    }
    host.shutdown(std::chrono::milliseconds(1000));
  }
  SqliteAutomationStore store(dir / "data" / "nightshift.db");
  auto start = Clock::now();
  const auto schedules = store.list_schedules();
  const double load_ms = ms_since(start);
  start = Clock::now();
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  std::size_t with_next = 0;
  for (const Schedule& s : schedules) {
    const CronSchedule cron(s.cron, s.timezone);
    with_next += cron.next_after(now) ? 1 : 0;
  }
  const double next_ms = ms_since(start);
  std::printf(
      "schedules: %zu loaded from the store in %.1f ms; parsed and next times computed "
      "in %.1f ms (%zu with a next time); together %.1f ms (target < 1000 ms)\n",
      schedules.size(), load_ms, next_ms, with_next, load_ms + next_ms);
  start = Clock::now();
  {
    Host host(options_for(dir));
    const double open_ms = ms_since(start);
    std::printf("schedules: a Host starts over %zu enabled schedules in %.1f ms\n",
                host.automation().schedules().list().size(), open_ms);
    host.shutdown(std::chrono::milliseconds(1000));
  }
}

// Records when each delivery's request has been read.
class Receiver {
 public:
  Receiver() : acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~Receiver() {
    stopping_ = true;
    boost::system::error_code ignored;
    net::io_context ioc;
    net::ip::tcp::socket poke(ioc);
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/hook";
  }
  std::map<std::string, Timestamp> arrivals() {
    std::lock_guard lock(mutex_);
    return arrivals_;
  }

 private:
  void serve() {
    while (!stopping_) {
      net::ip::tcp::socket socket(ioc_);
      boost::system::error_code error;
      acceptor_.accept(socket, error);
      if (error || stopping_) return;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(socket, buffer, request, error);
      if (error) continue;
      const Timestamp arrived = now_ms();
      boost::system::error_code parse_error;
      const auto body = boost::json::parse(request.body(), parse_error);
      if (!parse_error) {
        std::lock_guard lock(mutex_);
        arrivals_[std::string(body.at("run").at("instanceId").as_string())] = arrived;
      }
      http::response<http::empty_body> response{http::status::no_content, 11};
      response.keep_alive(false);
      http::write(socket, response, error);
    }
  }

  net::io_context ioc_;
  net::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::map<std::string, Timestamp> arrivals_;
  std::thread thread_;
};

void bench_webhooks(const std::filesystem::path& dir) {
  constexpr int kRuns = 300;
  Receiver receiver;
  Host host(options_for(dir));
  host.automation().webhooks().set_run_json(
      [](const Run& run) { return api::wire::run(run, now_ms()); });
  WebhookInput hook;
  hook.url = receiver.url();
  hook.events = {"run.finished"};
  hook.secret = "bench";
  host.automation().webhooks().create(hook);
  std::vector<Run> finished;
  for (int i = 0; i < kRuns; ++i) {
    StartRequest request;
    request.agent_id = "installed:echo";
    const Run run = host.runs().start(request);
    finished.push_back(*host.runs().wait(run.instance_id, std::chrono::seconds(30)));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (receiver.arrivals().size() < finished.size() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto arrivals = receiver.arrivals();
  std::vector<double> latencies;
  for (const Run& run : finished) {
    const auto it = arrivals.find(run.instance_id);
    if (it == arrivals.end() || !run.ended_at) continue;
    latencies.push_back(static_cast<double>((it->second - *run.ended_at).count()));
  }
  std::sort(latencies.begin(), latencies.end());
  const auto at = [&](double q) {
    return latencies.empty() ? 0.0
                             : latencies[std::min(latencies.size() - 1,
                                                  static_cast<std::size_t>(q * latencies.size()))];
  };
  std::printf(
      "webhooks: %zu of %d deliveries arrived; from the run's endedAt to the receiver: "
      "p50 %.0f ms, p99 %.0f ms, max %.0f ms (target p99 <= 50 ms; millisecond clock)\n",
      latencies.size(), kRuns, at(0.5), at(0.99), latencies.empty() ? 0 : latencies.back());
  host.shutdown(std::chrono::milliseconds(2000));
}

}  // namespace

int main() {
  spdlog::set_level(spdlog::level::warn);
  const auto root = std::filesystem::temp_directory_path() /
                    ("nightshift-bench-automation-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root);
  try {
    bench_schedules(root / "schedules");
    bench_webhooks(root / "webhooks");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "benchmark failed: %s\n", error.what());
    std::filesystem::remove_all(root);
    return 1;
  }
  std::filesystem::remove_all(root);
  return 0;
}
