#include "cli/api_client.hpp"

#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/url.hpp>

#include "cli/exit_codes.hpp"

namespace nightshift::cli {
namespace json = boost::json;
using boost::beast::http::verb;

namespace {

ExitCode exit_code_for(unsigned status, std::string_view code) {
  if (status == 401) return ExitCode::unauthorized;
  if (code == "run_not_found") return ExitCode::run_not_found;
  if (code == "agent_not_found" || code == "agent_unavailable") return ExitCode::agent_not_found;
  if (status == 503 || status == 429 || code == "at_capacity") return ExitCode::at_capacity;
  if (status == 409) return ExitCode::conflict;
  if (status == 400 || status == 413 || status == 415 || status == 422) {
    return ExitCode::invalid_request;
  }
  return ExitCode::error;
}

// Reads {"error": {"code", "message"}}; tolerates bodies that are not.
std::pair<std::string, std::string> error_of(const HttpResponse& response) {
  boost::system::error_code parse_error;
  const auto body = json::parse(response.body, parse_error);
  if (!parse_error && body.is_object()) {
    if (const auto* error = body.as_object().if_contains("error"); error && error->is_object()) {
      return {string_member(error->as_object(), "code"),
              string_member(error->as_object(), "message")};
    }
  }
  return {"", response.body};
}

[[noreturn]] void throw_api_error(const HostEndpoint& endpoint, const HttpResponse& response) {
  auto [code, message] = error_of(response);
  if (response.status == 401) {
    throw CliError(ExitCode::unauthorized,
                   "the host at " + endpoint.url +
                       " refused the token (401 unauthorized); pass --token or set "
                       "NIGHTSHIFT_TOKEN (the host's token is in " +
                       endpoint.token_file.string() + " on its machine)");
  }
  if (message.empty()) message = "the host answered " + std::to_string(response.status);
  if (response.status == 503 && !response.retry_after.empty()) {
    message += " (retry after " + response.retry_after + " s)";
  }
  if (!code.empty()) message += " [" + code + "]";
  throw CliError(exit_code_for(response.status, code), message);
}

std::string run_path(std::string_view instance_id) {
  boost::urls::url url;
  url.set_path_absolute(true);
  url.segments().push_back("background-agents");
  url.segments().push_back(instance_id);
  return std::string(url.encoded_path());
}

}  // namespace

json::value ApiClient::request(verb method, std::string_view target, std::string_view body) {
  return call(method, target, body);
}

std::string string_member(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (!value || value->is_null()) return {};
  if (value->is_string()) return std::string(value->as_string());
  return json::serialize(*value);
}

std::int64_t int_member(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (!value) return 0;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) return static_cast<std::int64_t>(value->as_uint64());
  if (value->is_double()) return static_cast<std::int64_t>(value->as_double());
  return 0;
}

bool is_terminal_status(std::string_view status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

ApiClient::ApiClient(HostEndpoint endpoint) : connection_(std::move(endpoint)) {}

json::value ApiClient::call(verb method, std::string_view target, std::string_view body) {
  const auto response = connection_.request(method, target, body);
  if (response.status < 200 || response.status >= 300) {
    throw_api_error(connection_.endpoint(), response);
  }
  if (response.body.empty()) return nullptr;
  boost::system::error_code parse_error;
  auto value = json::parse(response.body, parse_error);
  if (parse_error) {
    throw CliError(ExitCode::error,
                   "the host sent a response that is not JSON: " + parse_error.message());
  }
  return value;
}

json::array ApiClient::agents(bool rescan) {
  auto body = rescan ? call(verb::post, "/agents/rescan") : call(verb::get, "/agents");
  if (!body.is_object() || !body.as_object().contains("agents") ||
      !body.as_object().at("agents").is_array()) {
    throw CliError(ExitCode::error, "the host's agent list has no 'agents' array");
  }
  return std::move(body.as_object().at("agents").as_array());
}

RunLists ApiClient::runs(const RunQuery& query) {
  RunLists lists;
  std::optional<std::string> cursor;
  while (true) {
    boost::urls::url url;
    url.set_path("/background-agents");
    auto params = url.params();
    params.append(
        {"limit", query.include_history ? std::to_string(query.page_size) : std::string("1")});
    if (query.status) params.append({"status", *query.status});
    if (query.agent_id) params.append({"agentId", *query.agent_id});
    if (cursor) params.append({"cursor", *cursor});
    auto body = call(verb::get, url.buffer());
    auto& page = body.as_object();
    if (!cursor) lists.active = page.at("active").as_array();
    if (!query.include_history) break;
    for (auto& run : page.at("history").as_array()) lists.history.push_back(std::move(run));
    const auto* next = page.if_contains("nextCursor");
    if (!next || !next->is_string()) break;
    cursor = std::string(next->as_string());
  }
  return lists;
}

json::object ApiClient::run(std::string_view instance_id) {
  return call(verb::get, run_path(instance_id)).as_object();
}

json::object ApiClient::logs_page(std::string_view instance_id, std::uint64_t after) {
  boost::urls::url url;
  url.set_encoded_path(run_path(instance_id) + "/logs");
  url.params().append({"after", std::to_string(after)});
  url.params().append({"limit", "1000"});
  return call(verb::get, url.buffer()).as_object();
}

json::object ApiClient::start(const json::object& body) {
  return call(verb::post, "/background-agents/start", json::serialize(body)).as_object();
}

json::object ApiClient::stop(std::string_view instance_id) {
  return call(verb::post, run_path(instance_id) + "/stop").as_object();
}

json::object ApiClient::send_message(std::string_view instance_id, std::string_view text) {
  const std::string body = json::serialize(json::object{{"text", text}});
  return call(verb::post, run_path(instance_id) + "/messages", body).as_object();
}

void ApiClient::remove(std::string_view instance_id) {
  call(verb::delete_, run_path(instance_id));
}

}  // namespace nightshift::cli
