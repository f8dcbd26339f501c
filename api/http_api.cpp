#include "api/http_api.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <limits>
#include <map>

#include "api/api_error.hpp"
#include "api/wire.hpp"
#include "api/wire_automation.hpp"
#include "model/store_unavailable.hpp"
#include "panel/panel_assets.hpp"

#ifndef NIGHTSHIFT_VERSION
#error "NIGHTSHIFT_VERSION must be defined by the build"
#endif

namespace nightshift::api {

namespace http = boost::beast::http;
namespace net = boost::asio;

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

Response make_response(const Request& request, http::status status, ResponseBody::value_type body,
                       std::string_view content_type = "application/json") {
  Response response{status, request.version()};
  response.keep_alive(request.keep_alive());
  response.set(http::field::content_type, content_type);
  response.set(http::field::cache_control, "no-store");
  response.body() = std::move(body);
  return response;
}

// A list page: the active runs serialized for this request around the
// cached history array, which is sent from the cache without a copy.
ResponseBody::value_type list_page_body(std::string_view active_array,
                                        const std::shared_ptr<const CachedHistoryPage>& page) {
  wire::ListPageFrame frame = wire::list_page_frame(active_array, page->next_cursor);
  return ResponseBody::value_type(std::move(frame.before), page, page->history_json,
                                  std::move(frame.after));
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
    case RunError::Code::too_many_messages:
      return ApiError(http::status::too_many_requests, "too_many_messages", error.what(),
                      {{"Retry-After", "1"}});
    case RunError::Code::store_failed:
      return ApiError(http::status::service_unavailable, "store_unavailable", error.what(),
                      {{"Retry-After", "5"}});
  }
  return ApiError(http::status::internal_server_error, "internal_error", error.what());
}

ApiError from_automation_error(const AutomationError& error) {
  switch (error.code()) {
    case AutomationError::Code::schedule_not_found:
      return ApiError(http::status::not_found, "schedule_not_found", error.what());
    case AutomationError::Code::webhook_not_found:
      return ApiError(http::status::not_found, "webhook_not_found", error.what());
    case AutomationError::Code::invalid_schedule:
      return ApiError(http::status::bad_request, "invalid_schedule", error.what());
    case AutomationError::Code::invalid_webhook:
      return ApiError(http::status::bad_request, "invalid_webhook", error.what());
  }
  return ApiError(http::status::internal_server_error, "internal_error", error.what());
}

Response error_for(const Request& request, const ApiError& error) {
  Response response = HttpApi::error_response(request.version(), request.keep_alive(),
                                              error.status(), error.code(), error.what());
  for (const auto& [name, value] : error.headers()) response.set(name, value);
  return response;
}

}  // namespace

