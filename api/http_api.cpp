#include "api/http_api.hpp"

#include <spdlog/spdlog.h>

#include <boost/beast/core/string.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <map>

#include "api/api_error.hpp"
#include "panel/panel_assets.hpp"

#ifndef NIGHTSHIFT_VERSION
#error "NIGHTSHIFT_VERSION must be defined by the build"
#endif

namespace nightshift::api {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::size_t kDefaultHistoryLimit = 50;
constexpr std::size_t kMaxHistoryLimit = 500;
constexpr std::size_t kDefaultLogLimit = 1000;
constexpr std::size_t kMaxLogLimit = 5000;

std::string_view view(boost::core::string_view text) {
  return {text.data(), text.size()};
}

// Compares in time that depends only on the expected token's length, so that
// a client cannot find the token byte by byte from response times.
bool constant_time_equals(std::string_view given, std::string_view expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const unsigned char byte = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    difference |= static_cast<unsigned char>(byte ^ static_cast<unsigned char>(expected[i]));
  }
  return difference == 0;
}

ApiError invalid_query(const std::string& message) {
  return ApiError(http::status::bad_request, "invalid_query", message);
}

ApiError invalid_request(const std::string& message) {
  return ApiError(http::status::bad_request, "invalid_request", message);
}

// The query's parameters, decoded. A parameter given twice is refused rather
// than one of the two silently winning; parameters we do not know are ignored.
std::map<std::string, std::string> query_parameters(boost::urls::url_view url) {
  std::map<std::string, std::string> result;
  for (const auto& param : url.params()) {
    std::string key(param.key);
    if (!result.emplace(key, std::string(param.value)).second) {
      throw invalid_query("the query parameter '" + key + "' is given more than once");
    }
  }
  return result;
}

std::uint64_t parse_integer(const std::string& name, const std::string& text, std::uint64_t min,
                            std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    throw invalid_query(name + " must be an integer from " + std::to_string(min) + " to " +
                        std::to_string(max) + ", got '" + text + "'");
  }
  return value;
}

bool valid_agent_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

bool valid_agent_id(std::string_view id) {
  const auto colon = id.find(':');
  if (colon == std::string_view::npos) return false;
  return parse_agent_source(id.substr(0, colon)).has_value() &&
         valid_agent_name(id.substr(colon + 1));
}

std::string serialize_runs(const std::vector<Run>& runs) {
  json::array array;
  array.reserve(runs.size());
  const Timestamp now = now_ms();
  for (const Run& run : runs) array.emplace_back(to_json(run, now));
  return json::serialize(array);
}

Response make_response(const Request& request, http::status status, std::string body,
                       std::string_view content_type = "application/json") {
  Response response{status, request.version()};
  response.keep_alive(request.keep_alive());
  response.set(http::field::content_type, content_type);
  response.set(http::field::cache_control, "no-store");
  response.body() = std::move(body);
  return response;
}

Response json_response(const Request& request, http::status status, const json::value& value) {
  return make_response(request, status, json::serialize(value));
}

const std::string& run_id(const std::vector<std::string>& captures) {
  // A malformed id cannot name a run: 404 run_not_found, as for an unknown one.
  if (!is_uuid(captures.at(0))) {
    throw ApiError(http::status::not_found, "run_not_found",
                   "no run has the id '" + captures.at(0) + "'");
  }
  return captures.at(0);
}

bool is_json_media_type(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  return boost::beast::iequals(media, "application/json");
}

ApiError from_catalog_error(const CatalogError& error) {
  switch (error.code()) {
    case CatalogError::Code::agent_not_found:
      return ApiError(http::status::not_found, "agent_not_found", error.what());
    case CatalogError::Code::agent_unavailable:
      return ApiError(http::status::unprocessable_entity, "agent_unavailable", error.what());
    case CatalogError::Code::invalid_params:
      return ApiError(http::status::bad_request, "invalid_params", error.what());
  }
  return ApiError(http::status::internal_server_error, "internal_error", error.what());
}

ApiError from_run_error(const RunError& error) {
  switch (error.code()) {
    case RunError::Code::run_not_found:
      return ApiError(http::status::not_found, "run_not_found", error.what());
    case RunError::Code::run_not_active:
      return ApiError(http::status::conflict, "run_not_active", error.what());
    case RunError::Code::run_active:
      return ApiError(http::status::conflict, "run_active", error.what());
    case RunError::Code::at_capacity:
      return ApiError(http::status::service_unavailable, "at_capacity", error.what(),
                      {{"Retry-After", "1"}});
    case RunError::Code::shutting_down:
      return ApiError(http::status::service_unavailable, "shutting_down", error.what(),
                      {{"Retry-After", "5"}});
    case RunError::Code::invalid_cursor:
      return invalid_query(std::string("cursor is not one this server gave out: ") + error.what());
    case RunError::Code::messages_not_supported:
      return ApiError(http::status::unprocessable_entity, "messages_not_supported", error.what());
    case RunError::Code::store_failed:
      return ApiError(http::status::service_unavailable, "store_unavailable", error.what(),
                      {{"Retry-After", "5"}});
  }
  return ApiError(http::status::internal_server_error, "internal_error", error.what());
}

