#include "model/automation.hpp"

namespace nightshift {

std::string_view to_string(Overlap overlap) {
  return overlap == Overlap::skip ? "skip" : "queue";
}

std::optional<Overlap> parse_overlap(std::string_view text) {
  if (text == "skip") return Overlap::skip;
  if (text == "queue") return Overlap::queue;
  return std::nullopt;
}

bool is_webhook_event(std::string_view name) {
  return name == kRunStartedEvent || name == kRunFinishedEvent || name == kRunFailedEvent;
}

std::string_view to_string(DeliveryStatus status) {
  switch (status) {
    case DeliveryStatus::pending:
      return "pending";
    case DeliveryStatus::delivered:
      return "delivered";
    case DeliveryStatus::failed:
      return "failed";
  }
  return "pending";
}

std::optional<DeliveryStatus> parse_delivery_status(std::string_view text) {
  if (text == "pending") return DeliveryStatus::pending;
  if (text == "delivered") return DeliveryStatus::delivered;
  if (text == "failed") return DeliveryStatus::failed;
  return std::nullopt;
}

}  // namespace nightshift
