#include "cli/mcp_server.hpp"

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <istream>
#include <list>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "cli/mcp_tools.hpp"

#ifndef NIGHTSHIFT_VERSION
#error "NIGHTSHIFT_VERSION must be defined by the build"
#endif

namespace nightshift::cli {
namespace json = boost::json;

namespace {

// JSON-RPC 2.0 error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;

// Protocol revisions whose messages this server's answers fit; a client
// asking for one of them gets it, any other gets kMcpProtocolVersion.
bool is_known_protocol_version(std::string_view version) {
  return version == kMcpProtocolVersion || version == "2025-03-26" || version == "2024-11-05";
}

class McpServer {
 public:
  McpServer(std::ostream& out, HostEndpoint endpoint) : out_(out), endpoint_(std::move(endpoint)) {}
  McpServer(const McpServer&) = delete;
  McpServer& operator=(const McpServer&) = delete;

  // Cuts waits short and answers every call still running.
  ~McpServer() {
    std::list<std::unique_ptr<ToolCall>> calls;
    {
      std::lock_guard lock(calls_mutex_);
      calls.swap(calls_);
    }
    for (auto& call : calls) call->thread.request_stop();
    calls.clear();  // joins
  }

  void handle_line(std::string_view line) {
    reap_finished_calls();
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    boost::system::error_code parse_error;
    json::value message = json::parse(line, parse_error);
    if (parse_error) {
      send_error(nullptr, kParseError, "Parse error: " + parse_error.message());
      return;
    }
    if (!message.is_object()) {
      send_error(nullptr, kInvalidRequest,
                 "Invalid Request: a message is one JSON object (batches are not supported)");
      return;
    }
    handle_message(message.as_object());
  }

 private:
  struct ToolCall {
    json::value id;
    bool cancelled = false;  // guarded by calls_mutex_: the client no longer wants the answer
    std::atomic<bool> done = false;
    std::jthread thread;  // last: joined before the members above go
  };

  void handle_message(const json::object& message) {
    const auto* method = message.if_contains("method");
    const auto* id = message.if_contains("id");
    if (id && !id->is_string() && !id->is_int64() && !id->is_uint64()) {
      send_error(nullptr, kInvalidRequest, "Invalid Request: id must be a string or an integer");
      return;
    }
    if (!method) {
      // A response to a request of ours; this server sends none, so it is
      // ignored (JSON-RPC forbids answering a response).
      if (message.contains("result") || message.contains("error")) return;
      send_error(id ? *id : json::value(nullptr), kInvalidRequest, "Invalid Request: no method");
      return;
    }
    if (!method->is_string()) {
      send_error(id ? *id : json::value(nullptr), kInvalidRequest,
                 "Invalid Request: method must be a string");
      return;
    }
    if (const auto* version = message.if_contains("jsonrpc"); !version || *version != "2.0") {
      send_error(id ? *id : json::value(nullptr), kInvalidRequest,
                 "Invalid Request: jsonrpc must be \"2.0\"");
      return;
    }
    const json::value* params = message.if_contains("params");
    if (!id) {
      handle_notification(method->as_string(), params);
    } else {
      handle_request(*id, method->as_string(), params);
    }
  }

  void handle_notification(std::string_view method, const json::value* params) {
    if (method == "notifications/cancelled" && params && params->is_object()) {
      if (const auto* request_id = params->as_object().if_contains("requestId")) {
        cancel(*request_id);
      }
    }
    // notifications/initialized and anything else: nothing to do, no answer.
  }

  void handle_request(const json::value& id, std::string_view method, const json::value* params) {
    if (params && !params->is_object()) {
      send_error(id, kInvalidParams, "Invalid params: params must be an object");
      return;
    }
    static const json::object no_params;
    const json::object& args = params ? params->as_object() : no_params;
    if (method == "initialize") {
      send_result(id, initialize_result(args));
    } else if (method == "ping") {
      send_result(id, json::object{});
    } else if (method == "tools/list") {
      send_result(id, json::object{{"tools", mcp_tool_definitions()}});
    } else if (method == "tools/call") {
      start_tool_call(id, args);
    } else {
      send_error(id, kMethodNotFound, "Method not found: " + std::string(method));
    }
  }

