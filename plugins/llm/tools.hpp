// The tools the model may call, all inside the workspace: list_files,
// read_file, search (read-only), write_file, edit_file and run_command.
//
// A tool never fails the run: whatever goes wrong (bad arguments, a path
// that leaves the workspace, a file that is not there, a command that
// fails) goes back to the model as the tool's result, marked as an error,
// so that it can correct itself.
#pragma once

#include <boost/json/array.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift::llm {

struct ToolOutcome {
  std::string content;  // what the model is told (valid UTF-8)
  bool error = false;
  std::string account;  // a short account for the run's log
};

struct ToolLimits {
  std::size_t read_max_lines = 2000;
  std::size_t read_max_bytes = 256 * 1024;
  std::size_t list_max_entries = 2000;
  std::size_t search_max_matches = 200;
  std::size_t search_max_file_bytes = 4 * 1024 * 1024;
  std::size_t search_line_bytes = 300;
  std::size_t write_max_bytes = 10 * 1024 * 1024;
  std::size_t command_output_head = 16 * 1024;  // of a command's output, the start kept ...
  std::size_t command_output_tail = 48 * 1024;  // ... and the end kept
  std::chrono::seconds command_default_timeout{300};
  std::chrono::seconds command_max_timeout{3600};
  std::chrono::milliseconds command_stop_grace{2000};
};

class Tools {
 public:
  // `cancelled` is looked at while a command runs: a stop kills it.
  // `hidden_variables` are left out of the commands' environment (the key's).
  Tools(const std::filesystem::path& workspace, std::vector<std::string> enabled,
        std::string instance_id, std::function<bool()> cancelled,
        std::vector<std::string> hidden_variables = {}, ToolLimits limits = {});

  const std::vector<std::string>& enabled() const noexcept { return enabled_; }
  bool is_enabled(std::string_view name) const;

  // The enabled tools' definitions for the request's `tools`.
  boost::json::array definitions() const;

  // Runs one call; `arguments` is the JSON text the model wrote.
  ToolOutcome call(std::string_view name, std::string_view arguments);

  // Workspace-relative paths written or edited so far, sorted.
  const std::set<std::string>& files_changed() const noexcept { return files_changed_; }

  const std::filesystem::path& root() const noexcept { return root_; }

  // The absolute path `given` names inside the workspace, with symlinks
  // resolved; throws std::runtime_error (for the model) when it leaves it.
  std::filesystem::path resolve(std::string_view given) const;
  // '/'-separated, relative to the workspace ("." for the workspace itself).
  std::string relative(const std::filesystem::path& resolved) const;

 private:
  ToolOutcome list_files(const boost::json::object& args);
  ToolOutcome read_file(const boost::json::object& args);
  ToolOutcome search(const boost::json::object& args);
  ToolOutcome write_file(const boost::json::object& args);
  ToolOutcome edit_file(const boost::json::object& args);
  ToolOutcome run_command(const boost::json::object& args);

  std::filesystem::path root_;
  std::vector<std::string> enabled_;
  std::string instance_id_;
  std::function<bool()> cancelled_;
  std::vector<std::string> hidden_variables_;
  ToolLimits limits_;
  std::set<std::string> files_changed_;
};

}  // namespace nightshift::llm
