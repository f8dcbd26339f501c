#include "cli/command_plumbing.hpp"

#include <exception>
#include <iostream>

#include "cli/exit_codes.hpp"

namespace nightshift::cli {

int run_guarded(const std::function<int()>& command) {
  try {
    return command();
  } catch (const CliError& error) {
    std::cerr << "nightshift: " << error.what() << '\n';
    return static_cast<int>(error.code());
  } catch (const std::exception& error) {
    std::cerr << "nightshift: unexpected error: " << error.what() << '\n';
    return static_cast<int>(ExitCode::error);
  }
}

void add_host_options(CLI::App& command, HostOptions& options) {
  command.add_option("--url", options.url, "URL of the Nightshift host")
      ->envname("NIGHTSHIFT_URL")
      ->capture_default_str()
      ->group("Host");
  command
      .add_option("--token", options.token,
                  "API token (default: the token file in the data directory)")
      ->envname("NIGHTSHIFT_TOKEN")
      ->group("Host");
  command
      .add_option("--data-dir", options.data_dir,
                  "data directory holding the token file (default: $XDG_DATA_HOME/nightshift, "
                  "else ~/.local/share/nightshift)")
      ->group("Host");
}

void add_json_flag(CLI::App& command, bool& json_output) {
  command.add_flag("--json", json_output, "print the API's JSON instead of text");
}

}  // namespace nightshift::cli
