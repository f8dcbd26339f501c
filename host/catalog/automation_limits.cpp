#include "catalog/automation_limits.hpp"

#include <cmath>
#include <stdexcept>

namespace nightshift {

namespace {

std::optional<double> number_field(const boost::json::object& limits, const char* key) {
  const boost::json::value* value = limits.if_contains(key);
  if (value == nullptr || value->is_null()) return std::nullopt;
  if (!value->is_number()) return std::nan("");
  return value->to_number<double>();
}

std::optional<std::uint32_t> whole_number(const boost::json::object& limits, const char* key,
                                          std::uint32_t min, std::uint32_t max,
                                          const std::string& where) {
  const auto value = number_field(limits, key);
  if (!value) return std::nullopt;
  if (!(*value >= min && *value <= max) || std::floor(*value) != *value) {
    throw std::invalid_argument(where + ": 'limits." + key + "' must be a whole number from " +
                                std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<std::uint32_t>(*value);
}

}  // namespace

AutomationLimits read_automation_limits(const boost::json::object& limits,
                                        const std::string& where) {
  AutomationLimits out;
  out.retries = whole_number(limits, "retries", 0, kMaxRetries, where);
  out.max_concurrent = whole_number(limits, "maxConcurrent", 1, kMaxMaxConcurrent, where);
  if (const auto backoff = number_field(limits, "retryBackoffSeconds")) {
    if (!(*backoff >= 0 && *backoff <= kMaxRetryBackoffSeconds)) {
      throw std::invalid_argument(where +
                                  ": 'limits.retryBackoffSeconds' must be a number of seconds from "
                                  "0 to 604800 (a week)");
    }
    out.retry_backoff_seconds = *backoff;
  }
  return out;
}

void merge_automation_limits(AutomationLimits& into, const AutomationLimits& over) {
  if (over.retries) into.retries = over.retries;
  if (over.retry_backoff_seconds) into.retry_backoff_seconds = over.retry_backoff_seconds;
  if (over.max_concurrent) into.max_concurrent = over.max_concurrent;
}

}  // namespace nightshift
