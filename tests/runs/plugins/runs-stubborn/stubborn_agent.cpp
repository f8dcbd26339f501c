// Test agent: ignores stops. It sleeps without the host's sleep_for and never
// asks cancelled(), so only the clock ends it.
#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin
#include <chrono>
#include <nightshift/agent.hpp>
#include <thread>

namespace {

class Stubborn : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const boost::json::value params = boost::json::parse(ctx.params_json());
    const double seconds = params.at("seconds").to_number<double>();
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(seconds));
    ctx.info("ignoring stops");
    while (std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ctx.info("done");
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Stubborn)
