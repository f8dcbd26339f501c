// installed:echo. Logs each line of the task as an info entry ("(no task)"
// when there is none), then the merged params as one JSON entry, and
// completes at once with {"task": <task or null>, "params": <params>}.
#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin (header-only mode)
#include <nightshift/agent.hpp>
#include <sstream>
#include <string>

namespace {

boost::json::object parse_params(const std::string& params_json) {
  boost::system::error_code error;
  boost::json::value params = boost::json::parse(params_json, error);
  if (error) throw std::invalid_argument("echo: the params are not valid JSON: " + error.message());
  if (!params.is_object()) throw std::invalid_argument("echo: the params are not a JSON object");
  return std::move(params.as_object());
}

// One entry per line; a trailing newline does not make an empty last line,
// and a CR before a newline is dropped.
void log_lines(nightshift::RunContext& ctx, const std::string& task) {
  std::istringstream lines(task);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ctx.info(line);
  }
}

class Echo : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const std::string task = ctx.task();
    boost::json::object params = parse_params(ctx.params_json());

    if (task.empty()) {
      ctx.info("(no task)");
    } else {
      log_lines(ctx, task);
    }
    ctx.info(boost::json::serialize(params));

    boost::json::object result;
    result["task"] = task.empty() ? boost::json::value(nullptr) : boost::json::value(task);
    result["params"] = std::move(params);
    ctx.set_result_json(boost::json::serialize(result));
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Echo)
