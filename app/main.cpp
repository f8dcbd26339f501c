// The `nightshift` executable: `serve` runs the host; the other subcommands
// are clients of its API (app/cli).
#include <CLI/CLI.hpp>

#include "serve.hpp"

#ifdef NIGHTSHIFT_HAVE_CLI
#include "cli/commands.hpp"
#endif

#ifndef NIGHTSHIFT_VERSION
#error "NIGHTSHIFT_VERSION must be defined by the build"
#endif

int main(int argc, char** argv) {
  CLI::App app{"Nightshift: runs agents in the background", "nightshift"};
  app.set_version_flag("--version", "nightshift " NIGHTSHIFT_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  nightshift::app::add_serve_command(app, exit_code);
#ifdef NIGHTSHIFT_HAVE_CLI
  nightshift::cli::add_commands(app, exit_code);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; any other command line the parser
    // refuses (an unknown option, a missing argument, a value out of range)
    // is a usage error: 2, as every command's --help says, not CLI11's own
    // numbers.
    return app.exit(error) == 0 ? 0 : 2;
  }
  return exit_code;
}
