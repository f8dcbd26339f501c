// Test agent for SDK 1.1: waits for messages (next_message), logs each one
// as "heard: TEXT", reports 10 prompt and 1 completion token per message,
// and completes on the message "done". A stop ends the wait at once.
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
