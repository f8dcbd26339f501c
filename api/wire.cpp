#include "api/wire.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <charconv>

#include "api/api_error.hpp"
#include "catalog/json_numbers.hpp"
#include "model/utf8.hpp"

namespace nightshift::api::wire {

namespace json = boost::json;
namespace http = boost::beast::http;

json::value optional_time(const std::optional<Timestamp>& time) {
  if (!time) return nullptr;
  return json::string(format_rfc3339(*time));
}

json::value optional_string(const OptionalText& text) {
  if (!text) return nullptr;
  return json::string(*text);
}

json::value optional_string(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  return json::string(*text);
}

ApiError invalid_request(const std::string& message) {
  return ApiError(http::status::bad_request, "invalid_request", message);
}

namespace {

std::string json_quoted(std::string_view text) {
  return json::serialize(json::string(text));
}

bool is_agent_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

}  // namespace

json::object run(const Run& run, Timestamp now) {
  json::object o;
  o.reserve(26);
  o["instanceId"] = run.instance_id;
  o["threadId"] = run.thread_id;
  o["agentId"] = run.agent_id;
  o["agentName"] = run.agent_name;
  o["agentSource"] = to_string(run.agent_source);
  o["task"] = optional_string(run.task);
  o["params"] = run.params;
  o["status"] = to_string(run.status);
  o["createdAt"] = format_rfc3339(run.created_at);
  o["startedAt"] = optional_time(run.started_at);
  o["endedAt"] = optional_time(run.ended_at);
  o["durationMs"] = run.duration_ms(now);
  o["progress"] = run.progress ? json::value(*run.progress) : json::value(nullptr);
  o["error"] = optional_string(run.error);
  o["result"] = run.result;
  o["logCount"] = run.log_count;
  if (run.usage) {
    o["usage"] = json::object{{"promptTokens", run.usage->prompt_tokens},
                              {"completionTokens", run.usage->completion_tokens}};
  } else {
    o["usage"] = nullptr;
  }
  o["acceptsMessages"] = run.accepts_messages;
  o["isolation"] = to_string(run.isolation);
  o["host"] = optional_string(run.host);
  o["attempt"] = run.attempt;
  o["retryOf"] = optional_string(run.retry_of);
  o["rerunOf"] = optional_string(run.rerun_of);
  o["scheduleId"] = optional_string(run.schedule_id);
  return o;
}

json::object log_entry(const LogEntry& entry) {
  json::object o;
  o.reserve(5);
  o["seq"] = entry.seq;
  o["ts"] = format_rfc3339(entry.ts);
  o["level"] = to_string(entry.level);
  o["message"] = entry.message;
  o["source"] = to_string(entry.source);
  return o;
}

json::object agent(const AgentInfo& agent) {
  json::object o;
  o.reserve(11);
  o["id"] = agent.id;
  o["name"] = agent.name;
  o["source"] = to_string(agent.source);
  o["version"] = agent.version;
  o["description"] = agent.description;
  o["baseAgentId"] = optional_string(agent.base_agent_id);
  o["location"] = agent.location.string();
  o["available"] = agent.available;
  o["error"] = optional_string(agent.error);
  o["params"] = agent.params;
  o["isolation"] = to_string(agent.isolation);
  return o;
}

// A message may quote what the client sent (a path, an agent id, a query
// value), percent-decoded bytes included: cleaned, so the answer stays JSON.
std::string error_body(std::string_view code, std::string_view message) {
  return json::serialize(
      json::object{{"error", json::object{{"code", code}, {"message", to_valid_utf8(message)}}}});
}

std::string run_body(const Run& run_record, Timestamp now) {
  return json::serialize(run(run_record, now));
}

std::string runs_array(const std::vector<Run>& runs, Timestamp now) {
  json::array array;
  array.reserve(runs.size());
  for (const Run& each : runs) array.emplace_back(run(each, now));
  return json::serialize(array);
}

ListPageFrame list_page_frame(std::string_view active_array,
                              const std::optional<std::string>& next_cursor) {
  ListPageFrame frame;
  frame.before.reserve(active_array.size() + 24);
  frame.before += "{\"active\":";
  frame.before += active_array;
  frame.before += ",\"history\":";
  frame.after = ",\"nextCursor\":";
  frame.after += next_cursor ? json_quoted(*next_cursor) : "null";
  frame.after += '}';
  return frame;
}

std::string logs_page(std::string_view instance_id, const LogPage& page) {
  json::array entries;
  entries.reserve(page.entries.size());
  for (const LogEntry& entry : page.entries) entries.emplace_back(log_entry(entry));
  return json::serialize(json::object{{"instanceId", instance_id},
                                      {"entries", std::move(entries)},
                                      {"nextAfter", page.next_after},
                                      {"complete", page.complete}});
}

std::string agents_body(const std::vector<AgentInfo>& agents) {
  json::array list;
  list.reserve(agents.size());
  for (const AgentInfo& each : agents) list.emplace_back(agent(each));
  return json::serialize(json::object{{"agents", std::move(list)}});
}

std::string health_body(std::string_view version, bool store_ok, std::string_view store) {
  return json::serialize(json::object{
      {"status", "ok"}, {"version", version}, {"store", store}, {"storeOk", store_ok}});
}

std::string hosts_body(const std::vector<HostRecord>& hosts) {
  json::array list;
  list.reserve(hosts.size());
  for (const HostRecord& host : hosts) {
    list.emplace_back(json::object{{"name", host.name},
                                   {"startedAt", format_rfc3339(host.started_at)},
                                   {"lastSeenAt", format_rfc3339(host.last_seen_at)},
                                   {"alive", host.alive},
                                   {"activeRuns", host.active_runs},
                                   {"version", host.version}});
  }
  return json::serialize(json::object{{"hosts", std::move(list)}});
}

std::string parse_message_body(std::string_view body, std::size_t max_text_bytes) {
  if (body.empty()) throw invalid_request("the body is empty; send {\"text\": \"...\"}");
  boost::system::error_code error;
  const json::value parsed = json::parse(body, error);
  if (error) throw invalid_request("the body is not valid JSON: " + error.message());
  const json::object* object = parsed.if_object();
  if (object == nullptr) throw invalid_request("the body must be a JSON object");
  const json::value* text = object->if_contains("text");
  if (text == nullptr || !text->is_string()) {
    throw invalid_request("text is required and must be a string");
  }
  const json::string& value = text->get_string();
  if (value.empty()) throw invalid_request("text must not be empty");
  if (value.size() > max_text_bytes) {
    throw invalid_request("text is " + std::to_string(value.size()) + " bytes; the limit is " +
                          std::to_string(max_text_bytes));
  }
  return std::string(value);
}

void append_message_prefix(std::string& out, std::string_view type, std::uint64_t seq) {
  // Types are this file's own words (letters only): nothing to escape.
  out += "{\"type\":\"";
  out += type;
  out += "\",\"seq\":";
  char digits[24];
  const auto end = std::to_chars(std::begin(digits), std::end(digits), seq).ptr;
  out.append(digits, end);
}

std::string snapshot_body(std::string_view active_array, std::string_view history_array) {
  std::string body;
  body.reserve(active_array.size() + history_array.size() + 24);
  body += ",\"active\":";
  body += active_array;
  body += ",\"history\":";
  body += history_array;
  body += '}';
  return body;
}

std::string run_event_body(const RunEvent& event, Timestamp now) {
  std::string body = ",\"event\":";
  body += json_quoted(to_string(event.kind));
  body += ",\"run\":";
  body += json::serialize(run(event.run, now));
  body += '}';
  return body;
}

std::string logs_body(std::string_view instance_id, std::span<const LogEntry> entries) {
  json::array array;
  array.reserve(entries.size());
  for (const LogEntry& entry : entries) array.emplace_back(log_entry(entry));
  std::string body = ",\"instanceId\":";
  body += json_quoted(instance_id);
  body += ",\"entries\":";
  body += json::serialize(array);
  body += '}';
  return body;
}

std::string error_message_body(std::string_view code, std::string_view message) {
  std::string body = ",\"code\":";
  body += json_quoted(code);
  body += ",\"message\":";
  body += json_quoted(to_valid_utf8(message));
  body += '}';
  return body;
}

std::string_view empty_body() {
  return "}";
}

bool is_agent_id(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  return parse_agent_source(text.substr(0, colon)).has_value() &&
         is_agent_name(text.substr(colon + 1));
}

StartRequest parse_start_body(std::string_view body, std::size_t max_task_bytes) {
  if (body.empty()) {
    throw invalid_request(
        "the body is empty; send a JSON object such as {\"agentId\": \"installed:echo\"}");
  }
  boost::system::error_code error;
  json::value parsed = json::parse(body, error);
  if (error) throw invalid_request("the body is not valid JSON: " + error.message());
  if (!parsed.is_object()) throw invalid_request("the body must be a JSON object");
  // Boost.JSON reads an integer beyond 64 bits as a rounded double: refuse
  // it as written rather than store a value the client did not send.
  if (auto why = find_inexact_number(body)) {
    throw ApiError(http::status::bad_request, "invalid_params", *why);
  }
  json::object& object = parsed.get_object();

  StartRequest start;
  const json::value* agent_id = object.if_contains("agentId");
  if (agent_id == nullptr || agent_id->is_null()) throw invalid_request("agentId is required");
  if (!agent_id->is_string()) throw invalid_request("agentId must be a string");
  start.agent_id = std::string(agent_id->get_string());
  if (!is_agent_id(start.agent_id)) {
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
  if (json::value* params = object.if_contains("params"); params && !params->is_null()) {
    if (!params->is_object()) throw invalid_request("params must be a JSON object");
    start.params = std::move(params->get_object());
  }
  if (const json::value* limits = object.if_contains("limits"); limits && !limits->is_null()) {
    if (!limits->is_object()) throw invalid_request("limits must be a JSON object");
    // Retries and the per-agent cap are the agent's (or remix's) to set:
    // refused here rather than ignored.
    for (const char* key : {"retries", "retryBackoffSeconds", "maxConcurrent"}) {
      if (limits->get_object().contains(key)) {
        throw ApiError(http::status::bad_request, "invalid_params",
                       std::string("limits.") + key +
                           " is set by the agent's manifest or a remix's front matter, not by "
                           "one start request; make a remix that sets it");
      }
    }
    try {
      start.limits = parse_limits(limits->get_object(), "the start request");
    } catch (const std::invalid_argument& e) {
      throw ApiError(http::status::bad_request, "invalid_params", e.what());
    }
  }
  return start;
}

ClientMessage parse_client_message(std::string_view text) {
  boost::system::error_code error;
  const json::value message = json::parse(text, error);
  const json::object* object = error ? nullptr : message.if_object();
  const json::value* type = object ? object->if_contains("type") : nullptr;
  if (type == nullptr || !type->is_string()) {
    return BadMessage{"each message must be a JSON object with a string 'type'"};
  }
  const json::string& name = type->get_string();
  if (name == "ping") return PingMessage{};
  if (name == "subscribe" || name == "unsubscribe") {
    const json::value* id = object->if_contains("instanceId");
    if (id == nullptr || !id->is_string()) {
      return BadMessage{std::string(name) + " needs a string 'instanceId'"};
    }
    if (name == "unsubscribe") return UnsubscribeMessage{std::string(id->get_string())};
    SubscribeMessage subscribe{std::string(id->get_string()), 0};
    if (const json::value* after = object->if_contains("after")) {
      if (after->is_uint64()) {
        subscribe.after = after->get_uint64();
      } else if (after->is_int64() && after->get_int64() >= 0) {
        subscribe.after = static_cast<std::uint64_t>(after->get_int64());
      } else if (!after->is_null()) {
        return BadMessage{"'after' must be a non-negative integer (a log seq)"};
      }
    }
    return subscribe;
  }
  return BadMessage{"unknown message type '" + std::string(name) +
                    "'; expected subscribe, unsubscribe or ping"};
}

}  // namespace nightshift::api::wire
