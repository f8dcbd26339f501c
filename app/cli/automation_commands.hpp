// The automation commands of `nightshift`: `rerun ID`, `schedule
// add|ls|rm|enable|disable|trigger` and `webhook add|ls|rm|deliveries`.
// Clients of the v1.1 endpoints like the other commands.
#pragma once

#include <CLI/CLI.hpp>

namespace nightshift::cli {

// Adds the commands to `app`; `exit_code` as in add_commands.
void add_automation_commands(CLI::App& app, int& exit_code);

}  // namespace nightshift::cli
