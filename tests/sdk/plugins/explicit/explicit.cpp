// A test agent that names itself in NIGHTSHIFT_AGENT(Class, name, version,
// description), as a plugin built without nightshift_add_agent() does.
#include <nightshift/agent.hpp>

namespace {

class Explicit : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override { ctx.set_result_json(R"({"explicit": true})"); }
};

}  // namespace

NIGHTSHIFT_AGENT(Explicit, "sdk-explicit", "0.9.1", "Names itself in the macro.")
