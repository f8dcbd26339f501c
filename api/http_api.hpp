// The endpoints of api.md as functions from a parsed HTTP request to a
// response: host check, authentication, routing, validation, and the mapping
// of engine errors to API errors. Knows nothing of sockets; the sessions in
// server.cpp feed it whole requests and send what it answers.
//
// Where each answer is made (the route table says it per route):
// - on the I/O thread that calls handle(), when it needs nothing slow
//   (refusals, health, metrics, the agent list, the panel's files);
// - on the worker pool, when it reads the store, loads plugins or touches the
//   disk (runs, logs, stop, delete, rescan), then posted to the session's
//   strand;
// - for a start, when the store has committed the new run: the run manager's
//   asynchronous start calls back on the store writer thread, which only
//   posts to the session's strand, where the response is built. No thread
//   waits for the commit, so one group commit carries many starts.
//
// Thread safety: handle() and may_upgrade() are [thread-safe]
// (the router is read-only once built; the engine's members are
// thread-safe). close() is called once, when the server stops.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/url_view.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/history_cache.hpp"
#include "api/metrics.hpp"
#include "api/pending_answers.hpp"
#include "api/response_body.hpp"
#include "api/router.hpp"
#include "api/server_options.hpp"
#include "automation/automation.hpp"
#include "catalog/catalog.hpp"
#include "runs/run_manager.hpp"

namespace nightshift::api {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<ResponseBody>;

inline constexpr const char* kWebSocketPath = "/background-agent-ws";

class HttpApi {
 public:
  // Sends a response on its session; called on the session's strand.
  using Send = std::function<void(Response)>;

  HttpApi(const ServerOptions& options, bool bound_to_loopback, RunManager& runs, Catalog& catalog,
          Automation& automation, HistoryCache& history, Metrics& metrics,
          boost::asio::thread_pool& pool);

  // Answers any request except a WebSocket upgrade that was let through, by
  // calling `send` exactly once, on `strand` (the caller's, which it runs
  // on): at once, or later from the pool or a commit. Failures become JSON
  // errors (500 internal_error, logged). Nothing is sent after close().
  void handle(std::shared_ptr<const Request> request, const boost::asio::any_io_executor& strand,
              Send send) const noexcept;

  // True for an upgrade request that may become a WebSocket: it is for the
  // WebSocket path and passes the host check and authentication. Any other
  // request goes to handle(), which refuses it as it should (401, 403, ...).
  bool may_upgrade(const Request& request) const noexcept;

  // Drops every answer still waiting for the pool or a commit; called when
  // the server stops, before its io_context goes.
  void close() noexcept;

  std::vector<RouteSpec> routes() const { return router_.routes(); }

  // A JSON error response as api.md shapes it.
  static Response error_response(unsigned http_version, bool keep_alive,
                                 boost::beast::http::status status, std::string_view code,
                                 std::string_view message);

 private:
  struct Call {
    std::shared_ptr<const Request> request;
    boost::urls::url_view url;  // views request->target()
    std::vector<std::string> captures;
  };
  using Respond = Response (HttpApi::*)(const Call&) const;

  enum class AnsweredOn { io_thread, pool, commit };
  // Answers a pooled route on the I/O thread when it can without waiting
  // (from memory: a cache hit), else nullopt and the pool answers.
  using TryRespond = std::optional<Response> (HttpApi::*)(const Call&) const;
  struct Handler {
    AnsweredOn answered_on = AnsweredOn::io_thread;
    Respond respond = nullptr;         // for io_thread and pool; a commit's answer is start_run's
    TryRespond try_at_once = nullptr;  // for pool only
  };

  // Host check, routing, authentication and the media type: the response
  // when the request stops there, else the call to answer. Throws ApiError.
  std::optional<Response> route(const std::shared_ptr<const Request>& request,
                                std::optional<Call>& call, const Handler*& handler) const;
  std::optional<Response> admit(const Request& request, boost::urls::url_view url,
                                Router<Handler>::Match& match) const;
  bool host_allowed(const Request& request) const;
  bool authorized(const Request& request, boost::urls::url_view url, Access access) const;

  // Calls `respond`, turning whatever it throws into the API's error
  // response.
  static Response guarded(const Request& request,
                          const std::function<Response()>& respond) noexcept;
  // The same for an answer that may not come (none: `respond` has no answer
  // yet, and threw nothing).
  static std::optional<Response> guarded_maybe(
      const Request& request, const std::function<std::optional<Response>()>& respond) noexcept;

  void answer_on_pool(Call call, Respond respond, const boost::asio::any_io_executor& strand,
                      Send send) const;
  void start_run(Call call, const boost::asio::any_io_executor& strand, Send send) const;

  Response list_runs(const Call& call) const;
  std::optional<Response> list_runs_from_memory(const Call& call) const;
  Response get_run(const Call& call) const;
  Response get_logs(const Call& call) const;
  Response stop_run(const Call& call) const;
  Response send_message(const Call& call) const;
  Response delete_run(const Call& call) const;
  Response list_agents(const Call& call) const;
  Response rescan_agents(const Call& call) const;
  Response health(const Call& call) const;
  Response list_hosts(const Call& call) const;
  Response metrics(const Call& call) const;
  Response panel_file(const Call& call) const;
  Response websocket_without_upgrade(const Call& call) const;
  // Automation (v1.1): re-runs, schedules, webhooks.
  Response rerun_run(const Call& call) const;
  Response list_schedules(const Call& call) const;
  Response create_schedule(const Call& call) const;
  Response get_schedule(const Call& call) const;
  Response update_schedule(const Call& call) const;
  Response delete_schedule(const Call& call) const;
  Response trigger_schedule(const Call& call) const;
  Response list_webhooks(const Call& call) const;
  Response create_webhook(const Call& call) const;
  Response delete_webhook(const Call& call) const;
  Response list_deliveries(const Call& call) const;

  const ServerOptions& options_;
  const bool bound_to_loopback_;
  RunManager& runs_;
  Catalog& catalog_;
  Automation& automation_;
  HistoryCache& history_;
  Metrics& metrics_;
  boost::asio::thread_pool& pool_;
  Router<Handler> router_;
  // Shared with the start callbacks the run manager holds, which may outlive
  // this object.
  std::shared_ptr<PendingAnswers<Response>> pending_ = std::make_shared<PendingAnswers<Response>>();
};

}  // namespace nightshift::api