Response error_for(const Request& request, const ApiError& error) {
  Response response = HttpApi::error_response(request.version(), request.keep_alive(),
                                              error.status(), error.code(), error.what());
  for (const auto& [name, value] : error.headers()) response.set(name, value);
  return response;
}

StartRequest parse_start_body(const std::string& body, std::size_t max_task_bytes) {
  if (body.empty()) {
    throw invalid_request(
        "the body is empty; send a JSON object such as {\"agentId\": \"installed:echo\"}");
  }
  boost::system::error_code error;
  json::value parsed = json::parse(body, error);
  if (error) throw invalid_request("the body is not valid JSON: " + error.message());
  if (!parsed.is_object()) throw invalid_request("the body must be a JSON object");
  const json::object& object = parsed.get_object();

  StartRequest start;
  const json::value* agent_id = object.if_contains("agentId");
  if (agent_id == nullptr || agent_id->is_null()) throw invalid_request("agentId is required");
  if (!agent_id->is_string()) throw invalid_request("agentId must be a string");
  start.agent_id = std::string(agent_id->get_string());
  if (!valid_agent_id(start.agent_id)) {
    throw invalid_request("agentId '" + start.agent_id +
                          "' is not of the form <source>:<name>, e.g. installed:echo");
  }
  if (const json::value* task = object.if_contains("task"); task && !task->is_null()) {
    if (!task->is_string()) throw invalid_request("task must be a string or null");
    if (task->get_string().size() > max_task_bytes) {
      throw invalid_request("task is " + std::to_string(task->get_string().size()) +
                            " bytes; the limit is " + std::to_string(max_task_bytes));
    }
    start.task = std::string(task->get_string());
  }
  if (const json::value* params = object.if_contains("params"); params && !params->is_null()) {
    if (!params->is_object()) throw invalid_request("params must be a JSON object");
    start.params = params->get_object();
  }
  return start;
}

}  // namespace

HttpApi::HttpApi(const ServerOptions& options, bool bound_to_loopback, RunManager& runs,
                 Catalog& catalog, HistoryCache& history, Metrics& metrics)
    : options_(options),
      bound_to_loopback_(bound_to_loopback),
      runs_(runs),
      catalog_(catalog),
      history_(history),
      metrics_(metrics) {
  using http::verb;
  router_.add({verb::get, "/background-agents", Access::token}, &HttpApi::list_runs);
  router_.add({verb::post, "/background-agents/start", Access::token}, &HttpApi::start_run);
  router_.add({verb::get, "/background-agents/{instanceId}", Access::token}, &HttpApi::get_run);
  router_.add({verb::delete_, "/background-agents/{instanceId}", Access::token},
              &HttpApi::delete_run);
  router_.add({verb::get, "/background-agents/{instanceId}/logs", Access::token},
              &HttpApi::get_logs);
  router_.add({verb::post, "/background-agents/{instanceId}/stop", Access::token},
              &HttpApi::stop_run);
  router_.add({verb::get, "/agents", Access::token}, &HttpApi::list_agents);
  router_.add({verb::post, "/agents/rescan", Access::token}, &HttpApi::rescan_agents);
  router_.add({verb::get, "/healthz", Access::open}, &HttpApi::health);
  router_.add({verb::get, "/metrics", Access::token}, &HttpApi::metrics);
  router_.add({verb::get, kWebSocketPath, Access::token_or_query},
              &HttpApi::websocket_without_upgrade);
  router_.add({verb::get, "/", Access::open}, &HttpApi::panel_file);
  router_.add({verb::get, "/assets/{file}", Access::open}, &HttpApi::panel_file);
}

Response HttpApi::error_response(unsigned http_version, bool keep_alive, http::status status,
                                 std::string_view code, std::string_view message) {
  Response response{status, http_version};
  response.keep_alive(keep_alive);
  response.set(http::field::content_type, "application/json");
  response.set(http::field::cache_control, "no-store");
  response.body() =
      json::serialize(json::object{{"error", json::object{{"code", code}, {"message", message}}}});
  return response;
}

bool HttpApi::host_allowed(const Request& request) const {
  if (!bound_to_loopback_) return true;
  const auto found = request.find(http::field::host);
  if (found == request.end()) return false;
  std::string_view host = view(found->value());
  std::string_view name;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(0, close + 1);
  } else {
    name = host.substr(0, host.find(':'));
  }
  return boost::beast::iequals(name, "localhost") || name == "127.0.0.1" || name == "[::1]";
}

