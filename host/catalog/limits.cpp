#include "catalog/limits.hpp"

#include <cmath>
#include <stdexcept>

namespace nightshift {

namespace json = boost::json;

namespace {

constexpr double kYearSeconds = 365.0 * 24 * 60 * 60;
// A terabyte of address space and a year of CPU: beyond them a limit means
// none, and the kernel's values stay far from overflow.
constexpr double kMostMib = 1024.0 * 1024.0;

// `unit` (" of seconds") and `most_in_words` (" (a year)") make the message
// say what the number counts.
std::optional<double> number(const json::object& limits, const char* key, double most, bool whole,
                             const std::string& where, const char* unit = "",
                             const char* most_in_words = "") {
  const json::value* v = limits.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  const double x = v->is_number() ? v->to_number<double>() : NAN;
  if (!v->is_number() || !(x > 0) || !(x <= most) || (whole && std::trunc(x) != x)) {
    throw std::invalid_argument(
        where + ": 'limits." + key + "' must be " + (whole ? "a whole number" : "a number") + unit +
        " above 0 and at most " + std::to_string(static_cast<std::uint64_t>(most)) + most_in_words);
  }
  return x;
}

std::optional<bool> flag(const json::object& limits, const char* key, const std::string& where) {
  const json::value* v = limits.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_bool()) {
    throw std::invalid_argument(where + ": 'limits." + key + "' must be true or false");
  }
  return v->get_bool();
}

template <class T>
void lower(std::optional<T>& out, const std::optional<T>& agent, const std::optional<T>& request,
           const char* key) {
  if (!request) return;
  if (agent && *request > *agent) {
    throw std::invalid_argument("limits." + std::string(key) +
                                " may only lower the agent's limit, which is " +
                                std::to_string(*agent));
  }
  out = request;
}

}  // namespace

AgentLimits parse_limits(const json::object& limits, const std::string& where) {
  AgentLimits out;
  out.timeout_seconds =
      number(limits, "timeoutSeconds", kYearSeconds, false, where, " of seconds", " (a year)");
  if (auto mib = number(limits, "memoryMiB", kMostMib, true, where, " of MiB")) {
    out.memory_mib = static_cast<std::uint64_t>(*mib);
  }
  if (auto cpu =
          number(limits, "cpuSeconds", kYearSeconds, true, where, " of seconds", " (a year)")) {
    out.cpu_seconds = static_cast<std::uint64_t>(*cpu);
  }
  out.sandbox = flag(limits, "sandbox", where);
  out.network = flag(limits, "network", where);
  out.automation = read_automation_limits(limits, where);
  return out;
}

AgentLimits merge_limits(const AgentLimits& base, const AgentLimits& over) {
  AgentLimits out = base;
  if (over.timeout_seconds) out.timeout_seconds = over.timeout_seconds;
  if (over.memory_mib) out.memory_mib = over.memory_mib;
  if (over.cpu_seconds) out.cpu_seconds = over.cpu_seconds;
  if (over.sandbox) out.sandbox = over.sandbox;
  if (over.network) out.network = over.network;
  merge_automation_limits(out.automation, over.automation);
  return out;
}

AgentLimits lower_limits(const AgentLimits& agent, const AgentLimits& request) {
  AgentLimits out = agent;
  lower(out.timeout_seconds, agent.timeout_seconds, request.timeout_seconds, "timeoutSeconds");
  lower(out.memory_mib, agent.memory_mib, request.memory_mib, "memoryMiB");
  lower(out.cpu_seconds, agent.cpu_seconds, request.cpu_seconds, "cpuSeconds");
  if (request.sandbox) {
    if (!*request.sandbox && agent.sandbox.value_or(false)) {
      throw std::invalid_argument("limits.sandbox may not turn off the agent's sandbox");
    }
    out.sandbox = request.sandbox;
  }
  if (request.network) {
    if (*request.network && !agent.network.value_or(true)) {
      throw std::invalid_argument("limits.network may not give network to an agent without it");
    }
    out.network = request.network;
  }
  return out;
}

}  // namespace nightshift
