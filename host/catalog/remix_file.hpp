// A remix: a Markdown file whose YAML front matter names a base agent and
// overrides its params and limits; the body is its instructions (agents.md).
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "catalog/limits.hpp"

namespace nightshift {

struct RemixFile {
  std::filesystem::path location;
  std::string name;  // the front matter's `name`, else the file's stem
  std::string description;
  std::string version;
  std::string base;            // the remixed agent's id, e.g. "installed:sleep"
  boost::json::object params;  // as written, YAML turned into JSON
  AgentLimits limits;          // every limit it sets (retries and maxConcurrent included)
  std::string instructions;    // the body, trimmed; empty when there is none
  // Why the file cannot be used (no front matter, bad YAML, a mistyped
  // field). The fields above hold what could be read before it.
  std::optional<std::string> error;
};

// Reads `file`; never throws for what is inside the file (see `error`).
RemixFile read_remix_file(const std::filesystem::path& file);

// Parses the text of a remix file, `stem` being the default name.
RemixFile parse_remix(const std::string& text, const std::string& stem);

}  // namespace nightshift
