// Test agent: floods the log. Each message starts with its own ordinal, so a
// reader can tell that what the store holds is what the agent wrote.
#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin
#include <chrono>
#include <cstdint>
#include <nightshift/agent.hpp>
#include <string>

namespace {

class Flood : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const boost::json::value params = boost::json::parse(ctx.params_json());
    const auto count = params.at("count").to_number<std::int64_t>();
    const auto size = static_cast<std::size_t>(params.at("size").to_number<std::int64_t>());
    const auto pause_every = params.at("pauseEvery").to_number<std::int64_t>();
    std::string message;
    for (std::int64_t i = 1; count == 0 || i <= count; ++i) {
      if ((i & 255) == 0 && ctx.cancelled()) return;
      message = "entry " + std::to_string(i) + " ";
      if (message.size() < size) message.append(size - message.size(), 'x');
      ctx.info(message);
      if (pause_every > 0 && i % pause_every == 0 && !ctx.sleep_for(std::chrono::milliseconds(1))) {
        return;
      }
    }
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Flood)
