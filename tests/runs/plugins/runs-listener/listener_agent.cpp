// Test agent for SDK 1.1: waits for messages (next_message), logs each one
// as "heard: TEXT", reports 10 prompt and 1 completion token per message,
// and completes on the message "done". A stop ends the wait at once. With
// `sleepFirstMs`, it first sleeps that long (sleep_for) and logs whether the
// sleep ran its full length, so a message sent meanwhile can be checked to
// wait for it rather than cut the sleep short or get lost.
#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin
#include <chrono>
#include <nightshift/agent.hpp>
#include <string>

namespace {

class Listener : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    if (!ctx.host_supports(nightshift::RunContext::Feature::messages)) {
      ctx.fail("the host does not deliver messages");
    }
    const boost::json::value params = boost::json::parse(ctx.params_json());
    const auto sleep_first = params.at("sleepFirstMs").to_number<std::int64_t>();
    if (sleep_first > 0) {
      ctx.info("sleeping");
      if (!ctx.sleep_for(std::chrono::milliseconds(sleep_first))) return;  // stopped
      ctx.info("slept");
    }
    ctx.info("listening");
    while (!ctx.cancelled()) {
      const auto message = ctx.next_message(std::chrono::seconds(30));
      if (!message) continue;
      ctx.info("heard: " + *message);
      ctx.report_usage(10, 1);
      if (*message == "done") return;
    }
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Listener)
