// The automation limits of agents.md ("Limits"): `retries`,
// `retryBackoffSeconds` and `maxConcurrent`, read from a manifest's or a
// remix's `limits` object and merged along a remix chain like the others.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace nightshift {

struct AutomationLimits {
  std::optional<std::uint32_t> retries;         // failed runs are retried up to N more times
  std::optional<double> retry_backoff_seconds;  // first wait before a retry (default 10)
  std::optional<std::uint32_t> max_concurrent;  // runs of this agent at once
};

// Upper bounds: beyond them a value is a typo, not a wish.
inline constexpr std::uint32_t kMaxRetries = 100;
inline constexpr double kMaxRetryBackoffSeconds = 7.0 * 24 * 60 * 60;  // a week
inline constexpr std::uint32_t kMaxMaxConcurrent = 100000;
inline constexpr double kDefaultRetryBackoffSeconds = 10;

// Reads the three keys of `limits` (others are left to their readers).
// Throws std::runtime_error naming the key, the rule and `where` (e.g.
// "agent.json" or "the front matter").
AutomationLimits read_automation_limits(const boost::json::object& limits,
                                        const std::string& where);

// `over` set values win over `into`'s.
void merge_automation_limits(AutomationLimits& into, const AutomationLimits& over);

}  // namespace nightshift
