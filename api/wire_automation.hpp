// The JSON shapes of automation (api.md v1.1): the Schedule, Webhook and
// Delivery objects, their list bodies, the `schedule` WebSocket message, and
// the parsing of the schedule and webhook bodies clients send. A companion
// of wire.hpp, in the same namespace and with the same rules.
//
// Thread safety: every function is [thread-safe] (pure, no shared state).
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "automation/scheduler.hpp"
#include "automation/webhooks.hpp"
#include "events/event_bus.hpp"
#include "model/automation.hpp"

namespace nightshift::api::wire {

boost::json::object schedule(const Schedule& schedule);
// Never holds the secret: only whether there is one is not said either.
boost::json::object webhook(const Webhook& webhook);
boost::json::object delivery(const Delivery& delivery);

std::string schedule_body(const Schedule& schedule);
std::string schedules_body(const std::vector<Schedule>& schedules);  // {"schedules": [...]}
std::string webhook_body(const Webhook& webhook);
std::string webhooks_body(const std::vector<Webhook>& webhooks);       // {"webhooks": [...]}
std::string deliveries_body(const std::vector<Delivery>& deliveries);  // {"deliveries": [...]}

// Type "schedule": `,"event":"created","schedule":{...}}`.
std::string schedule_event_body(const ScheduleEvent& event);

// POST /schedules (create: agentId and cron required) and PATCH
// /schedules/{id} (only enabled, cron, timezone, task, params, overlap).
// Throws ApiError (400 invalid_request) saying what is wrong.
ScheduleInput parse_schedule_body(std::string_view body, std::size_t max_task_bytes, bool create);

// POST /webhooks: url required; events (default ["run.finished"]), agentId,
// secret optional. Throws ApiError (400 invalid_request).
WebhookInput parse_webhook_body(std::string_view body);

}  // namespace nightshift::api::wire
