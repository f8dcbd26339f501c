// An agent's `limits` (agents.md, "Limits"): from its manifest, merged over
// by each remix of a chain, then lowered by a start request.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "catalog/automation_limits.hpp"

namespace nightshift {

struct AgentLimits {
  std::optional<double> timeout_seconds;     // fail the run after this long
  std::optional<std::uint64_t> memory_mib;   // address space of the agent process
  std::optional<std::uint64_t> cpu_seconds;  // CPU time of the agent process
  std::optional<bool> sandbox;               // true: read-only file system but the workspace
  std::optional<bool> network;               // false: loopback only
  AutomationLimits automation;               // retries, retryBackoffSeconds, maxConcurrent
};

// Reads a `limits` object. `where` names it in errors ("agent.json", "the
// start request", ...). Unknown keys are left for other readers (retries,
// maxConcurrent, maxTokens); a known key of the wrong type or out of range
// throws std::invalid_argument saying which and why.
AgentLimits parse_limits(const boost::json::object& limits, const std::string& where);

// `over`'s values where it sets them, else `base`'s.
AgentLimits merge_limits(const AgentLimits& base, const AgentLimits& over);

// A start request's limits over the agent's: each may only lower (a number
// at most the agent's, `sandbox` only turned on, `network` only turned off).
// Throws std::invalid_argument naming the limit that would be raised.
AgentLimits lower_limits(const AgentLimits& agent, const AgentLimits& request);

}  // namespace nightshift
