// A compiled agent's agent.json (agents.md), read without running any of
// the plugin's code.
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "catalog/limits.hpp"
#include "model/run.hpp"

namespace nightshift {

struct Manifest {
  std::string name;
  std::string version;
  std::string description;
  std::string library;         // a file name inside the agent's folder
  bool messages = false;       // "messages": true: the agent reads messages sent to its runs
  boost::json::object params;  // the params schema, checked by check_schema
  Isolation isolation = Isolation::process;  // "isolation": "thread" runs it in the host
  AgentLimits limits;                        // the agent's default limits
};

// Bounds on an agent.json: a manifest is small, and anything bigger or
// deeper is not one.
inline constexpr std::size_t max_manifest_bytes = 1024 * 1024;
inline constexpr std::size_t max_manifest_depth = 32;  // nested objects and arrays

// Reads and checks `file`. Throws std::runtime_error saying what is wrong
// with it (unreadable, too big, not JSON, nested too deep, a missing or
// mistyped field, a bad schema).
Manifest read_manifest(const std::filesystem::path& file);

// Checks the text of an agent.json, as read_manifest does once it has read
// the file.
Manifest parse_manifest(std::string_view text);

// True for a name matching [a-z0-9][a-z0-9._-]{0,63}: the only agent names
// the catalog lists as usable.
bool is_valid_agent_name(std::string_view name);

}  // namespace nightshift
