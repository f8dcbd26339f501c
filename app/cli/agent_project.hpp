// `nightshift agent new`: writes an out-of-tree agent project (CMakeLists.txt,
// agent.json, the source, a README) from the templates compiled into the
// binary, ready to build against the installed SDK with no edits.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace nightshift::cli {

enum class AgentLanguage { cpp, c };

struct AgentProjectSpec {
  std::string name;  // [a-z0-9][a-z0-9._-]{0,63}: the agent's and the library's name
  AgentLanguage language = AgentLanguage::cpp;
  std::filesystem::path dir;  // where the project goes; missing or empty
};

// The C++ class name the C++ template uses for `name`: "my-agent" gives
// "MyAgent", "scan" gives "ScanAgent", "2fa" gives "Agent2fa".
std::string agent_class_name(const std::string& name);

// Writes the project and returns the files written (relative to spec.dir),
// in the order written. Throws CliError(usage) for an invalid name and
// CliError(already_exists) when spec.dir exists and is not an empty
// directory; nothing is written then.
std::vector<std::filesystem::path> write_agent_project(const AgentProjectSpec& spec);

}  // namespace nightshift::cli
