// nightshift-bench-llm: the llm agent's own cost, against the scripted model
// server of the tests answering at once, each figure printed beside a
// ceiling measured on the same machine in the same run.
//
//   nightshift-bench-llm [--quick] [--plugin PATH]
//
// Figures (the built plugin, loaded and run as the tests do):
//   - the agent's own cost per model turn, p50 and p99: from the moment the
//     server has written an answer (text and a read_file call, streamed) to
//     the moment the whole next request has reached it. That is the agent
//     reading and parsing the stream, logging, running the tool, building
//     the next request and sending it (on the kept-alive connection).
//     Ceiling: the same gap for a bare HTTP client (one kept-alive
//     connection, a request body of the same size, the answer read whole and
//     not parsed).
//   - 100 concurrent runs of 10 turns each: every run must complete with 10
//     turns and its 9 tool calls logged, and the server must have seen 1,000
//     requests ("nothing lost"); turns per second beside bare HTTP round
//     trips per second from 100 threads.
#include <agent_harness.hpp>
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <scripted_model_server.hpp>
#include <string>
#include <test_support.hpp>
#include <thread>
#include <vector>

namespace {

using nightshift::testing::AgentHarness;
using nightshift::testing::AgentLibrary;
using nightshift::testing::AgentOutcome;
using nightshift::testing::AgentRunOptions;
using nightshift::testing::RecordedRequest;
using nightshift::testing::ScriptedAnswer;
using nightshift::testing::ScriptedModelServer;
namespace chunks = nightshift::testing::chunks;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(index, samples.size() - 1)];
}