bool HttpApi::authorized(const Request& request, boost::urls::url_view url, Access access) const {
  if (access == Access::open) return true;
  const auto header = request.find(http::field::authorization);
  if (header != request.end()) {
    const std::string_view value = view(header->value());
    constexpr std::string_view scheme = "bearer ";
    if (value.size() > scheme.size() &&
        boost::beast::iequals(value.substr(0, scheme.size()), scheme)) {
      return constant_time_equals(value.substr(scheme.size()), options_.token);
    }
    return false;
  }
  if (access == Access::token_or_query) {
    for (const auto& param : url.params()) {
      if (param.key == "token")
        return constant_time_equals(std::string(param.value), options_.token);
    }
  }
  return false;
}

std::optional<Response> HttpApi::admit(const Request& request, boost::urls::url_view url,
                                       Router<Handler>::Match& match) const {
  const auto refuse = [&](http::status status, std::string_view code, std::string_view message) {
    return error_response(request.version(), request.keep_alive(), status, code, message);
  };
  if (!host_allowed(request)) {
    return refuse(http::status::forbidden, "host_not_allowed",
                  "this server is bound to a loopback address and only answers requests for "
                  "localhost, 127.0.0.1 or [::1]");
  }
  std::vector<std::string> segments;
  for (auto segment : url.segments()) segments.emplace_back(segment);
  match = router_.match(request.method(), segments);
  if (match.outcome == Router<Handler>::Outcome::not_found) {
    return refuse(http::status::not_found, "not_found",
                  "there is nothing at " + std::string(view(url.path())));
  }
  if (!authorized(request, url, match.access)) {
    Response response = refuse(http::status::unauthorized, "unauthorized",
                               "send the server's token as 'Authorization: Bearer <token>'; "
                               "`nightshift serve` prints it and keeps it in <data-dir>/token");
    response.set(http::field::www_authenticate, "Bearer");
    return response;
  }
  if (match.outcome == Router<Handler>::Outcome::method_not_allowed) {
    Response response = refuse(http::status::method_not_allowed, "method_not_allowed",
                               std::string(view(request.method_string())) +
                                   " is not allowed here; allowed: " + match.allow);
    response.set(http::field::allow, match.allow);
    return response;
  }
  return std::nullopt;
}

Response HttpApi::dispatch(const Request& request) const {
  auto url = boost::urls::parse_origin_form(request.target());
  if (!url) throw invalid_request("the request target is not a valid path and query");
  Router<Handler>::Match match;
  if (auto refusal = admit(request, *url, match)) return std::move(*refusal);
  if (request.method() == http::verb::post && !request.body().empty() &&
      !is_json_media_type(view(request[http::field::content_type]))) {
    throw ApiError(http::status::unsupported_media_type, "unsupported_media_type",
                   "send the body as 'Content-Type: application/json'");
  }
  const Call call{request, *url, std::move(match.captures)};
  return (this->*(match.route->handler))(call);
}

Response HttpApi::handle(const Request& request) const noexcept {
  try {
    try {
      return dispatch(request);
    } catch (const CatalogError& error) {
      throw from_catalog_error(error);
    } catch (const RunError& error) {
      throw from_run_error(error);
    }
  } catch (const ApiError& error) {
    if (error.status() == http::status::internal_server_error) {
      spdlog::error("{} {}: {}", view(request.method_string()), view(request.target()),
                    error.what());
    }
    return error_for(request, error);
  } catch (const std::exception& error) {
    spdlog::error("{} {} failed: {}", view(request.method_string()), view(request.target()),
                  error.what());
  } catch (...) {
    spdlog::error("{} {} failed with an unknown exception", view(request.method_string()),
                  view(request.target()));
  }
  try {
    return error_response(request.version(), request.keep_alive(),
                          http::status::internal_server_error, "internal_error",
                          "the server failed to answer; its log says why");
  } catch (...) {
    return Response{http::status::internal_server_error, request.version()};
  }
}

std::optional<Response> HttpApi::check_websocket_upgrade(const Request& request) const noexcept {
  try {
    auto url = boost::urls::parse_origin_form(request.target());
    if (!url) return handle(request);
    Router<Handler>::Match match;
    if (auto refusal = admit(request, *url, match)) return refusal;
    if (match.route->handler != &HttpApi::websocket_without_upgrade) return handle(request);
    return std::nullopt;
  } catch (...) {
    return handle(request);
  }
}

