// `nightshift serve`: the host itself. Builds the engine (catalog, store, run
// manager, event bus) and the HTTP/WebSocket server over it, prints where it
// listens, and runs until SIGINT or SIGTERM, then shuts down gracefully.
#pragma once

#include <CLI/CLI.hpp>

namespace nightshift::app {

// Adds the `serve` subcommand; its callback sets `exit_code` when it returns.
void add_serve_command(CLI::App& app, int& exit_code);

}  // namespace nightshift::app
