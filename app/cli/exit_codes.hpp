// Exit codes of the client commands, and the error type that carries one.
// The same table is printed in every command's --help (exit_code_help()).
#pragma once

#include <stdexcept>
#include <string>

namespace nightshift::cli {

enum class ExitCode : int {
  ok = 0,                // success; for `wait` and `--follow`: the run completed
  error = 1,             // unexpected failure (bad response, I/O error)
  usage = 2,             // an argument the client itself rejects (bad name, unreadable file)
  host_unreachable = 3,  // no Nightshift host at the URL
  unauthorized = 4,      // the host refused the token (401)
  run_not_found = 5,     // unknown run, or an id prefix matching no run or several runs
  agent_not_found = 6,   // unknown, ambiguous or unavailable agent
  invalid_request = 7,   // the host rejected the request, e.g. invalid params (400/413/415)
  at_capacity = 8,       // busy: the run queue is full (503), a run's unread messages (429)
  conflict = 9,          // stop of a run that has ended, rm of a run still active (409)
  already_exists = 10,   // `remix new` would overwrite a file; `agent new` a non-empty directory
  run_failed = 20,       // `wait` and `--follow`: the run failed
  run_cancelled = 21,    // `wait` and `--follow`: the run was cancelled
};

// An error the user should see, with the exit code it maps to.
class CliError : public std::runtime_error {
 public:
  CliError(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// The exit-code table for --help footers.
std::string exit_code_help();

}  // namespace nightshift::cli