Response HttpApi::list_runs(const Call& call) const {
  HistoryQuery query;
  query.limit = kDefaultHistoryLimit;
  for (const auto& [key, value] : query_parameters(call.url)) {
    if (key == "limit") {
      query.limit = parse_integer("limit", value, 1, kMaxHistoryLimit);
    } else if (key == "cursor") {
      if (value.empty())
        throw invalid_query("cursor must not be empty; omit it for the first page");
      query.cursor = value;
    } else if (key == "status") {
      const auto status = parse_run_status(value);
      if (!status || !is_terminal(*status)) {
        throw invalid_query("status must be completed, failed or cancelled, got '" + value + "'");
      }
      query.status = status;
    } else if (key == "agentId") {
      if (!valid_agent_id(value)) {
        throw invalid_query("agentId must be of the form <source>:<name>, got '" + value + "'");
      }
      query.agent_id = value;
    }
  }
  const auto page = history_.get(query, [&] { return runs_.history(query); });
  std::string body = "{\"active\":";
  body += serialize_runs(runs_.active(query.agent_id));
  body += ",\"history\":";
  body += page->history_json;
  body += ",\"nextCursor\":";
  body += page->next_cursor ? json::serialize(json::string(*page->next_cursor)) : "null";
  body += '}';
  return make_response(call.request, http::status::ok, std::move(body));
}

Response HttpApi::get_run(const Call& call) const {
  const std::string& id = run_id(call.captures);
  const auto run = runs_.get(id);
  if (!run)
    throw from_run_error(RunError(RunError::Code::run_not_found, "no run has the id '" + id + "'"));
  return json_response(call.request, http::status::ok, to_json(*run, now_ms()));
}

Response HttpApi::get_logs(const Call& call) const {
  const std::string& id = run_id(call.captures);
  std::uint64_t after = 0;
  std::size_t limit = kDefaultLogLimit;
  for (const auto& [key, value] : query_parameters(call.url)) {
    if (key == "after") {
      after = parse_integer("after", value, 0, std::numeric_limits<std::int64_t>::max());
    } else if (key == "limit") {
      limit = parse_integer("limit", value, 1, kMaxLogLimit);
    }
  }
  const LogPage page = runs_.logs(id, after, limit);
  json::array entries;
  entries.reserve(page.entries.size());
  for (const LogEntry& entry : page.entries) entries.emplace_back(to_json(entry));
  return json_response(call.request, http::status::ok,
                       json::object{{"instanceId", id},
                                    {"entries", std::move(entries)},
                                    {"nextAfter", page.next_after},
                                    {"complete", page.complete}});
}

Response HttpApi::start_run(const Call& call) const {
  const StartRequest start = parse_start_body(call.request.body(), options_.max_task_bytes);
  const Run run = runs_.start(start);
  Response response = json_response(call.request, http::status::created, to_json(run, now_ms()));
  response.set(http::field::location, "/background-agents/" + run.instance_id);
  return response;
}

Response HttpApi::stop_run(const Call& call) const {
  const Run run = runs_.stop(run_id(call.captures));
  return json_response(call.request, http::status::accepted, to_json(run, now_ms()));
}

Response HttpApi::delete_run(const Call& call) const {
  runs_.remove(run_id(call.captures));
  Response response{http::status::no_content, call.request.version()};
  response.keep_alive(call.request.keep_alive());
  return response;
}

namespace {

json::object agents_body(const std::vector<AgentInfo>& agents) {
  json::array list;
  for (const AgentInfo& agent : agents) list.emplace_back(to_json(agent));
  return json::object{{"agents", std::move(list)}};
}

}  // namespace

Response HttpApi::list_agents(const Call& call) const {
  return json_response(call.request, http::status::ok, agents_body(catalog_.agents()));
}

Response HttpApi::rescan_agents(const Call& call) const {
  return json_response(call.request, http::status::ok, agents_body(catalog_.rescan()));
}

Response HttpApi::health(const Call& call) const {
  return json_response(call.request, http::status::ok,
                       json::object{{"status", "ok"}, {"version", NIGHTSHIFT_VERSION}});
}

Response HttpApi::metrics(const Call& call) const {
  return make_response(call.request, http::status::ok, metrics_.render(runs_.stats()),
                       "text/plain; version=0.0.4; charset=utf-8");
}

Response HttpApi::panel_file(const Call& call) const {
  const auto asset = panel::find_asset(view(call.url.path()));
  if (!asset) {
    throw ApiError(http::status::not_found, "not_found",
                   "the panel has no file " + std::string(view(call.url.path())));
  }
  Response response = make_response(call.request, http::status::ok, std::string(asset->content),
                                    asset->content_type);
  response.set(http::field::cache_control, "no-cache");
  response.set("X-Content-Type-Options", "nosniff");
  return response;
}

Response HttpApi::websocket_without_upgrade(const Call&) const {
  throw ApiError(http::status::upgrade_required, "upgrade_required",
                 "this path is a WebSocket; connect with a WebSocket client",
                 {{"Upgrade", "websocket"}});
}

}  // namespace nightshift::api
