#include "gitignore.hpp"

#include <fnmatch.h>

#include <span>

namespace nightshift::plugin_common {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end > start) out.emplace_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// Drops trailing spaces that are not escaped by a backslash.
void trim_trailing_spaces(std::string& line) {
  while (!line.empty() && line.back() == ' ') {
    if (line.size() >= 2 && line[line.size() - 2] == '\\') {
      line.erase(line.size() - 2, 1);  // "\ " stands for a space
      return;
    }
    line.pop_back();
  }
}

using Segments = std::span<const std::string>;

bool match_segments(Segments pattern, Segments path) {
  if (pattern.empty()) return path.empty();
  if (pattern.front() == "**") {
    // A trailing "**" matches everything inside, not the directory itself.
    if (pattern.size() == 1) return !path.empty();
    for (std::size_t skip = 0; skip <= path.size(); ++skip) {
      if (match_segments(pattern.subspan(1), path.subspan(skip))) return true;
    }
    return false;
  }
  if (path.empty()) return false;
  if (::fnmatch(pattern.front().c_str(), path.front().c_str(), 0) != 0) return false;
  return match_segments(pattern.subspan(1), path.subspan(1));
}

}  // namespace

GitignoreRules::GitignoreRules(std::string_view file_text) {
  std::size_t start = 0;
  while (start < file_text.size()) {
    std::size_t end = file_text.find('\n', start);
    if (end == std::string_view::npos) end = file_text.size();
    std::string line(file_text.substr(start, end - start));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Rule rule;
    if (parse_line(std::move(line), rule)) rules_.push_back(std::move(rule));
    start = end + 1;
  }
}

bool GitignoreRules::parse_line(std::string line, Rule& rule) {
  trim_trailing_spaces(line);
  if (line.empty() || line.front() == '#') return false;
  if (line.front() == '!') {
    rule.negated = true;
    line.erase(0, 1);
  } else if (line.starts_with("\\#") || line.starts_with("\\!")) {
    line.erase(0, 1);
  }
  if (!line.empty() && line.back() == '/') {
    rule.directory_only = true;
    while (!line.empty() && line.back() == '/') line.pop_back();
  }
  if (line.empty()) return false;
  // A slash anywhere but at the end anchors the pattern; without one it
  // matches a name at any depth, which is what a leading "**" does.
  const bool anchored = line.find('/') != std::string::npos;
  rule.segments = split_path(line);
  if (rule.segments.empty()) return false;
  if (!anchored) rule.segments.insert(rule.segments.begin(), "**");
  return true;
}

bool GitignoreRules::is_ignored(std::string_view relative_path, bool is_directory) const {
  const std::vector<std::string> path = split_path(relative_path);
  bool ignored = false;
  for (const Rule& rule : rules_) {
    if (rule.directory_only && !is_directory) continue;
    if (match_segments(rule.segments, path)) ignored = !rule.negated;
  }
  return ignored;
}

}  // namespace nightshift::plugin_common
