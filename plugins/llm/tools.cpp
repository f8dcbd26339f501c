#include "tools.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/regex.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "gitignore.hpp"
#include "line_splitter.hpp"
#include "process.hpp"
#include "tree_walker.hpp"

namespace nightshift::llm {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// A mistake to report to the model as the tool's result.
class ToolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const json::value* field(const json::object& args, std::string_view name) {
  const json::value* value = args.if_contains(name);
  return value == nullptr || value->is_null() ? nullptr : value;
}

std::string required_string(const json::object& args, std::string_view name) {
  const json::value* value = field(args, name);
  if (value == nullptr) throw ToolError("missing argument `" + std::string(name) + "`");
  if (!value->is_string()) throw ToolError("argument `" + std::string(name) + "` must be a string");
  return std::string(value->get_string());
}

std::optional<std::string> optional_string(const json::object& args, std::string_view name) {
  const json::value* value = field(args, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) throw ToolError("argument `" + std::string(name) + "` must be a string");
  return std::string(value->get_string());
}

// Models sometimes write numbers as strings: "12" is taken as 12.
std::optional<double> optional_number(const json::object& args, std::string_view name) {
  const json::value* value = field(args, name);
  if (value == nullptr) return std::nullopt;
  if (value->is_number()) return value->to_number<double>();
  if (value->is_string()) {
    const std::string text(value->get_string());
    char* end = nullptr;
    const double number = std::strtod(text.c_str(), &end);
    if (end != text.c_str() && *end == '\0') return number;
  }
  throw ToolError("argument `" + std::string(name) + "` must be a number");
}

std::optional<std::size_t> optional_line(const json::object& args, std::string_view name) {
  const std::optional<double> number = optional_number(args, name);
  if (!number) return std::nullopt;
  if (!(*number >= 1) || *number > 1e12 || std::floor(*number) != *number) {
    throw ToolError("argument `" + std::string(name) + "` must be a line number, 1 or more");
  }
  return static_cast<std::size_t>(*number);
}

bool optional_bool(const json::object& args, std::string_view name) {
  const json::value* value = field(args, name);
  if (value == nullptr) return false;
  if (value->is_bool()) return value->get_bool();
  if (value->is_string()) return value->get_string() == "true";
  throw ToolError("argument `" + std::string(name) + "` must be true or false");
}

std::string read_whole(const fs::path& path, std::size_t max_bytes, const std::string& shown) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw ToolError(shown + " is a directory, not a file");
  if (!fs::is_regular_file(path, ec)) throw ToolError("no file " + shown + " in the workspace");
  const auto size = fs::file_size(path, ec);
  if (ec) throw ToolError("cannot read " + shown + ": " + ec.message());
  if (size > max_bytes) {
    throw ToolError(shown + " is " + std::to_string(size) + " bytes, more than this tool takes (" +
                    std::to_string(max_bytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ToolError("cannot open " + shown + ": " + std::strerror(errno));
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

bool looks_binary(std::string_view head) {
  return head.substr(0, 8192).find('\0') != std::string_view::npos;
}

void write_whole(const fs::path& path, std::string_view text, const std::string& shown) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) throw ToolError("cannot make the directory for " + shown + ": " + ec.message());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ToolError("cannot write " + shown + ": " + std::strerror(errno));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw ToolError("writing " + shown + " failed: " + std::strerror(errno));
}

std::size_t count_occurrences(std::string_view text, std::string_view piece) {
  std::size_t count = 0;
  for (std::size_t at = text.find(piece); at != std::string_view::npos;
       at = text.find(piece, at + piece.size())) {
    ++count;
  }
  return count;
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

plugin_common::GitignoreRules read_gitignore(const fs::path& root) {
  std::ifstream in(root / ".gitignore", std::ios::binary);
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return plugin_common::GitignoreRules(text.str());
}

bool is_under(std::string_view relative, std::string_view directory) {
  if (directory == ".") return true;
  return relative.size() > directory.size() && relative.starts_with(directory) &&
         relative[directory.size()] == '/';
}

// The definitions of every tool, in the order they are offered.
json::object definition(std::string_view name) {
  const auto function = [&](std::string_view description, json::object properties,
                            json::array required) {
    return json::object{
        {"type", "function"},
        {"function",
         json::object{{"name", name},
                      {"description", description},
                      {"parameters", json::object{{"type", "object"},
                                                  {"properties", std::move(properties)},
                                                  {"required", std::move(required)}}}}}};
  };
  const auto prop = [](std::string_view type, std::string_view description) {
    return json::object{{"type", type}, {"description", description}};
  };
  if (name == "list_files") {
    return function(
        "List the files under a directory of the workspace, recursively (skipping .git and what "
        ".gitignore ignores), one relative path per line.",
        {{"path", prop("string", "Directory relative to the workspace; default \".\".")}}, {});
  }
  if (name == "read_file") {
    return function(
        "Read a text file of the workspace, whole or a range of lines (1-based, inclusive). Long "
        "files are cut; the answer then says which lines it holds.",
        {{"path", prop("string", "File path relative to the workspace.")},
         {"start_line", prop("integer", "First line to read (default 1).")},
         {"end_line", prop("integer", "Last line to read (default: the end).")}},
        {"path"});
  }
  if (name == "search") {
    return function(
        "Search the workspace's text files for a regular expression (Perl syntax), line by "
        "line; answers path:line: text for each matching line.",
        {{"pattern", prop("string", "The regular expression.")},
         {"path", prop("string", "File or directory to search in (default \".\").")},
         {"ignore_case", prop("boolean", "Match without regard to case (default false).")}},
        {"pattern"});
  }
  if (name == "write_file") {
    return function(
        "Create or overwrite a file of the workspace with the given content (directories are "
        "created as needed).",
        {{"path", prop("string", "File path relative to the workspace.")},
         {"content", prop("string", "The whole new content of the file.")}},
        {"path", "content"});
  }
  if (name == "edit_file") {
    return function(
        "Replace one exact piece of text in a file of the workspace. old_text must occur in the "
        "file exactly once (copy it from read_file, with enough surrounding lines to be unique).",
        {{"path", prop("string", "File path relative to the workspace.")},
         {"old_text", prop("string", "The exact text to replace.")},
         {"new_text", prop("string", "The text to put in its place.")}},
        {"path", "old_text", "new_text"});
  }
  return function(
      "Run a shell command (/bin/sh -c) in the workspace directory and get its exit status and "
      "output (stdout and stderr together; long output is cut in the middle).",
      {{"command", prop("string", "The command line.")},
       {"timeout_seconds",
        prop("integer", "Kill it after this long (default 300, at most 3600).")}},
      {"command"});
}

// A command's output: its start and its end, the middle dropped when long.
class CappedOutput {
 public:
  CappedOutput(std::size_t head, std::size_t tail) : head_limit_(head), tail_limit_(tail) {}
  void append(std::string_view bytes) {
    total_ += bytes.size();
    const std::size_t to_head = std::min(bytes.size(), head_limit_ - head_.size());
    head_.append(bytes.substr(0, to_head));
    bytes.remove_prefix(to_head);
    if (bytes.empty()) return;
    tail_.append(bytes);
    if (tail_.size() > 2 * tail_limit_) tail_.erase(0, tail_.size() - tail_limit_);
  }
  std::size_t total() const noexcept { return total_; }
  std::string text() const {
    std::string tail = tail_;
    std::size_t dropped = 0;
    if (tail.size() > tail_limit_) {
      dropped = tail.size() - tail_limit_;
      tail.erase(0, dropped);
    }
    dropped += total_ - head_.size() - tail_.size();
    std::string out = head_;
    if (dropped > 0)
      out += "\n[... " + std::to_string(dropped) + " bytes of output left out ...]\n";
    out += tail;
    return plugin_common::sanitize_utf8(out);
  }

 private:
  std::size_t head_limit_;
  std::size_t tail_limit_;
  std::string head_;
  std::string tail_;
  std::size_t total_ = 0;
};

}  // namespace

Tools::Tools(const fs::path& workspace, std::vector<std::string> enabled, std::string instance_id,
             std::function<bool()> cancelled, std::vector<std::string> hidden_variables,
             ToolLimits limits)
    : enabled_(std::move(enabled)),
      instance_id_(std::move(instance_id)),
      cancelled_(std::move(cancelled)),
      hidden_variables_(std::move(hidden_variables)),
      limits_(limits) {
  std::error_code ec;
  root_ = fs::weakly_canonical(fs::absolute(workspace, ec), ec);
  if (ec) root_ = fs::absolute(workspace).lexically_normal();
}

bool Tools::is_enabled(std::string_view name) const {
  return std::find(enabled_.begin(), enabled_.end(), name) != enabled_.end();
}

json::array Tools::definitions() const {
  json::array out;
  for (const std::string& name : enabled_) out.push_back(definition(name));
  return out;
}

fs::path Tools::resolve(std::string_view given) const {
  if (given.empty()) throw ToolError("the path is empty; give a path relative to the workspace");
  if (given.find('\0') != std::string_view::npos) throw ToolError("the path holds a NUL byte");
  const fs::path path(given);
  const fs::path candidate = path.is_absolute() ? path : root_ / path;
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(candidate, ec);
  if (ec) throw ToolError("cannot resolve the path " + std::string(given) + ": " + ec.message());
  const fs::path inside = resolved.lexically_relative(root_);
  if (resolved != root_ && (inside.empty() || *inside.begin() == "..")) {
    throw ToolError("refused: " + std::string(given) +
                    " is outside the workspace (tools work inside it only; use a path relative "
                    "to the workspace, without '..' or symlinks leading out)");
  }
  return resolved;
}

std::string Tools::relative(const fs::path& resolved) const {
  if (resolved == root_) return ".";
  return resolved.lexically_relative(root_).generic_string();
}

ToolOutcome Tools::call(std::string_view name, std::string_view arguments) {
  ToolOutcome outcome;
  try {
    if (!is_enabled(name)) {
      std::string list;
      for (const std::string& tool : enabled_) list += (list.empty() ? "" : ", ") + tool;
      throw ToolError("there is no tool `" + std::string(name) +
                      "` in this run; the tools are: " + (list.empty() ? "(none)" : list));
    }
    json::error_code ec;
    json::value parsed = json::parse(arguments.empty() ? std::string_view("{}") : arguments, ec);
    if (ec || !parsed.is_object()) {
      throw ToolError("the arguments are not a JSON object: " +
                      plugin_common::sanitize_utf8(arguments.substr(0, 200)));
    }
    const json::object& args = parsed.get_object();
    if (name == "list_files") return list_files(args);
    if (name == "read_file") return read_file(args);
    if (name == "search") return search(args);
    if (name == "write_file") return write_file(args);
    if (name == "edit_file") return edit_file(args);
    return run_command(args);
  } catch (const std::exception& e) {
    outcome.error = true;
    outcome.content = std::string("error: ") + e.what();
    outcome.account = outcome.content;
  }
  return outcome;
}

ToolOutcome Tools::list_files(const json::object& args) {
  const fs::path directory = resolve(optional_string(args, "path").value_or("."));
  const std::string shown = relative(directory);
  std::error_code ec;
  if (!fs::exists(directory, ec)) throw ToolError("no directory " + shown + " in the workspace");
  std::vector<std::string> files;
  if (!fs::is_directory(directory, ec)) {
    files.push_back(shown);
  } else {
    const auto walk = plugin_common::walk_tree(root_, read_gitignore(root_), cancelled_);
    for (const auto& file : walk.files) {
      if (is_under(file.relative_path, shown)) files.push_back(file.relative_path);
    }
  }
  ToolOutcome out;
  const std::size_t shown_count = std::min(files.size(), limits_.list_max_entries);
  for (std::size_t i = 0; i < shown_count; ++i) out.content += files[i] + "\n";
  if (files.size() > shown_count) {
    out.content += "[... and " + std::to_string(files.size() - shown_count) +
                   " more files; list a subdirectory to see them]\n";
  }
  if (files.empty()) out.content = "(no files)\n";
  out.content = plugin_common::sanitize_utf8(out.content);
  out.account = plural(files.size(), "file", "files") + " under " + shown;
  return out;
}

ToolOutcome Tools::read_file(const json::object& args) {
  const fs::path path = resolve(required_string(args, "path"));
  const std::string shown = relative(path);
  const std::size_t first = optional_line(args, "start_line").value_or(1);
  const std::optional<std::size_t> last = optional_line(args, "end_line");
  if (last && *last < first) throw ToolError("end_line is before start_line");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw ToolError(shown + " is a directory; use list_files");
  if (!fs::is_regular_file(path, ec)) throw ToolError("no file " + shown + " in the workspace");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ToolError("cannot open " + shown + ": " + std::strerror(errno));

  std::string text;
  std::string line;
  std::size_t number = 0;
  std::size_t shown_last = 0;
  bool cut = false;
  bool binary_checked = false;
  while (std::getline(in, line)) {
    ++number;
    if (!binary_checked) {
      binary_checked = true;
      if (looks_binary(line)) throw ToolError(shown + " is a binary file");
    }
    if (number < first || (last && number > *last)) continue;
    if (cut) continue;  // counting the lines only
    const std::size_t taken = number - first + 1;
    if (taken > limits_.read_max_lines || text.size() + line.size() + 1 > limits_.read_max_bytes) {
      cut = true;
      continue;
    }
    text += line;
    if (!in.eof()) text += '\n';
    shown_last = number;
  }
  ToolOutcome out;
  out.content = plugin_common::sanitize_utf8(text);
  if (first > number && number > 0) {
    throw ToolError(shown + " has " + plural(number, "line", "lines") + "; start_line " +
                    std::to_string(first) + " is past its end");
  }
  const bool partial = first > 1 || shown_last < number;
  if (partial && shown_last >= first) {
    out.content +=
        "\n[lines " + std::to_string(first) + "-" + std::to_string(shown_last) + " of " +
        std::to_string(number) +
        (cut ? "; ask for start_line=" + std::to_string(shown_last + 1) + " to read on]" : "]");
  }
  out.account = (partial ? "lines " + std::to_string(first) + "-" + std::to_string(shown_last) +
                               " of " + std::to_string(number) + " of "
                         : plural(number, "line", "lines") + " of ") +
                shown;
  return out;
}

ToolOutcome Tools::search(const json::object& args) {
  const std::string pattern = required_string(args, "pattern");
  const fs::path where = resolve(optional_string(args, "path").value_or("."));
  const std::string shown = relative(where);
  boost::regex regex;
  try {
    const bool icase = optional_bool(args, "ignore_case");
    regex.assign(pattern, icase ? boost::regex::perl | boost::regex::icase : boost::regex::perl);
  } catch (const boost::regex_error& e) {
    throw ToolError("the pattern is not a valid regular expression: " + std::string(e.what()));
  }
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::exists(where, ec))
    throw ToolError("no file or directory " + shown + " in the workspace");
  if (fs::is_directory(where, ec)) {
    const auto walk = plugin_common::walk_tree(root_, read_gitignore(root_), cancelled_);
    for (const auto& file : walk.files) {
      if (is_under(file.relative_path, shown)) files.push_back(file.relative_path);
    }
  } else {
    files.push_back(shown);
  }
  ToolOutcome out;
  std::size_t matches = 0;
  std::set<std::string> matched_files;
  bool more = false;
  for (const std::string& file : files) {
    if (cancelled_() || more) break;
    std::string text;
    try {
      text = read_whole(root_ / file, limits_.search_max_file_bytes, file);
    } catch (const ToolError&) {
      continue;  // too big or unreadable: not searched
    }
    if (looks_binary(text)) continue;
    std::size_t number = 0;
    for (std::size_t at = 0; at < text.size();) {
      std::size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      const std::string_view line(text.data() + at, end - at);
      ++number;
      try {
        if (boost::regex_search(line.begin(), line.end(), regex)) {
          if (matches == limits_.search_max_matches) {
            more = true;
            break;
          }
          ++matches;
          matched_files.insert(file);
          out.content += file + ":" + std::to_string(number) + ": " +
                         std::string(line.substr(0, limits_.search_line_bytes)) +
                         (line.size() > limits_.search_line_bytes ? "..." : "") + "\n";
        }
      } catch (const std::runtime_error& e) {
        throw ToolError("the pattern is too costly to match (" + std::string(e.what()) +
                        "); make it simpler");
      }
      at = end + 1;
    }
  }
  if (more) {
    out.content += "[more matches left out after the first " +
                   std::to_string(limits_.search_max_matches) +
                   "; narrow the pattern or the path]\n";
  }
  if (matches == 0) out.content = "no matches\n";
  out.content = plugin_common::sanitize_utf8(out.content);
  out.account = plural(matches, "match", "matches") + (more ? " (and more)" : "") + " in " +
                plural(matched_files.size(), "file", "files") + " under " + shown;
  return out;
}

ToolOutcome Tools::write_file(const json::object& args) {
  const fs::path path = resolve(required_string(args, "path"));
  const std::string shown = relative(path);
  const std::string content = required_string(args, "content");
  if (content.size() > limits_.write_max_bytes) {
    throw ToolError("the content is larger than this tool writes (" +
                    std::to_string(limits_.write_max_bytes) + " bytes)");
  }
  std::error_code ec;
  if (path == root_ || fs::is_directory(path, ec)) throw ToolError(shown + " is a directory");
  write_whole(path, content, shown);
  files_changed_.insert(shown);
  ToolOutcome out;
  out.content = "wrote " + plural(content.size(), "byte", "bytes") + " to " + shown;
  out.account = out.content;
  return out;
}

ToolOutcome Tools::edit_file(const json::object& args) {
  const fs::path path = resolve(required_string(args, "path"));
  const std::string shown = relative(path);
  const std::string old_text = required_string(args, "old_text");
  const std::string new_text = required_string(args, "new_text");
  if (old_text.empty()) throw ToolError("old_text is empty; use write_file to write a whole file");
  std::string text = read_whole(path, limits_.write_max_bytes, shown);
  const std::size_t count = count_occurrences(text, old_text);
  if (count == 0) {
    throw ToolError("old_text was not found in " + shown +
                    "; read the file again and copy the text exactly, whitespace included");
  }
  if (count > 1) {
    throw ToolError("old_text occurs " + std::to_string(count) + " times in " + shown +
                    "; include more of the surrounding text so that it occurs once");
  }
  text.replace(text.find(old_text), old_text.size(), new_text);
  write_whole(path, text, shown);
  files_changed_.insert(shown);
  ToolOutcome out;
  out.content = "replaced 1 piece of " + shown + " (" + plural(old_text.size(), "byte", "bytes") +
                " by " + plural(new_text.size(), "byte", "bytes") + ")";
  out.account = out.content;
  return out;
}

ToolOutcome Tools::run_command(const json::object& args) {
  const std::string command = required_string(args, "command");
  if (command.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw ToolError("the command is empty");
  }
  std::chrono::milliseconds timeout = limits_.command_default_timeout;
  if (const auto seconds = optional_number(args, "timeout_seconds")) {
    if (!(*seconds > 0)) throw ToolError("timeout_seconds must be more than 0");
    timeout = std::chrono::milliseconds(static_cast<std::int64_t>(
        std::min(*seconds, static_cast<double>(limits_.command_max_timeout.count())) * 1000));
  }
  if (cancelled_()) throw ToolError("the run is stopping; the command was not started");

  plugin_common::Pipe output = plugin_common::make_pipe();
  const pid_t pid = plugin_common::spawn_shell(command, root_.string(), instance_id_, output,
                                               output, hidden_variables_);
  output.write_end.reset();
  plugin_common::FileDescriptor reader = std::move(output.read_end);

  CappedOutput captured(limits_.command_output_head, limits_.command_output_tail);
  std::optional<int> status;
  std::optional<Clock::time_point> terminated_at;
  bool killed = false;
  std::string ended_by;  // "stopped" or "timed out after N s"
  const auto started = Clock::now();
  const auto terminate = [&](std::string why) {
    if (terminated_at) return;
    ended_by = std::move(why);
    terminated_at = Clock::now();
    ::kill(-pid, SIGTERM);
  };
  std::array<char, 64 * 1024> buffer{};
  const auto drain = [&] {
    for (int reads = 0; reader.is_open() && reads < 16; ++reads) {
      const ssize_t n = ::read(reader.get(), buffer.data(), buffer.size());
      if (n > 0) {
        captured.append(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      } else if (n == 0) {
        reader.reset();
      } else if (errno != EINTR) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) reader.reset();
        return;
      }
    }
  };
  while (true) {
    if (reader.is_open()) {
      pollfd fd{reader.get(), POLLIN, 0};
      if (::poll(&fd, 1, 20) > 0) drain();
    } else {
      ::poll(nullptr, 0, 20);
    }
    if (cancelled_()) terminate("stopped");
    if (Clock::now() - started >= timeout) {
      terminate("timed out after " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                " s");
    }
    if (terminated_at && !killed && Clock::now() - *terminated_at >= limits_.command_stop_grace) {
      killed = true;
      ::kill(-pid, SIGKILL);
    }
    if (!status) {
      int raw = 0;
      if (::waitpid(pid, &raw, WNOHANG) == pid) status = raw;
    }
    if (!status) continue;
    if (!plugin_common::group_has_live_process(pid)) break;
    // The command exited, leaving processes behind in its group: they go too.
    if (!terminated_at) {
      terminated_at = Clock::now();
      ::kill(-pid, SIGTERM);
    }
  }
  for (int round = 0; round < 64 && reader.is_open(); ++round) {
    pollfd fd{reader.get(), POLLIN, 0};
    if (::poll(&fd, 1, 0) <= 0) break;
    drain();
  }

  ToolOutcome out;
  std::string how;
  if (WIFEXITED(*status)) {
    how = "exit status " + std::to_string(WEXITSTATUS(*status));
  } else {
    how = "killed by " + plugin_common::signal_name(WTERMSIG(*status));
  }
  if (!ended_by.empty()) how = ended_by + " (" + how + ")";
  out.error = !ended_by.empty();
  out.content = how + "\n" + captured.text();
  out.account = how + ", " + plural(captured.total(), "byte", "bytes") + " of output";
  return out;
}

}  // namespace nightshift::llm
