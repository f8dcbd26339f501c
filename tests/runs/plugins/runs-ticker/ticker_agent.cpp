// Test agent: progress far faster than the host publishes it. It also reports
// a NaN (ignored) and values outside [0, 1] (clamped), and logs at the start,
// the middle and the end. With `resultAt` N > 0 it sets the result
// {"at": N} after its Nth update, while it goes on running.
#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nightshift/agent.hpp>
#include <string>

namespace {

class Ticker : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const boost::json::value params = boost::json::parse(ctx.params_json());
    const auto updates = params.at("updates").to_number<std::int64_t>();
    const auto interval =
        std::chrono::microseconds(params.at("intervalUs").to_number<std::int64_t>());
    const auto result_at = params.at("resultAt").to_number<std::int64_t>();
    ctx.info("starting");
    ctx.progress(-0.5);
    ctx.progress(std::numeric_limits<double>::quiet_NaN());
    for (std::int64_t i = 1; i <= updates; ++i) {
      ctx.progress(static_cast<double>(i) / static_cast<double>(updates));
      if (i == updates / 2) ctx.info("halfway");
      if (i == result_at) ctx.set_result_json("{\"at\":" + std::to_string(i) + "}");
      if (!ctx.sleep_for(interval)) return;
    }
    ctx.progress(7.0);
    ctx.progress(std::numeric_limits<double>::quiet_NaN());
    ctx.info("done");
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Ticker)