HttpApi::HttpApi(const ServerOptions& options, bool bound_to_loopback, RunManager& runs,
                 Catalog& catalog, Automation& automation, HistoryCache& history, Metrics& metrics,
                 net::thread_pool& pool)
    : options_(options),
      bound_to_loopback_(bound_to_loopback),
      runs_(runs),
      catalog_(catalog),
      automation_(automation),
      history_(history),
      metrics_(metrics),
      pool_(pool) {
  using http::verb;
  constexpr auto io = AnsweredOn::io_thread;
  constexpr auto pooled = AnsweredOn::pool;
  router_.add({verb::get, "/background-agents", Access::token},
              {pooled, &HttpApi::list_runs, &HttpApi::list_runs_from_memory});
  router_.add({verb::post, "/background-agents/start", Access::token},
              {AnsweredOn::commit, nullptr});
  router_.add({verb::get, "/background-agents/{instanceId}", Access::token},
              {pooled, &HttpApi::get_run});
  router_.add({verb::delete_, "/background-agents/{instanceId}", Access::token},
              {pooled, &HttpApi::delete_run});
  router_.add({verb::get, "/background-agents/{instanceId}/logs", Access::token},
              {pooled, &HttpApi::get_logs});
  router_.add({verb::post, "/background-agents/{instanceId}/stop", Access::token},
              {pooled, &HttpApi::stop_run});
  router_.add({verb::post, "/background-agents/{instanceId}/messages", Access::token},
              {pooled, &HttpApi::send_message});
  // Automation: each touches the store (and a re-run or trigger waits for
  // the new run's commit), so all are answered on the pool.
  router_.add({verb::post, "/background-agents/{instanceId}/rerun", Access::token},
              {pooled, &HttpApi::rerun_run});
  router_.add({verb::get, "/schedules", Access::token}, {pooled, &HttpApi::list_schedules});
  router_.add({verb::post, "/schedules", Access::token}, {pooled, &HttpApi::create_schedule});
  router_.add({verb::get, "/schedules/{id}", Access::token}, {pooled, &HttpApi::get_schedule});
  router_.add({verb::patch, "/schedules/{id}", Access::token}, {pooled, &HttpApi::update_schedule});
  router_.add({verb::delete_, "/schedules/{id}", Access::token},
              {pooled, &HttpApi::delete_schedule});
  router_.add({verb::post, "/schedules/{id}/trigger", Access::token},
              {pooled, &HttpApi::trigger_schedule});
  router_.add({verb::get, "/webhooks", Access::token}, {pooled, &HttpApi::list_webhooks});
  router_.add({verb::post, "/webhooks", Access::token}, {pooled, &HttpApi::create_webhook});
  router_.add({verb::delete_, "/webhooks/{id}", Access::token}, {pooled, &HttpApi::delete_webhook});
  router_.add({verb::get, "/webhooks/{id}/deliveries", Access::token},
              {pooled, &HttpApi::list_deliveries});
  // The catalog's list is an in-memory snapshot; a rescan reads the disk
  // and loads plugins.
  router_.add({verb::get, "/agents", Access::token}, {io, &HttpApi::list_agents});
  router_.add({verb::post, "/agents/rescan", Access::token}, {pooled, &HttpApi::rescan_agents});
  router_.add({verb::get, "/healthz", Access::open}, {io, &HttpApi::health});
  // A shared store's host table is read from the database.
  router_.add({verb::get, "/hosts", Access::token}, {pooled, &HttpApi::list_hosts});
  // The run manager's stats are counters in memory.
  router_.add({verb::get, "/metrics", Access::token}, {io, &HttpApi::metrics});
  router_.add({verb::get, kWebSocketPath, Access::token_or_query},
              {io, &HttpApi::websocket_without_upgrade});
  router_.add({verb::get, "/", Access::open}, {io, &HttpApi::panel_file});
  router_.add({verb::get, "/assets/{file}", Access::open}, {io, &HttpApi::panel_file});
}

