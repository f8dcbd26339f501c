// An example agent: greets its task, pauses (stopping early when asked),
// and returns whom it greeted.
#include <chrono>
#include <cstdio>
#include <nightshift/agent.hpp>
#include <string>

namespace {

// `text` as a JSON string literal. A bigger agent would use a JSON library
// (compiled into the plugin) instead.
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

}  // namespace

class Hello : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const std::string whom = ctx.task().empty() ? "world" : ctx.task();
    ctx.log(nightshift::Level::info, "hello " + whom);
    ctx.debug("params: " + ctx.params_json());  // merged params, JSON text
    ctx.progress(0.5);                          // 0..1

    if (!ctx.sleep_for(std::chrono::milliseconds(200))) return;  // false: stop asked
    if (ctx.cancelled()) return;

    ctx.progress(1.0);
    ctx.set_result_json(R"({"greeted": )" + json_string(whom) + "}");
    // An exception thrown here fails the run with its what() as the error.
  }
};

NIGHTSHIFT_AGENT(Hello)
