// Every JSON shape of api.md in one place: the Run, LogEntry and Agent
// objects, the HTTP bodies (error, list page, logs page, agents, health), the
// WebSocket server messages, and the parsing of what clients send (the start
// body and the WebSocket client messages). The rest of the API layer builds
// and reads JSON only through here; host/ knows nothing of the wire format.
//
// WebSocket server messages are split in two so that one serialized event can
// be shared by every connection: a per-connection prefix that carries the
// type and the connection's seq, `{"type":"run","seq":12`, and a body that
// carries the rest, starting with ',' (or just '}' when there is no more),
// e.g. `,"event":"started","run":{...}}`. Prefix then body is the message.
//
// Thread safety: every function is [thread-safe] (pure, no shared state).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "model/host_record.hpp"
#include "model/run.hpp"
#include "runs/run_manager.hpp"

namespace nightshift::api {
class ApiError;
}

namespace nightshift::api::wire {

// ---- Pieces every wire file builds with --------------------------------------

// null, or the time as RFC 3339 UTC with milliseconds.
boost::json::value optional_time(const std::optional<Timestamp>& time);
// null, or the text as a JSON string.
boost::json::value optional_string(const std::optional<std::string>& text);
boost::json::value optional_string(const OptionalText& text);
// 400 invalid_request with `message`, for a body that cannot be used.
ApiError invalid_request(const std::string& message);

// ---- Objects ---------------------------------------------------------------

// The Run object. `now` fixes durationMs for a run that is still active.
boost::json::object run(const Run& run, Timestamp now);
boost::json::object log_entry(const LogEntry& entry);
boost::json::object agent(const AgentInfo& agent);

// ---- HTTP bodies (serialized) ----------------------------------------------

// {"error": {"code": ..., "message": ...}}
std::string error_body(std::string_view code, std::string_view message);
std::string run_body(const Run& run, Timestamp now);
// A JSON array of Run objects, as the list page and the snapshot hold them.
std::string runs_array(const std::vector<Run>& runs, Timestamp now);
// GET /background-agents: {"active": [...], "history": [...], "nextCursor": ...}
// from arrays serialized by runs_array, as the text before and after the
// history array, so that a cached history array is sent between them
// without being copied.
struct ListPageFrame {
  std::string before;  // {"active":[...],"history":
  std::string after;   // ,"nextCursor":...}
};
ListPageFrame list_page_frame(std::string_view active_array,
                              const std::optional<std::string>& next_cursor);
// GET /background-agents/{id}/logs
std::string logs_page(std::string_view instance_id, const LogPage& page);
// GET /agents and POST /agents/rescan: {"agents": [...]}
std::string agents_body(const std::vector<AgentInfo>& agents);
// GET /healthz
std::string health_body(std::string_view version, bool store_ok, std::string_view store = "sqlite");

// GET /hosts
std::string hosts_body(const std::vector<HostRecord>& hosts);

// The text of a POST /background-agents/{id}/messages body {"text": "..."}.
// Throws ApiError (400 invalid_request) when it is not such an object, or the
// text is empty or over `max_text_bytes`.
std::string parse_message_body(std::string_view body, std::size_t max_text_bytes);

// ---- WebSocket server messages ---------------------------------------------

// Appends `{"type":"<type>","seq":<seq>` to `out`: the part of a message
// each connection writes itself; a body below follows it. `type` is one of
// the message types of api.md (letters only, written as it is).
void append_message_prefix(std::string& out, std::string_view type, std::uint64_t seq);

// Type "snapshot", from arrays serialized by runs_array.
std::string snapshot_body(std::string_view active_array, std::string_view history_array);
// Type "run".
std::string run_event_body(const RunEvent& event, Timestamp now);
// Type "logs"; `entries` in seq order.
std::string logs_body(std::string_view instance_id, std::span<const LogEntry> entries);
// Type "error".
std::string error_message_body(std::string_view code, std::string_view message);
// Type "pong" (no members besides type and seq).
std::string_view empty_body();

// ---- What clients send -----------------------------------------------------

// True for `<source>:<name>` with a known source and a name matching
// [a-z0-9][a-z0-9._-]{0,63}.
bool is_agent_id(std::string_view text);

// The body of POST /background-agents/start. Throws ApiError (400
// invalid_request) saying what is wrong: not JSON, not an object, agentId
// missing or malformed, task not a string or over `max_task_bytes`, params
// not an object.
StartRequest parse_start_body(std::string_view body, std::size_t max_task_bytes);

// The WebSocket client messages of api.md.
struct PingMessage {};
struct SubscribeMessage {
  std::string instance_id;  // as sent: not checked to be a UUID
  std::uint64_t after = 0;
};
struct UnsubscribeMessage {
  std::string instance_id;
};
// A message the server answers with a `bad_message` error; `reason` is its
// message.
struct BadMessage {
  std::string reason;
};
using ClientMessage = std::variant<PingMessage, SubscribeMessage, UnsubscribeMessage, BadMessage>;

// Parses one text frame's content.
ClientMessage parse_client_message(std::string_view text);

}  // namespace nightshift::api::wire
