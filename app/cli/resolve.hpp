// Turns what the user typed into ids the API knows: a run id prefix (as git
// shortens commits) and an agent's bare name.
#pragma once

#include <string>
#include <vector>

#include "cli/api_client.hpp"

namespace nightshift::cli {

// A full instanceId or a unique prefix of one. Throws CliError(run_not_found)
// when no run matches or several do (naming them).
std::string resolve_run_id(ApiClient& api, const std::string& id_or_prefix);

// A full agent id ("installed:echo") is taken as is; a bare name ("echo")
// must match exactly one agent's name. Throws CliError(agent_not_found).
std::string resolve_agent_id(ApiClient& api, const std::string& id_or_name);

// The shortest prefix length, at least `minimum`, at which all `ids` differ
// (the API allows time-ordered UUID v7 ids, which share their first
// characters; a table must still tell them apart).
std::size_t unique_prefix_length(const std::vector<std::string>& ids, std::size_t minimum = 8);

}  // namespace nightshift::cli
