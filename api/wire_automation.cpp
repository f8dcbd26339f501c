#include "api/wire_automation.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/api_error.hpp"
#include "api/wire.hpp"
#include "catalog/json_numbers.hpp"

namespace nightshift::api::wire {

namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

json::object parse_object(std::string_view body, const char* example) {
  if (body.empty()) {
    throw invalid_request(std::string("the body is empty; send a JSON object such as ") + example);
  }
  boost::system::error_code error;
  json::value parsed = json::parse(body, error);
  if (error) throw invalid_request("the body is not valid JSON: " + error.message());
  if (!parsed.is_object()) throw invalid_request("the body must be a JSON object");
  if (auto why = find_inexact_number(body)) {
    throw ApiError(http::status::bad_request, "invalid_params", *why);
  }
  return std::move(parsed.get_object());
}

std::string string_field(const json::value& value, const char* name) {
  if (!value.is_string()) throw invalid_request(std::string(name) + " must be a string");
  return std::string(value.get_string());
}

}  // namespace

json::object schedule(const Schedule& s) {
  return json::object{{"id", s.id},
                      {"agentId", s.agent_id},
                      {"task", optional_string(s.task)},
                      {"params", s.params},
                      {"cron", s.cron},
                      {"timezone", s.timezone},
                      {"enabled", s.enabled},
                      {"overlap", to_string(s.overlap)},
                      {"createdAt", format_rfc3339(s.created_at)},
                      {"nextRunAt", optional_time(s.next_run_at)},
                      {"lastRunId", optional_string(s.last_run_id)}};
}

json::object webhook(const Webhook& w) {
  json::array events;
  for (const std::string& event : w.events) events.emplace_back(event);
  return json::object{{"id", w.id},
                      {"url", w.url},
                      {"events", std::move(events)},
                      {"agentId", optional_string(w.agent_id)},
                      {"createdAt", format_rfc3339(w.created_at)}};
}

json::object delivery(const Delivery& d) {
  return json::object{
      {"id", d.id},
      {"event", d.event},
      {"instanceId", d.instance_id},
      {"attempts", d.attempts},
      {"status", to_string(d.status)},
      {"lastStatusCode", d.last_status_code ? json::value(*d.last_status_code) : json::value()},
      {"lastError", optional_string(d.last_error)},
      {"createdAt", format_rfc3339(d.created_at)},
      {"deliveredAt", optional_time(d.delivered_at)}};
}

std::string schedule_body(const Schedule& s) {
  return json::serialize(schedule(s));
}

std::string schedules_body(const std::vector<Schedule>& schedules) {
  json::array list;
  list.reserve(schedules.size());
  for (const Schedule& s : schedules) list.emplace_back(schedule(s));
  return json::serialize(json::object{{"schedules", std::move(list)}});
}

std::string webhook_body(const Webhook& w) {
  return json::serialize(webhook(w));
}

std::string webhooks_body(const std::vector<Webhook>& webhooks) {
  json::array list;
  list.reserve(webhooks.size());
  for (const Webhook& w : webhooks) list.emplace_back(webhook(w));
  return json::serialize(json::object{{"webhooks", std::move(list)}});
}

std::string deliveries_body(const std::vector<Delivery>& deliveries) {
  json::array list;
  list.reserve(deliveries.size());
  for (const Delivery& d : deliveries) list.emplace_back(delivery(d));
  return json::serialize(json::object{{"deliveries", std::move(list)}});
}

std::string schedule_event_body(const ScheduleEvent& event) {
  std::string body = ",\"event\":";
  body += json::serialize(json::string(to_string(event.kind)));
  body += ",\"schedule\":";
  body += json::serialize(schedule(event.schedule));
  body += '}';
  return body;
}

ScheduleInput parse_schedule_body(std::string_view body, std::size_t max_task_bytes, bool create) {
  json::object object =
      parse_object(body, "{\"agentId\": \"installed:echo\", \"cron\": \"0 3 * * *\"}");
  ScheduleInput input;
  for (auto& [key, value] : object) {
    if (key == "agentId") {
      if (!create) throw invalid_request("agentId cannot be changed; create a new schedule");
      input.agent_id = string_field(value, "agentId");
      if (!is_agent_id(*input.agent_id)) {
        throw invalid_request("agentId '" + *input.agent_id +
                              "' is not of the form <source>:<name>, e.g. installed:echo");
      }
    } else if (key == "cron") {
      input.cron = string_field(value, "cron");
    } else if (key == "timezone") {
      input.timezone = string_field(value, "timezone");
    } else if (key == "enabled") {
      if (!value.is_bool()) throw invalid_request("enabled must be true or false");
      input.enabled = value.get_bool();
    } else if (key == "overlap") {
      const std::string overlap = string_field(value, "overlap");
      input.overlap = parse_overlap(overlap);
      if (!input.overlap) {
        throw invalid_request("overlap must be \"skip\" or \"queue\", got '" + overlap + "'");
      }
    } else if (key == "task") {
      if (value.is_null()) {
        input.task = std::optional<std::string>();
      } else {
        std::string task = string_field(value, "task");
        if (task.size() > max_task_bytes) {
          throw invalid_request("task is " + std::to_string(task.size()) + " bytes; the limit is " +
                                std::to_string(max_task_bytes));
        }
        input.task = std::optional<std::string>(std::move(task));
      }
    } else if (key == "params") {
      if (value.is_null()) {
        input.params = json::object{};
      } else if (!value.is_object()) {
        throw invalid_request("params must be a JSON object");
      } else {
        input.params = std::move(value.get_object());
      }
    } else if (!create) {
      throw invalid_request("'" + std::string(key) +
                            "' cannot be changed; a PATCH may set enabled, cron, timezone, task, "
                            "params and overlap");
    }
  }
  if (create && !input.agent_id) throw invalid_request("agentId is required");
  if (create && !input.cron) throw invalid_request("cron is required, e.g. \"0 3 * * *\"");
  return input;
}

WebhookInput parse_webhook_body(std::string_view body) {
  json::object object =
      parse_object(body, "{\"url\": \"https://example.com/hook\", \"events\": [\"run.finished\"]}");
  WebhookInput input;
  const json::value* url = object.if_contains("url");
  if (url == nullptr || url->is_null()) throw invalid_request("url is required");
  input.url = string_field(*url, "url");
  if (const json::value* events = object.if_contains("events"); events && !events->is_null()) {
    if (!events->is_array()) {
      throw invalid_request("events must be an array, e.g. [\"run.finished\", \"run.failed\"]");
    }
    input.events.clear();
    for (const json::value& event : events->get_array()) {
      input.events.push_back(string_field(event, "each event"));
    }
  }
  if (const json::value* agent = object.if_contains("agentId"); agent && !agent->is_null()) {
    input.agent_id = string_field(*agent, "agentId");
    if (!is_agent_id(*input.agent_id)) {
      throw invalid_request("agentId '" + *input.agent_id +
                            "' is not of the form <source>:<name>, e.g. installed:echo");
    }
  }
  if (const json::value* secret = object.if_contains("secret"); secret && !secret->is_null()) {
    input.secret = string_field(*secret, "secret");
  }
  return input;
}

}  // namespace nightshift::api::wire
