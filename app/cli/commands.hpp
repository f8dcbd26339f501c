// The client side of the `nightshift` executable: every subcommand except
// `serve`. The client speaks only the HTTP/WebSocket contract (api.md); it
// never links the host engine.
#pragma once

#include <CLI/CLI.hpp>

namespace nightshift::cli {

// Adds the client subcommands (agents, start, ps, show, logs, stop, wait, rm,
// remix, agent new, mcp) to `app`. When a subcommand runs, its callback stores the command's
// exit code (see exit_codes.hpp) in `exit_code`, which must outlive `app`.
void add_commands(CLI::App& app, int& exit_code);

}  // namespace nightshift::cli
