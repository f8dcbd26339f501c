// The files `nightshift agent new` writes, compiled into the binary from
// app/cli/templates/ (by cmake/embed_templates.cmake), so an installed
// `nightshift` needs no data files to make a project.
#pragma once

#include <optional>
#include <string_view>

namespace nightshift::cli {

// The template at `path` under app/cli/templates/ (e.g. "cpp/agent.cpp"),
// as it is in the source tree; nullopt when there is none. The text lives as
// long as the program.
std::optional<std::string_view> find_agent_template(std::string_view path);

}  // namespace nightshift::cli
