// The endpoints of api.md as plain functions from a parsed HTTP request to a
// response: host check, authentication, routing, validation, and the mapping
// of engine errors to API errors. Knows nothing of sockets; the sessions in
// server.cpp feed it whole requests.
//
// Thread safety: handle() and check_websocket_upgrade() are [thread-safe]
// (the router is read-only once built; the engine's members are thread-safe).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/url_view.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/history_cache.hpp"
#include "api/metrics.hpp"
#include "api/router.hpp"
#include "api/server_options.hpp"
#include "catalog/catalog.hpp"
#include "runs/run_manager.hpp"

namespace nightshift::api {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

inline constexpr const char* kWebSocketPath = "/background-agent-ws";

class HttpApi {
 public:
  HttpApi(const ServerOptions& options, bool bound_to_loopback, RunManager& runs, Catalog& catalog,
          HistoryCache& history, Metrics& metrics);

  // Answers any request except a WebSocket upgrade that was let through.
  // Never throws: failures become JSON errors (500 internal_error, logged).
  Response handle(const Request& request) const noexcept;

  // For an upgrade request to the WebSocket path: nullopt when it may
  // upgrade, else the response that refuses it (401, 403, 404, 405).
  std::optional<Response> check_websocket_upgrade(const Request& request) const noexcept;

  std::vector<RouteSpec> routes() const { return router_.routes(); }

  // A JSON error response as api.md shapes it.
  static Response error_response(unsigned http_version, bool keep_alive,
                                 boost::beast::http::status status, std::string_view code,
                                 std::string_view message);

 private:
  struct Call {
    const Request& request;
    boost::urls::url_view url;
    std::vector<std::string> captures;
  };
  using Handler = Response (HttpApi::*)(const Call&) const;

  // Host check, routing and authentication; a response when the request
  // stops there, else the route to call.
  std::optional<Response> admit(const Request& request, boost::urls::url_view url,
                                Router<Handler>::Match& match) const;
  Response dispatch(const Request& request) const;
  bool host_allowed(const Request& request) const;
  bool authorized(const Request& request, boost::urls::url_view url, Access access) const;

  Response list_runs(const Call& call) const;
  Response get_run(const Call& call) const;
  Response get_logs(const Call& call) const;
  Response start_run(const Call& call) const;
  Response stop_run(const Call& call) const;
  Response delete_run(const Call& call) const;
  Response list_agents(const Call& call) const;
  Response rescan_agents(const Call& call) const;
  Response health(const Call& call) const;
  Response metrics(const Call& call) const;
  Response panel_file(const Call& call) const;
  Response websocket_without_upgrade(const Call& call) const;

  const ServerOptions& options_;
  const bool bound_to_loopback_;
  RunManager& runs_;
  Catalog& catalog_;
  HistoryCache& history_;
  Metrics& metrics_;
  Router<Handler> router_;
};

}  // namespace nightshift::api
