// Test agent: fails by throwing, so the run fails with the exception's text.
#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin
#include <nightshift/agent.hpp>
#include <stdexcept>

namespace {

class Throw : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const boost::json::value params = boost::json::parse(ctx.params_json());
    ctx.info("about to throw");
    throw std::runtime_error(std::string(params.at("message").as_string()));
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Throw)
