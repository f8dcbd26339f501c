// What every client subcommand shares: errors turned into exit codes, and
// the options that say where the host is and how the answer is printed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/host_endpoint.hpp"

namespace nightshift::cli {

// Runs a command, turning every error into a message on stderr and an exit
// code (see exit_codes.hpp): nothing escapes into CLI11's parse loop.
int run_guarded(const std::function<int()>& command);

// --url (NIGHTSHIFT_URL), --token (NIGHTSHIFT_TOKEN) and --data-dir, in the
// help's "Host" group.
void add_host_options(CLI::App& command, HostOptions& options);

// --json: print the API's JSON instead of text.
void add_json_flag(CLI::App& command, bool& json_output);

}  // namespace nightshift::cli