  static json::object initialize_result(const json::object& params) {
    std::string version = kMcpProtocolVersion;
    if (const auto* asked = params.if_contains("protocolVersion");
        asked && asked->is_string() && is_known_protocol_version(asked->as_string())) {
      version = asked->as_string();
    }
    return {{"protocolVersion", version},
            {"capabilities", {{"tools", json::object{}}}},
            {"serverInfo",
             {{"name", "nightshift"}, {"title", "Nightshift"}, {"version", NIGHTSHIFT_VERSION}}},
            {"instructions",
             "Nightshift runs agents in the background. list_agents shows what can run; "
             "start_run starts a run and answers at once with its instanceId; wait_run, "
             "get_run and get_logs follow it; stop_run stops it; send_message steers an agent "
             "that accepts messages."}};
  }

  void start_tool_call(const json::value& id, const json::object& params) {
    const auto* name = params.if_contains("name");
    if (!name || !name->is_string()) {
      send_error(id, kInvalidParams, "Invalid params: tools/call needs the tool's name");
      return;
    }
    const auto* arguments = params.if_contains("arguments");
    if (arguments && !arguments->is_object() && !arguments->is_null()) {
      send_error(id, kInvalidParams, "Invalid params: arguments must be an object");
      return;
    }
    auto call = std::make_unique<ToolCall>();
    call->id = id;
    ToolCall* raw = call.get();
    std::string tool_name(name->as_string());
    json::object tool_arguments =
        arguments && arguments->is_object() ? arguments->as_object() : json::object();
    std::lock_guard lock(calls_mutex_);
    raw->thread = std::jthread([this, raw, tool_name = std::move(tool_name),
                                tool_arguments = std::move(tool_arguments)](std::stop_token stop) {
      const ToolResult result = call_mcp_tool(endpoint_, tool_name, tool_arguments, stop);
      finish(*raw, result);
    });
    calls_.push_back(std::move(call));
  }

  // [tool-call thread] Answers the call unless the client cancelled it.
  void finish(ToolCall& call, const ToolResult& result) {
    bool cancelled = false;
    {
      std::lock_guard lock(calls_mutex_);
      cancelled = call.cancelled;
    }
    if (!cancelled) {
      json::object answer{{"content", {{{"type", "text"}, {"text", result.text}}}},
                          {"isError", result.is_error}};
      send_result(call.id, std::move(answer));
    }
    call.done = true;
  }

  void cancel(const json::value& request_id) {
    std::lock_guard lock(calls_mutex_);
    for (auto& call : calls_) {
      if (call->id == request_id && !call->done) {
        call->cancelled = true;
        call->thread.request_stop();
      }
    }
  }

  // Joins the threads of answered calls, so they do not pile up.
  void reap_finished_calls() {
    std::list<std::unique_ptr<ToolCall>> finished;
    {
      std::lock_guard lock(calls_mutex_);
      for (auto it = calls_.begin(); it != calls_.end();) {
        if ((*it)->done) {
          finished.push_back(std::move(*it));
          it = calls_.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Joined here, outside the lock: a finishing thread may still be taking it.
  }

  void send_result(const json::value& id, json::value result) {
    send(json::object{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
  }

  void send_error(const json::value& id, int code, const std::string& message) {
    send(json::object{
        {"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
  }

  // [any thread] One message, one line.
  void send(const json::object& message) {
    const std::string line = json::serialize(message);
    std::lock_guard lock(out_mutex_);
    out_ << line << '\n' << std::flush;
  }

  std::ostream& out_;
  std::mutex out_mutex_;  // one message at a time on out_
  const HostEndpoint endpoint_;
  std::mutex calls_mutex_;                      // guards calls_ and each call's `cancelled`
  std::list<std::unique_ptr<ToolCall>> calls_;  // calls not yet reaped
};

}  // namespace

int serve_mcp(std::istream& in, std::ostream& out, const HostEndpoint& endpoint) {
  McpServer server(out, endpoint);
  for (std::string line; std::getline(in, line);) server.handle_line(line);
  return 0;
}

}  // namespace nightshift::cli