double milliseconds(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::size_t count(std::string_view text, std::string_view piece) {
  std::size_t n = 0;
  for (auto at = text.find(piece); at != std::string_view::npos; at = text.find(piece, at + 1)) ++n;
  return n;
}

// A model that reads a.txt `turns - 1` times, then answers: each answer
// streamed in a few pieces, with usage, as a real server sends it.
ScriptedAnswer model_answer(const RecordedRequest& request, std::size_t turns) {
  const std::size_t done = count(request.body, R"("role":"tool")");
  if (done + 1 >= turns) {
    return ScriptedAnswer::sse({chunks::text("Read it "), chunks::text("enough times."),
                                chunks::finish("stop"), chunks::usage(1000, 10)},
                               64);
  }
  return ScriptedAnswer::sse(
      {chunks::text("Reading a.txt again.\n"),
       chunks::tool_call(0, "call_" + std::to_string(done), "read_file", "{\"pa"),
       chunks::tool_call(0, "", "", "th\": \"a.txt\"}"), chunks::finish("tool_calls"),
       chunks::usage(1000, 20)},
      64);
}

std::string run_params(const ScriptedModelServer& server, std::size_t turns) {
  return json::serialize(json::object{{"instructions", "Benchmark."},
                                      {"baseUrl", server.base_url()},
                                      {"model", "bench"},
                                      {"maxTurns", turns + 1}});
}

// A bare HTTP client: one kept-alive connection, as the agent keeps one;
// each POST's answer is read whole and not parsed.
class BareClient {
 public:
  explicit BareClient(unsigned short port) : stream_(io_) {
    stream_.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    stream_.socket().set_option(boost::asio::ip::tcp::no_delay(true));
  }
  void post(const std::string& body) {
    namespace http = boost::beast::http;
    http::request<http::string_body> request{http::verb::post, "/v1/chat/completions", 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    http::write(stream_, request);
    http::response<http::string_body> response;
    http::read(stream_, buffer_, response);
  }

 private:
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

void print_figure(const char* name, double value, const char* unit, const char* target,
                  const std::string& ceiling) {
  std::printf("%s: %.3f %s (target %s; ceiling %s)\n", name, value, unit, target, ceiling.c_str());
  std::fflush(stdout);
}

// ---- the agent's own cost per turn ----

double process_cpu_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) / 1e6;
}

// Agent runs and bare round trips take turns, so that both meet the same
// load on the machine.
void per_turn_cost(const AgentLibrary& library, std::size_t runs, std::size_t turns) {
  nightshift::testing::TempDir workspace;
  nightshift::testing::write_file(workspace / "a.txt",
                                  std::string(40, 'x') + "\n" + std::string(2000, 'y') + "\n");
  ScriptedModelServer server;
  server.set_responder([turns](const RecordedRequest& r) { return model_answer(r, turns); });
  ScriptedModelServer bare;
  bare.set_responder([turns](const RecordedRequest& r) { return model_answer(r, turns); });

  std::vector<double> gaps;
  std::vector<double> bare_gaps;
  double agent_cpu_ms = 0;
  double bare_cpu_ms = 0;
  std::size_t body_bytes = 0;
  for (std::size_t run = 0; run < runs; ++run) {
    const std::size_t first = server.requests().size();
    AgentRunOptions options;
    options.task = "Read a.txt until you are sure.";
    options.params_json = run_params(server, turns);
    options.workspace = workspace.path();
    options.sdk_1_1 = true;
    const double cpu_before = process_cpu_ms();
    const AgentOutcome outcome = nightshift::testing::run_agent(library, options, 120s);
    agent_cpu_ms += process_cpu_ms() - cpu_before;
    if (outcome.return_code != NIGHTSHIFT_RUN_OK) {
      std::fprintf(stderr, "a run failed: %s\n", outcome.error.value_or("(no error)").c_str());
      std::exit(1);
    }
    const auto requests = server.requests();
    for (std::size_t i = first + 1; i < requests.size(); ++i) {
      gaps.push_back(milliseconds(requests[i].received - requests[i - 1].answered));
    }
    body_bytes = requests.back().body.size();

    // The ceiling: as many round trips of a bare client, requests of the
    // same size as the agent's last.
    const std::size_t bare_first = bare.requests().size();
    const std::string body(body_bytes, ' ');
    const double bare_before = process_cpu_ms();
    {
      BareClient client(bare.port());
      for (std::size_t i = 0; i < turns; ++i) client.post(body);
    }
    bare_cpu_ms += process_cpu_ms() - bare_before;
    const auto bare_requests = bare.requests();
    for (std::size_t i = bare_first + 1; i < bare_requests.size(); ++i) {
      bare_gaps.push_back(milliseconds(bare_requests[i].received - bare_requests[i - 1].answered));
    }
  }

  char ceiling[160];
  std::snprintf(ceiling, sizeof ceiling, "bare HTTP round trip p50 %.3f ms, p99 %.3f ms",
                percentile(bare_gaps, 0.5), percentile(bare_gaps, 0.99));
  std::printf("per-turn samples: %zu (%zu runs of %zu turns; last request %zu bytes)\n",
              gaps.size(), runs, turns, body_bytes);
  print_figure("agent's own cost per model turn p50", percentile(gaps, 0.5), "ms", "-", ceiling);
  print_figure("agent's own cost per model turn p99", percentile(gaps, 0.99), "ms", "<= 1 ms",
               ceiling);
  // CPU time does not wait for a busy machine's scheduler: the whole
  // process's (agent and server threads) per turn.
  std::snprintf(ceiling, sizeof ceiling, "bare HTTP round trip %.3f ms",
                bare_cpu_ms / static_cast<double>(runs * turns));
  print_figure("CPU time per model turn, agent and server",
               agent_cpu_ms / static_cast<double>(runs * turns), "ms", "-", ceiling);
}

// ---- concurrent runs ----

void concurrent_runs(const AgentLibrary& library, std::size_t runs, std::size_t turns) {
  nightshift::testing::TempDir workspace;
  nightshift::testing::write_file(workspace / "a.txt", "alpha\n");
  ScriptedModelServer server;
  server.set_recording(false);
  server.set_responder([turns](const RecordedRequest& r) { return model_answer(r, turns); });

  std::vector<std::unique_ptr<AgentHarness>> harnesses;
  for (std::size_t i = 0; i < runs; ++i) {
    AgentRunOptions options;
    options.task = "Read a.txt.";
    options.params_json = run_params(server, turns);
    options.workspace = workspace.path();
    options.instance_id = "00000000-0000-4000-8000-" + std::to_string(100000000000 + i);
    options.sdk_1_1 = true;
    harnesses.push_back(std::make_unique<AgentHarness>(library, options));
  }
  const auto started = Clock::now();
  for (auto& harness : harnesses) harness->start();
  std::size_t completed = 0;
  std::size_t lost = 0;
  for (auto& harness : harnesses) {
    if (!harness->wait(300s)) {
      ++lost;
      continue;
    }
    const AgentOutcome outcome = harness->outcome();
    std::size_t tool_lines = 0;
    for (const auto& entry : outcome.logs)
      tool_lines += entry.message.starts_with("tool read_file ");
    const bool whole = outcome.return_code == NIGHTSHIFT_RUN_OK && outcome.result_json &&
                       json::parse(*outcome.result_json).at("turns") == turns &&
                       tool_lines == turns - 1 && outcome.usage_reports.size() == turns;
    if (whole) {
      ++completed;
    } else {
      ++lost;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::size_t expected_requests = runs * turns;

  // The ceiling: as many bare round trips from as many threads.
  ScriptedModelServer bare;
  bare.set_recording(false);
  bare.set_responder([turns](const RecordedRequest& r) { return model_answer(r, turns); });
  const std::string body(2048, ' ');
  const auto bare_started = Clock::now();
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < runs; ++i) {
    threads.emplace_back([&] {
      BareClient client(bare.port());
      for (std::size_t t = 0; t < turns; ++t) client.post(body);
    });
  }
  for (auto& thread : threads) thread.join();
  const double bare_seconds = std::chrono::duration<double>(Clock::now() - bare_started).count();

  std::printf(
      "%zu concurrent runs of %zu turns: %zu completed whole, %zu lost; server saw %zu of "
      "%zu requests, %zu unscripted\n",
      runs, turns, completed, lost, server.request_count(), expected_requests, server.unscripted());
  char ceiling[160];
  std::snprintf(ceiling, sizeof ceiling, "bare HTTP round trips from %zu threads: %.0f /s", runs,
                static_cast<double>(expected_requests) / bare_seconds);
  const std::string name = "model turns per second, " + std::to_string(runs) + " concurrent runs";
  print_figure(name.c_str(), static_cast<double>(expected_requests) / seconds, "/s", "nothing lost",
               ceiling);
  if (lost > 0 || server.request_count() != expected_requests) std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string plugin = NIGHTSHIFT_BENCH_LLM_PLUGIN;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--plugin") == 0 && i + 1 < argc) {
      plugin = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--plugin PATH/libllm.so]\n", argv[0]);
      return 2;
    }
  }
  ::setenv("NIGHTSHIFT_LLM_RETRY_ATTEMPTS", "1", 1);  // a failure must show, not be retried
  AgentLibrary library(plugin);
  per_turn_cost(library, quick ? 4 : 40, 26);
  concurrent_runs(library, quick ? 20 : 100, 10);
  return 0;
}
