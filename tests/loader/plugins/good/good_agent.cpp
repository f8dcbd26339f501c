// A well-formed agent. Built twice from this source: as LOADER_GOOD_BUILD 1
// (with nightshift_add_agent) and as build 2, a "rebuilt" library with the
// same agent name, so tests can tell which build a loaded plugin is.
#include <nightshift/agent.hpp>
#include <string>

#ifndef LOADER_GOOD_BUILD
#define LOADER_GOOD_BUILD 1
#endif

namespace {

class GoodAgent : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const std::string build = std::to_string(LOADER_GOOD_BUILD);
    ctx.info("build " + build + " ran task '" + ctx.task() + "'");
    ctx.set_result_json("{\"build\": " + build + "}");
  }
};

}  // namespace

NIGHTSHIFT_AGENT(GoodAgent)