Response HttpApi::error_response(unsigned http_version, bool keep_alive, http::status status,
                                 std::string_view code, std::string_view message) {
  Response response{status, http_version};
  response.keep_alive(keep_alive);
  response.set(http::field::content_type, "application/json");
  response.set(http::field::cache_control, "no-store");
  response.body() = wire::error_body(code, message);
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

std::optional<Response> HttpApi::route(const std::shared_ptr<const Request>& request,
                                       std::optional<Call>& call, const Handler*& handler) const {
  auto url = boost::urls::parse_origin_form(request->target());
  if (!url) throw wire::invalid_request("the request target is not a valid path and query");
  Router<Handler>::Match match;
  if (auto refusal = admit(*request, *url, match)) return refusal;
  if ((request->method() == http::verb::post || request->method() == http::verb::patch) &&
      !request->body().empty() &&
      !is_json_media_type(view((*request)[http::field::content_type]))) {
    throw ApiError(http::status::unsupported_media_type, "unsupported_media_type",
                   "send the body as 'Content-Type: application/json'");
  }
  call.emplace(Call{request, *url, std::move(match.captures)});
  handler = &match.route->handler;
  return std::nullopt;
}

Response HttpApi::guarded(const Request& request,
                          const std::function<Response()>& respond) noexcept {
  // An answer that always comes: guarded_maybe never answers none for it.
  return *guarded_maybe(request, [&]() -> std::optional<Response> { return respond(); });
}

std::optional<Response> HttpApi::guarded_maybe(
    const Request& request, const std::function<std::optional<Response>()>& respond) noexcept {
  try {
    try {
      return respond();
    } catch (const CatalogError& error) {
      throw from_catalog_error(error);
    } catch (const RunError& error) {
      throw from_run_error(error);
    } catch (const StoreUnavailable& error) {
      // A shared store that cannot be reached (restarting, network): reads
      // come back once it does.
      throw ApiError(http::status::service_unavailable, "store_unavailable", error.what(),
                     {{"Retry-After", "5"}});
    } catch (const AutomationError& error) {
      throw from_automation_error(error);
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

void HttpApi::handle(std::shared_ptr<const Request> request, const net::any_io_executor& strand,
                     Send send) const noexcept {
  std::optional<Call> call;
  const Handler* handler = nullptr;
  std::optional<Response> refusal =
      guarded_maybe(*request, [&] { return route(request, call, handler); });
  try {
    // route() answers a refusal, or sets the call.
    if (refusal) return send(std::move(*refusal));
    switch (handler->answered_on) {
      case AnsweredOn::io_thread:
        return send(guarded(*request, [&] { return (this->*(handler->respond))(*call); }));
      case AnsweredOn::pool:
        if (handler->try_at_once != nullptr) {
          // An answer from memory, or a refusal (a bad query): neither waits.
          std::optional<Response> at_once =
              guarded_maybe(*request, [&] { return (this->*(handler->try_at_once))(*call); });
          if (at_once) return send(std::move(*at_once));
        }
        return answer_on_pool(std::move(*call), handler->respond, strand, std::move(send));
      case AnsweredOn::commit:
        return start_run(std::move(*call), strand, std::move(send));
    }
  } catch (const std::exception& error) {
    // Only a failure to allocate or to post gets here; the session's
    // request timeout then ends the connection.
    spdlog::error("{} {} could not be answered: {}", view(request->method_string()),
                  view(request->target()), error.what());
  }
}

void HttpApi::answer_on_pool(Call call, Respond respond, const net::any_io_executor& strand,
                             Send send) const {
  const auto id = pending_->add(strand, std::move(send));
  net::post(pool_, [this, call = std::move(call), respond, id] {
    Response response = guarded(*call.request, [&] { return (this->*respond)(call); });
    pending_->complete(id,
                       [response = std::move(response)]() mutable { return std::move(response); });
  });
}

// The body is checked here, on the I/O thread (it is only parsing); the run
// manager validates and reserves on this thread too, and calls back once the
// store has committed the run. The callback only posts: the response is built
// on the session's strand.
void HttpApi::start_run(Call call, const net::any_io_executor& strand, Send send) const {
  StartRequest start;
  bool parsed = false;
  Response refusal = guarded(*call.request, [&]() -> Response {
    start = wire::parse_start_body(call.request->body(), options_.max_task_bytes);
    parsed = true;
    return Response{};
  });
  if (!parsed) return send(std::move(refusal));

  const auto id = pending_->add(strand, std::move(send));
  auto answer = [pending = pending_, id, request = call.request](RunManager::StartOutcome outcome) {
    pending->complete(id, [request, outcome = std::move(outcome)] {
      return guarded(*request, [&] {
        if (outcome.error) std::rethrow_exception(outcome.error);
        const Run& run = outcome.run.value();
        Response response =
            make_response(*request, http::status::created, wire::run_body(run, now_ms()));
        response.set(http::field::location, "/background-agents/" + run.instance_id);
        return response;
      });
    });
  };
  try {
    runs_.start(std::move(start), answer);
  } catch (...) {
    // The manager reports refusals through the callback; anything it throws
    // instead (e.g. out of memory) is answered the same way.
    answer(RunManager::StartOutcome{std::nullopt, std::current_exception()});
  }
}

void HttpApi::close() noexcept {
  pending_->close();
}

bool HttpApi::may_upgrade(const Request& request) const noexcept {
  try {
    auto url = boost::urls::parse_origin_form(request.target());
    if (!url) return false;
    Router<Handler>::Match match;
    return !admit(request, *url, match) &&
           match.route->handler.respond == &HttpApi::websocket_without_upgrade;
  } catch (...) {
    return false;
  }
}

namespace {

// The query of GET /background-agents. Throws ApiError naming what is wrong.
HistoryQuery history_query(boost::urls::url_view url) {
  HistoryQuery query;
  query.limit = kDefaultHistoryLimit;
  for (const auto& [key, value] : query_parameters(url)) {
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
      if (!wire::is_agent_id(value)) {
        throw invalid_query("agentId must be of the form <source>:<name>, got '" + value + "'");
      }
      query.agent_id = value;
    }
  }
  return query;
}

// Active runs the I/O thread may copy and sort at once; past this, the list
// goes to the pool so that no I/O thread spends long on one request.
constexpr std::size_t kActiveRunsAnsweredAtOnce = 64;

}  // namespace

Response HttpApi::list_runs(const Call& call) const {
  const HistoryQuery query = history_query(call.url);
  std::vector<Run> active = runs_.active(query.agent_id);
  const auto page = history_.get(query, [&] { return runs_.history(query); });
  leave_out_ended(active, *page);
  return make_response(*call.request, http::status::ok,
                       list_page_body(wire::runs_array(active, now_ms()), page));
}

// The list from memory alone: the history page cached and the active runs
// this host holds (not on a shared store, where other hosts' runs are read
// from the database; not when there are many of them).
std::optional<Response> HttpApi::list_runs_from_memory(const Call& call) const {
  const HistoryQuery query = history_query(call.url);
  auto active = runs_.active_from_memory(query.agent_id, kActiveRunsAnsweredAtOnce);
  if (!active) return std::nullopt;
  const auto page = history_.peek(query);  // after the active runs (see leave_out_ended)
  if (!page) return std::nullopt;
  leave_out_ended(*active, *page);
  return make_response(*call.request, http::status::ok,
                       list_page_body(wire::runs_array(*active, now_ms()), page));
}

Response HttpApi::get_run(const Call& call) const {
  const std::string& id = run_id(call.captures);
  const auto run = runs_.get(id);
  if (!run)
    throw from_run_error(RunError(RunError::Code::run_not_found, "no run has the id '" + id + "'"));
  return make_response(*call.request, http::status::ok, wire::run_body(*run, now_ms()));
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
  return make_response(*call.request, http::status::ok,
                       wire::logs_page(id, runs_.logs(id, after, limit)));
}

Response HttpApi::stop_run(const Call& call) const {
  const Run run = runs_.stop(run_id(call.captures));
  return make_response(*call.request, http::status::accepted, wire::run_body(run, now_ms()));
}

Response HttpApi::send_message(const Call& call) const {
  const std::string& id = run_id(call.captures);
  std::string text = wire::parse_message_body(call.request->body(), options_.max_message_bytes);
  const std::uint64_t seq = runs_.send_message(id, std::move(text));
  return make_response(*call.request, http::status::accepted,
                       boost::json::serialize(boost::json::object{{"seq", seq}}));
}

Response HttpApi::delete_run(const Call& call) const {
  runs_.remove(run_id(call.captures));
  Response response{http::status::no_content, call.request->version()};
  response.keep_alive(call.request->keep_alive());
  return response;
}

Response HttpApi::list_agents(const Call& call) const {
  return make_response(*call.request, http::status::ok, wire::agents_body(catalog_.agents()));
}

Response HttpApi::rescan_agents(const Call& call) const {
  return make_response(*call.request, http::status::ok, wire::agents_body(catalog_.rescan()));
}

Response HttpApi::health(const Call& call) const {
  return make_response(*call.request, http::status::ok,
                       wire::health_body(NIGHTSHIFT_VERSION, runs_.store_ok(), runs_.store_kind()));
}

Response HttpApi::list_hosts(const Call& call) const {
  return make_response(*call.request, http::status::ok, wire::hosts_body(runs_.hosts()));
}

Response HttpApi::metrics(const Call& call) const {
  return make_response(
      *call.request, http::status::ok,
      metrics_.render(runs_.stats()) + Metrics::render_automation(automation_.stats()),
      "text/plain; version=0.0.4; charset=utf-8");
}

Response HttpApi::panel_file(const Call& call) const {
  const auto asset = panel::find_asset(view(call.url.path()));
  if (!asset) {
    throw ApiError(http::status::not_found, "not_found",
                   "the panel has no file " + std::string(view(call.url.path())));
  }
  Response response = make_response(*call.request, http::status::ok, std::string(asset->content),
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

// ---- Automation -------------------------------------------------------------

Response HttpApi::rerun_run(const Call& call) const {
  const Run run = automation_.rerun(run_id(call.captures));
  Response response =
      make_response(*call.request, http::status::created, wire::run_body(run, now_ms()));
  response.set(http::field::location, "/background-agents/" + run.instance_id);
  return response;
}

Response HttpApi::list_schedules(const Call& call) const {
  return make_response(*call.request, http::status::ok,
                       wire::schedules_body(automation_.schedules().list()));
}

Response HttpApi::create_schedule(const Call& call) const {
  const Schedule schedule = automation_.schedules().create(
      wire::parse_schedule_body(call.request->body(), options_.max_task_bytes, true));
  Response response =
      make_response(*call.request, http::status::created, wire::schedule_body(schedule));
  response.set(http::field::location, "/schedules/" + schedule.id);
  return response;
}

Response HttpApi::get_schedule(const Call& call) const {
  const auto schedule = automation_.schedules().get(call.captures.at(0));
  if (!schedule) {
    throw ApiError(http::status::not_found, "schedule_not_found",
                   "no schedule has the id '" + call.captures.at(0) + "'");
  }
  return make_response(*call.request, http::status::ok, wire::schedule_body(*schedule));
}

Response HttpApi::update_schedule(const Call& call) const {
  if (!automation_.schedules().get(call.captures.at(0))) {
    throw ApiError(http::status::not_found, "schedule_not_found",
                   "no schedule has the id '" + call.captures.at(0) + "'");
  }
  const Schedule schedule = automation_.schedules().update(
      call.captures.at(0),
      wire::parse_schedule_body(call.request->body(), options_.max_task_bytes, false));
  return make_response(*call.request, http::status::ok, wire::schedule_body(schedule));
}

Response HttpApi::delete_schedule(const Call& call) const {
  automation_.schedules().remove(call.captures.at(0));
  Response response{http::status::no_content, call.request->version()};
  response.keep_alive(call.request->keep_alive());
  return response;
}

Response HttpApi::trigger_schedule(const Call& call) const {
  const Run run = automation_.schedules().trigger(call.captures.at(0));
  Response response =
      make_response(*call.request, http::status::created, wire::run_body(run, now_ms()));
  response.set(http::field::location, "/background-agents/" + run.instance_id);
  return response;
}

Response HttpApi::list_webhooks(const Call& call) const {
  return make_response(*call.request, http::status::ok,
                       wire::webhooks_body(automation_.webhooks().list()));
}

Response HttpApi::create_webhook(const Call& call) const {
  const Webhook webhook =
      automation_.webhooks().create(wire::parse_webhook_body(call.request->body()));
  Response response =
      make_response(*call.request, http::status::created, wire::webhook_body(webhook));
  response.set(http::field::location, "/webhooks/" + webhook.id);
  return response;
}

Response HttpApi::delete_webhook(const Call& call) const {
  automation_.webhooks().remove(call.captures.at(0));
  Response response{http::status::no_content, call.request->version()};
  response.keep_alive(call.request->keep_alive());
  return response;
}

Response HttpApi::list_deliveries(const Call& call) const {
  constexpr std::size_t kDeliveriesShown = 100;
  return make_response(*call.request, http::status::ok,
                       wire::deliveries_body(automation_.webhooks().deliveries(call.captures.at(0),
                                                                               kDeliveriesShown)));
}

}  // namespace nightshift::api
