// The host's API as the commands use it: JSON in, JSON out, and every API
// error turned into a CliError with its exit code and the host's message.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cli/http_connection.hpp"

namespace nightshift::cli {

// The query of GET /background-agents.
struct RunQuery {
  bool include_history = false;
  std::optional<std::string> status;    // a terminal status (history only)
  std::optional<std::string> agent_id;  // narrows both lists
  unsigned page_size = 500;             // history runs per request (1..500)
};

// Both lists, with every history page fetched (nextCursor followed).
struct RunLists {
  boost::json::array active;
  boost::json::array history;
};

class ApiClient {
 public:
  explicit ApiClient(HostEndpoint endpoint);

  // The catalog; with `rescan`, after the host looked for agents again.
  boost::json::array agents(bool rescan = false);
  RunLists runs(const RunQuery& query);
  boost::json::object run(std::string_view instance_id);
  // One page of a run's log after `after`.
  boost::json::object logs_page(std::string_view instance_id, std::uint64_t after);
  boost::json::object start(const boost::json::object& body);
  boost::json::object stop(std::string_view instance_id);
  // A message to an active run whose agent accepts them; {"seq": n}.
  boost::json::object send_message(std::string_view instance_id, std::string_view text);
  void remove(std::string_view instance_id);
  // Any other endpoint (re-runs, schedules, webhooks): the answer's JSON
  // (null for 204), API errors thrown as for the calls above.
  boost::json::value request(boost::beast::http::verb method, std::string_view target,
                             std::string_view body = {});

  const HostEndpoint& endpoint() const { return connection_.endpoint(); }
  HttpConnection& connection() { return connection_; }

 private:
  boost::json::value call(boost::beast::http::verb method, std::string_view target,
                          std::string_view body = {});

  HttpConnection connection_;
};

// Accessors that treat a missing or null member as empty.
std::string string_member(const boost::json::object& object, std::string_view key);
std::int64_t int_member(const boost::json::object& object, std::string_view key);
bool is_terminal_status(std::string_view status);

}  // namespace nightshift::cli
