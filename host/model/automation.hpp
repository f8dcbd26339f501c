// The records of automation (api.md v1.1): schedules, webhooks, webhook
// deliveries, and retries waiting for their time. Plain values, like run.hpp.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/run.hpp"

namespace nightshift {

// What a schedule does when its time comes while its previous run is active.
enum class Overlap { skip, queue };
std::string_view to_string(Overlap overlap);
std::optional<Overlap> parse_overlap(std::string_view text);

struct Schedule {
  std::string id;
  std::string agent_id;
  std::optional<std::string> task;
  boost::json::object params;  // the start request's params (merged at each start)
  std::string cron;            // five fields, or @hourly/@daily/@weekly/@monthly
  std::string timezone = "UTC";
  bool enabled = true;
  Overlap overlap = Overlap::skip;
  Timestamp created_at{};
  std::optional<Timestamp> next_run_at;  // none while disabled (or when no time matches)
  std::optional<std::string> last_run_id;
  // A time claimed and its run not recorded yet: the id that run gets and
  // the host that claimed it. The claim names the run before it starts, so
  // that a host back from a crash in between starts that run (once) instead
  // of losing the time. Kept by the store only; never on the wire.
  std::optional<std::string> firing_run_id;
  std::optional<std::string> firing_host;
};

// The events a webhook may subscribe to.
inline constexpr std::string_view kRunStartedEvent = "run.started";
inline constexpr std::string_view kRunFinishedEvent = "run.finished";
inline constexpr std::string_view kRunFailedEvent = "run.failed";
bool is_webhook_event(std::string_view name);

struct Webhook {
  std::string id;
  std::string url;
  std::vector<std::string> events;
  std::optional<std::string> agent_id;  // none: every agent
  std::optional<std::string> secret;    // stored, never shown
  Timestamp created_at{};
};

enum class DeliveryStatus { pending, delivered, failed };
std::string_view to_string(DeliveryStatus status);
std::optional<DeliveryStatus> parse_delivery_status(std::string_view text);

struct Delivery {
  std::string id;
  std::string webhook_id;
  std::string event;
  std::string instance_id;
  std::string body;  // the exact bytes POSTed, made when the event happened
  std::uint32_t attempts = 0;
  DeliveryStatus status = DeliveryStatus::pending;
  std::optional<int> last_status_code;
  std::optional<std::string> last_error;
  Timestamp created_at{};
  std::optional<Timestamp> delivered_at;
  std::optional<Timestamp> next_attempt_at;  // while pending
};

// A retry of a failed run, waiting for its time. Holds what it will start,
// so it does not depend on the failed run's record still being there.
struct PendingRetry {
  std::string failed_run_id;
  Timestamp due_at{};
  std::uint32_t attempt = 2;  // the retry's own attempt number
  std::string agent_id;
  std::optional<std::string> task;
  boost::json::object params;
  // The id its run gets, chosen when a store shared by several hosts has it
  // taken (kept by a host that takes it over): a run under that id is
  // recorded once, whichever hosts start it. Unset: a new id.
  std::optional<std::string> run_id;
};

}  // namespace nightshift
