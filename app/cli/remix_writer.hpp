// `nightshift remix new`: writes a remix file in the format of agents.md
// (YAML front matter, then the instructions as the body).
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <string>

namespace nightshift::cli {

struct RemixSpec {
  std::string name;        // [a-z0-9][a-z0-9._-]{0,63}
  std::string base_agent;  // a full agent id, e.g. installed:sleep
  std::string description;
  boost::json::object params;
  std::string instructions;
};

bool is_valid_agent_name(const std::string& name);

// The file's text. Values are written as JSON, which is also YAML (flow
// style), so a number stays a number and a string stays a string.
std::string render_remix(const RemixSpec& spec);

// Writes <workspace>/.nightshift/remix/<name>.md and returns its path.
// Throws CliError(already_exists) when it exists and !overwrite.
std::filesystem::path write_remix(const std::filesystem::path& workspace, const RemixSpec& spec,
                                  bool overwrite);

}  // namespace nightshift::cli
