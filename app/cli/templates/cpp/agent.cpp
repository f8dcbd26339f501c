// @NAME@: a Nightshift agent. It works through its task in a few steps,
// logging and reporting progress as it goes, stops at once when asked, logs
// the messages sent to it while it runs, and returns a JSON result.
//
// Make it yours: change run() (and agent.json's description and params).
// RunContext is the run's whole world: ctx.task(), ctx.params_json() (the
// merged params as JSON text), ctx.workspace(), logging, progress, the stop
// flag, the result. An exception thrown from run() fails the run with its
// message.
#include <chrono>
#include <cstdio>
#include <nightshift/agent.hpp>
#include <string>

namespace {

using namespace std::chrono_literals;
using nightshift::RunContext;

constexpr int kSteps = 3;
constexpr auto kPause = 200ms;

// `text` as a JSON string literal. (A bigger agent would compile a JSON
// library into the plugin instead.)
std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Waits `duration`; false as soon as a stop is asked. Meanwhile, messages
// sent to the run (`nightshift send`, possible because agent.json says
// "messages": true) are logged as they arrive.
bool pause(const RunContext& ctx, std::chrono::milliseconds duration) {
  if (!ctx.host_supports(RunContext::Feature::messages)) return ctx.sleep_for(duration);
  const auto until = std::chrono::steady_clock::now() + duration;
  for (auto left = duration; left > 0ms;
       left = std::chrono::duration_cast<std::chrono::milliseconds>(
           until - std::chrono::steady_clock::now())) {
    if (auto message = ctx.next_message(left)) {
      ctx.info("message: " + *message);
    } else if (ctx.cancelled()) {
      return false;
    }
  }
  return !ctx.cancelled();
}

}  // namespace

class @CLASS@ : public nightshift::Agent {
 public:
  // Called once when the host loads the plugin, before any run (SDK 1.1).
  // Throwing here refuses to load: the host lists the agent as unavailable
  // with the exception's message. Optional, like deinit() and get_extension().
  static void init(const nightshift::HostInfo& host) { host_version() = host.host_version; }

  void run(RunContext& ctx) override {
    const std::string task = ctx.task();
    ctx.info("working on: " + (task.empty() ? std::string("(no task)") : task));
    ctx.debug("host " + host_version() + ", params " + ctx.params_json());
    for (int step = 1; step <= kSteps; ++step) {
      if (!pause(ctx, kPause)) return;  // a stop was asked: the run ends cancelled
      ctx.info("step " + std::to_string(step) + "/" + std::to_string(kSteps));
      ctx.progress(static_cast<double>(step) / kSteps);
    }
    ctx.info("done");
    ctx.set_result_json("{\"task\": " + json_string(task) +
                        ", \"steps\": " + std::to_string(kSteps) + "}");
  }

 private:
  static std::string& host_version() {
    static std::string version = "(unknown)";
    return version;
  }
};

NIGHTSHIFT_AGENT(@CLASS@)
