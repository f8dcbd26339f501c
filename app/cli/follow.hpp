// Printing a run's log, and following a run live over the WebSocket
// (/background-agent-ws) until it ends.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "cli/api_client.hpp"

namespace nightshift::cli {

// Prints log entries to stdout (human lines, or one JSON object per line) and,
// on a terminal, a progress bar on stderr below them.
class LogPrinter {
 public:
  LogPrinter(bool json_lines, bool colour, bool progress_bar);
  ~LogPrinter();
  LogPrinter(const LogPrinter&) = delete;
  LogPrinter& operator=(const LogPrinter&) = delete;

  // Prints `entry` unless its seq was printed already; returns the last seq.
  std::uint64_t print(const boost::json::object& entry);
  std::uint64_t last_seq() const { return last_seq_; }
  void set_last_seq(std::uint64_t seq) { last_seq_ = seq; }
  void show_progress(double fraction);
  void clear_progress();

 private:
  bool json_lines_;
  bool colour_;
  bool progress_bar_;
  bool bar_visible_ = false;
  std::optional<double> progress_;
  std::uint64_t last_seq_ = 0;
};

// Prints every entry the host has for the run after printer.last_seq(),
// page by page; returns whether the log is complete (the run has ended).
bool print_log_pages(ApiClient& api, const std::string& instance_id, LogPrinter& printer);

// Follows the run until it reaches a terminal status and returns its final
// Run object. With `print_logs`, streams its log from printer.last_seq() on.
boost::json::object follow_run(ApiClient& api, const std::string& instance_id, LogPrinter& printer,
                               bool print_logs);

// The exit code for a finished run: ok, run_failed or run_cancelled.
int exit_code_for_outcome(const boost::json::object& run);

}  // namespace nightshift::cli
