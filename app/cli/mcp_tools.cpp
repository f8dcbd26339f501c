#include "cli/mcp_tools.hpp"

#include <algorithm>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/url.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "cli/api_client.hpp"
#include "cli/exit_codes.hpp"
#include "cli/resolve.hpp"

namespace nightshift::cli {
namespace json = boost::json;
using boost::beast::http::verb;

namespace {

constexpr double kDefaultWaitSeconds = 60;
constexpr double kMaxWaitSeconds = 3600;

// A refusal of the call's arguments; becomes an error result.
class ArgumentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- the tools' input schemas ------------------------------------------------

json::object string_property(std::string_view description) {
  return {{"type", "string"}, {"description", description}};
}

json::object instance_id_property() {
  return string_property("The run's instanceId (a UUID), as start_run or list_runs gave it.");
}

json::object tool(std::string_view name, std::string_view title, std::string_view description,
                  json::object properties, json::array required, bool read_only) {
  json::object schema{{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) schema["required"] = std::move(required);
  schema["additionalProperties"] = false;
  return {{"name", name},
          {"title", title},
          {"description", description},
          {"inputSchema", std::move(schema)},
          {"annotations", {{"readOnlyHint", read_only}}}};
}

// ---- argument checking ---------------------------------------------------------

// The arguments a tool accepts, checked against what the client sent.
void check_known(const json::object& arguments, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : arguments) {
    if (std::find(known.begin(), known.end(), std::string_view(key)) == known.end()) {
      std::string list;
      for (const auto name : known) list += (list.empty() ? "" : ", ") + std::string(name);
      throw ArgumentError("unknown argument '" + std::string(key) + "'; this tool takes: " +
                          (list.empty() ? std::string("no arguments") : list));
    }
  }
}

std::optional<std::string> optional_string(const json::object& arguments, std::string_view key) {
  const auto* value = arguments.if_contains(key);
  if (!value || value->is_null()) return std::nullopt;
  if (!value->is_string()) throw ArgumentError("'" + std::string(key) + "' must be a string");
  return std::string(value->as_string());
}

std::string required_string(const json::object& arguments, std::string_view key) {
  auto value = optional_string(arguments, key);
  if (!value || value->empty()) {
    throw ArgumentError("'" + std::string(key) + "' is required (a non-empty string)");
  }
  return *value;
}

std::optional<double> optional_number(const json::object& arguments, std::string_view key,
                                      double minimum, double maximum) {
  const auto* value = arguments.if_contains(key);
  if (!value || value->is_null()) return std::nullopt;
  if (!value->is_number()) throw ArgumentError("'" + std::string(key) + "' must be a number");
  const double number = value->to_number<double>();
  if (!(number >= minimum && number <= maximum)) {
    throw ArgumentError("'" + std::string(key) + "' must be between " +
                        json::serialize(json::value(minimum)) + " and " +
                        json::serialize(json::value(maximum)));
  }
  return number;
}

std::optional<std::uint64_t> optional_integer(const json::object& arguments, std::string_view key,
                                              double minimum, double maximum) {
  const auto number = optional_number(arguments, key, minimum, maximum);
  if (!number) return std::nullopt;
  if (std::floor(*number) != *number) {
    throw ArgumentError("'" + std::string(key) + "' must be a whole number");
  }
  return static_cast<std::uint64_t>(*number);
}

// ---- the host's API ------------------------------------------------------------

// An API answer that was not 2xx, as a tool error.
class ApiFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string api_error_text(const HostEndpoint& endpoint, const HttpResponse& response) {
  if (response.status == 401) {
    return "the host at " + endpoint.url +
           " refused the token (401 unauthorized); start `nightshift mcp` with --token or "
           "NIGHTSHIFT_TOKEN (the host's token is in " +
           endpoint.token_file.string() + " on its machine)";
  }
  std::string code;
  std::string message;
  boost::system::error_code parse_error;
  const auto body = json::parse(response.body, parse_error);
  if (!parse_error && body.is_object()) {
    if (const auto* error = body.as_object().if_contains("error"); error && error->is_object()) {
      code = string_member(error->as_object(), "code");
      message = string_member(error->as_object(), "message");
    }
  }
  if (message.empty()) message = response.body.empty() ? "no message" : response.body;
  std::string text = message + " (HTTP " + std::to_string(response.status);
  if (!code.empty()) text += " " + code;
  if (response.status == 503 && !response.retry_after.empty()) {
    text += ", retry after " + response.retry_after + " s";
  }
  return text + ")";
}

// One request; the parsed JSON answer (null for an empty body). Throws
// ApiFailure for a non-2xx answer, CliError when no host answers.
json::value request(ApiClient& api, verb method, std::string_view target,
                    std::string_view body = {}) {
  const auto response = api.connection().request(method, target, body);
  if (response.status < 200 || response.status >= 300) {
    throw ApiFailure(api_error_text(api.endpoint(), response));
  }
  if (response.body.empty()) return nullptr;
  boost::system::error_code parse_error;
  auto value = json::parse(response.body, parse_error);
  if (parse_error) throw ApiFailure("the host answered with something that is not JSON");
  return value;
}

std::string run_path(std::string_view instance_id, std::string_view suffix = {}) {
  boost::urls::url url;
  url.set_path_absolute(true);
  url.segments().push_back("background-agents");
  url.segments().push_back(instance_id);
  if (!suffix.empty()) url.segments().push_back(suffix);
  return std::string(url.encoded_path());
}

// ---- the tools -----------------------------------------------------------------

struct Call {
  ApiClient& api;
  const json::object& arguments;
  std::stop_token stop;
};

json::value list_agents(Call& call) {
  check_known(call.arguments, {});
  return request(call.api, verb::get, "/agents");
}

json::value start_run(Call& call) {
  check_known(call.arguments, {"agentId", "task", "params"});
  const auto agent = required_string(call.arguments, "agentId");
  // A bare name ("echo") is resolved as the CLI resolves it; an id goes to
  // the host as is, so its own answer (e.g. agent_not_found) is what the
  // client sees.
  const auto agent_id =
      agent.find(':') == std::string::npos ? resolve_agent_id(call.api, agent) : agent;
  json::object body{{"agentId", agent_id}};
  if (auto task = optional_string(call.arguments, "task")) body["task"] = *task;
  if (const auto* params = call.arguments.if_contains("params"); params && !params->is_null()) {
    if (!params->is_object()) throw ArgumentError("'params' must be an object");
    body["params"] = *params;
  }
  return request(call.api, verb::post, "/background-agents/start", json::serialize(body));
}

json::value list_runs(Call& call) {
  check_known(call.arguments, {"status", "limit"});
  static const std::set<std::string> statuses{"queued",    "running", "stopping",
                                              "completed", "failed",  "cancelled"};
  const auto status = optional_string(call.arguments, "status");
  if (status && !statuses.contains(*status)) {
    throw ArgumentError(
        "'status' must be one of queued, running, stopping, completed, failed, "
        "cancelled");
  }
  const auto limit = optional_integer(call.arguments, "limit", 1, 500);
  boost::urls::url url;
  url.set_path("/background-agents");
  // The API filters the history by a terminal status; an active status
  // narrows the active list here (the history then has nothing to add).
  const bool active_filter = status && !is_terminal_status(*status);
  if (status && !active_filter) url.params().append({"status", *status});
  if (limit) url.params().append({"limit", std::to_string(*limit)});
  auto page = request(call.api, verb::get, url.buffer());
  if (!active_filter || !page.is_object()) return page;
  json::array active;
  if (const auto* list = page.as_object().if_contains("active"); list && list->is_array()) {
    for (const auto& run : list->as_array()) {
      if (run.is_object() && string_member(run.as_object(), "status") == *status) {
        active.push_back(run);
      }
    }
  }
  return json::object{
      {"active", std::move(active)}, {"history", json::array()}, {"nextCursor", nullptr}};
}

json::value get_run(Call& call) {
  check_known(call.arguments, {"instanceId"});
  return request(call.api, verb::get, run_path(required_string(call.arguments, "instanceId")));
}

json::value get_logs(Call& call) {
  check_known(call.arguments, {"instanceId", "after"});
  const auto id = required_string(call.arguments, "instanceId");
  const auto after = optional_integer(call.arguments, "after", 0, 9007199254740991.0);
  boost::urls::url url;
  url.set_encoded_path(run_path(id, "logs"));
  url.params().append({"after", std::to_string(after.value_or(0))});
  return request(call.api, verb::get, url.buffer());
}

json::value stop_run(Call& call) {
  check_known(call.arguments, {"instanceId"});
  return request(call.api, verb::post,
                 run_path(required_string(call.arguments, "instanceId"), "stop"));
}

json::value send_message(Call& call) {
  check_known(call.arguments, {"instanceId", "text"});
  const auto id = required_string(call.arguments, "instanceId");
  const auto text = required_string(call.arguments, "text");
  return request(call.api, verb::post, run_path(id, "messages"),
                 json::serialize(json::object{{"text", text}}));
}

// Sleeps up to `duration`; false when `stop` was asked first.
bool pause(std::stop_token stop, std::chrono::milliseconds duration) {
  std::mutex mutex;
  std::condition_variable_any woken;
  std::unique_lock lock(mutex);
  return !woken.wait_for(lock, stop, duration, [] { return false; }) && !stop.stop_requested();
}

json::value wait_run(Call& call) {
  check_known(call.arguments, {"instanceId", "timeoutSeconds"});
  const auto id = required_string(call.arguments, "instanceId");
  const double seconds = optional_number(call.arguments, "timeoutSeconds", 0, kMaxWaitSeconds)
                             .value_or(kDefaultWaitSeconds);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  // Polls the run: cheap on the kept-alive connection, and it cannot miss
  // the end the way a watcher that connects too late could.
  auto interval = std::chrono::milliseconds(100);
  while (true) {
    auto run = request(call.api, verb::get, run_path(id));
    const bool ended =
        run.is_object() && is_terminal_status(string_member(run.as_object(), "status"));
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (ended || left <= std::chrono::milliseconds(0)) return run;
    if (!pause(call.stop, std::min(interval, left))) return run;
    interval = std::min(interval * 3 / 2, std::chrono::milliseconds(1000));
  }
}

using ToolFunction = json::value (*)(Call&);

const std::map<std::string, ToolFunction, std::less<>>& tool_functions() {
  static const std::map<std::string, ToolFunction, std::less<>> functions{
      {"list_agents", &list_agents},   {"start_run", &start_run}, {"list_runs", &list_runs},
      {"get_run", &get_run},           {"get_logs", &get_logs},   {"stop_run", &stop_run},
      {"send_message", &send_message}, {"wait_run", &wait_run}};
  return functions;
}

}  // namespace

json::array mcp_tool_definitions() {
  return {
      tool("list_agents", "List agents",
           "List the agents the Nightshift host can run: installed plugins, local agents of "
           "the workspace and remixes, each with its id (e.g. installed:echo), description, "
           "params schema, and whether it is available (and why not).",
           {}, {}, true),
      tool("start_run", "Start a run",
           "Start a background run of an agent; answers the new Run (its instanceId, status, "
           "...). The run goes on after this call: follow it with wait_run, get_run, get_logs.",
           {{"agentId", string_property("The agent to run: an id from list_agents such as "
                                        "installed:echo or remix:todo-scan, or its bare name "
                                        "when only one agent has it.")},
            {"task", string_property("What the run should do: the agent's task text.")},
            {"params",
             {{"type", "object"},
              {"description",
               "Parameters for the agent, checked against the "
               "params schema list_agents shows."}}}},
           {"agentId"}, false),
      tool("list_runs", "List runs",
           "List runs: every active run, and the newest finished ones (history).",
           {{"status",
             {{"type", "string"},
              {"enum", {"queued", "running", "stopping", "completed", "failed", "cancelled"}},
              {"description", "Only runs in this status."}}},
            {"limit",
             {{"type", "integer"},
              {"minimum", 1},
              {"maximum", 500},
              {"description", "How many finished runs to list (default 50)."}}}},
           {}, true),
      tool("get_run", "Get a run", "Get one run: status, progress, error, result, timings.",
           {{"instanceId", instance_id_property()}}, {"instanceId"}, true),
      tool("get_logs", "Get a run's log",
           "Get a run's log entries after a sequence number (up to 1000 at a time). The answer's "
           "nextAfter is the `after` for the next page; complete is true once the run has ended "
           "and every entry was returned.",
           {{"instanceId", instance_id_property()},
            {"after",
             {{"type", "integer"},
              {"minimum", 0},
              {"description",
               "Only entries with a greater seq (default 0: from the "
               "start)."}}}},
           {"instanceId"}, true),
      tool("stop_run", "Stop a run",
           "Ask an active run to stop; answers the run (usually stopping, then cancelled).",
           {{"instanceId", instance_id_property()}}, {"instanceId"}, false),
      tool("send_message", "Send a message to a run",
           "Send a message to an active run whose agent accepts messages (its run says "
           "acceptsMessages); the agent reads it while it works. Answers the log seq of the "
           "recorded message. While 100 messages (the host's --max-unread-messages) wait "
           "unread, more are refused with too_many_messages: wait for the agent, then resend.",
           {{"instanceId", instance_id_property()},
            {"text",
             {{"type", "string"},
              {"minLength", 1},
              {"description", "The message (at most 64 KiB)."}}}},
           {"instanceId", "text"}, false),
      tool("wait_run", "Wait for a run to end",
           "Wait until a run has ended (completed, failed or cancelled) or the timeout passes, "
           "then answer the run as it is: check its status to tell which.",
           {{"instanceId", instance_id_property()},
            {"timeoutSeconds",
             {{"type", "number"},
              {"minimum", 0},
              {"maximum", kMaxWaitSeconds},
              {"default", kDefaultWaitSeconds},
              {"description", "How long to wait at most (default 60)."}}}},
           {"instanceId"}, true),
  };
}

ToolResult call_mcp_tool(const HostEndpoint& endpoint, std::string_view name,
                         const json::object& arguments, std::stop_token stop) {
  const auto& functions = tool_functions();
  const auto found = functions.find(name);
  if (found == functions.end()) {
    std::string names;
    for (const auto& [known, function] : functions) names += (names.empty() ? "" : ", ") + known;
    return {"unknown tool '" + std::string(name) + "'; the tools are: " + names, true};
  }
  try {
    ApiClient api(endpoint);
    Call call{api, arguments, std::move(stop)};
    return {json::serialize(found->second(call)), false};
  } catch (const ArgumentError& error) {
    return {std::string("invalid arguments for ") + std::string(name) + ": " + error.what(), true};
  } catch (const std::exception& error) {
    // ApiFailure (the host's answer), CliError (no host, bad URL; an
    // unknown or ambiguous bare agent name), or anything unexpected.
    return {error.what(), true};
  }
}

}  // namespace nightshift::cli
