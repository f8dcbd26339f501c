// A test agent for the SDK's C++ layer (nightshift/agent.hpp). The task
// names what it does, so one plugin covers every behaviour under test.
#include <nightshift/agent.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

struct NotAStdException {};

class Probe : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const std::string task = ctx.task();
    if (task == "context") return report_context(ctx);
    if (task == "levels") return log_every_level(ctx);
    if (task == "progress") return report_progress(ctx);
    if (task == "threads") return log_from_threads(ctx);
    if (task == "sleep-short") return sleep_short(ctx);
    if (task == "wait-for-stop") return wait_for_stop(ctx);
    if (task == "poll-cancelled") return poll_cancelled(ctx);
    if (task == "result") return ctx.set_result_json(R"({"ok": true, "n": [1, 2]})");
    if (task == "invalid-result") return ctx.set_result_json(R"({"ok": tru)");
    if (task == "fail") ctx.fail("failed through fail()");
    if (task == "throw-std") throw std::runtime_error("a std::runtime_error from the agent");
    if (task == "throw-c-string") throw "a C string from the agent";
    if (task == "throw-other") throw NotAStdException{};
    ctx.fail("probe: unknown task '" + task + "'");
  }

 private:
  static void report_context(nightshift::RunContext& ctx) {
    ctx.info(std::string(ctx.instance_id()));
    ctx.info(ctx.workspace());
    ctx.info(ctx.params_json());
    ctx.info(ctx.task());
  }
  static void log_every_level(nightshift::RunContext& ctx) {
    ctx.log(nightshift::Level::info, "via log()");
    ctx.trace("t");
    ctx.debug("d");
    ctx.info("i");
    ctx.warn("w");
    ctx.error("e");
  }
  static void report_progress(nightshift::RunContext& ctx) {
    for (double fraction : {0.0, 0.25, 0.5, 1.0}) ctx.progress(fraction);
  }
  // [thread-safe] calls from threads the agent starts and joins.
  static void log_from_threads(nightshift::RunContext& ctx) {
    constexpr int thread_count = 4;
    constexpr int entries_per_thread = 50;
    std::vector<std::thread> threads;
    for (int t = 0; t < thread_count; ++t) {
      threads.emplace_back([&ctx, t] {
        for (int i = 0; i < entries_per_thread; ++i) {
          ctx.info("thread " + std::to_string(t) + " entry " + std::to_string(i));
          ctx.progress(0.5);
          (void)ctx.cancelled();
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  static void sleep_short(nightshift::RunContext& ctx) {
    const bool slept = ctx.sleep_for(std::chrono::duration<double>(0.01));
    ctx.info(slept ? "slept" : "woken");
    ctx.info(ctx.cancelled() ? "cancelled" : "not cancelled");
  }
  static void wait_for_stop(nightshift::RunContext& ctx) {
    ctx.info("waiting");
    const bool slept = ctx.sleep_for(std::chrono::hours(1));
    ctx.info(slept ? "slept" : "woken");
    ctx.info(ctx.cancelled() ? "cancelled" : "not cancelled");
    // Once a stop was asked, a sleep returns false at once.
    ctx.info(ctx.sleep_for(std::chrono::hours(1)) ? "slept again" : "woken again");
  }
  static void poll_cancelled(nightshift::RunContext& ctx) {
    ctx.info("polling");
    while (!ctx.cancelled()) std::this_thread::yield();
    ctx.info("saw cancelled");
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Probe)
