// A compiled agent's agent.json (agents.md), read without running any of
// the plugin's code.
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <string>
#include <string_view>

namespace nightshift {

struct Manifest {
  std::string name;
  std::string version;
  std::string description;
  std::string library;         // a file name inside the agent's folder
  bool messages = false;       // "messages": true: the agent reads messages sent to its runs
  boost::json::object params;  // the params schema, checked by check_schema
};

// Reads and checks `file`. Throws std::runtime_error saying what is wrong
// with it (unreadable, not JSON, a missing or mistyped field, a bad schema).
Manifest read_manifest(const std::filesystem::path& file);

// True for a name matching [a-z0-9][a-z0-9._-]{0,63}: the only agent names
// the catalog lists as usable.
bool is_valid_agent_name(std::string_view name);

}  // namespace nightshift
