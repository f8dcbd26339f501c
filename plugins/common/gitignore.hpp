// The patterns of one .gitignore file, matched against paths relative to the
// directory that holds it.
//
// Supported (the common rules of gitignore(5)):
//   - blank lines and lines starting with '#' are ignored; "\#" and "\!"
//     start a pattern with a literal '#' or '!';
//   - trailing spaces are dropped unless escaped with a backslash;
//   - "!pattern" re-includes what an earlier pattern excluded (the last
//     matching pattern wins); as in git, nothing inside an excluded
//     directory can be re-included, because the walk never enters it;
//   - a trailing '/' makes a pattern match directories only;
//   - a pattern with a '/' at its start or in its middle is anchored to the
//     .gitignore's directory; one without matches a name at any depth;
//   - '*' matches anything but '/', '?' one character but '/', "[a-z]" /
//     "[!a-z]" a character class, '\' escapes the next character (all per
//     segment, via fnmatch(3));
//   - "**/" at the start matches in any directory, "/**" at the end matches
//     everything inside, "/**/" in the middle matches zero or more
//     directories.
// Not supported: nested .gitignore files, .git/info/exclude and
// core.excludesFile, which the agent does not read.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nightshift::plugin_common {

class GitignoreRules {
 public:
  GitignoreRules() = default;
  explicit GitignoreRules(std::string_view file_text);

  // True when the path (relative, '/'-separated, no leading '/') is ignored.
  bool is_ignored(std::string_view relative_path, bool is_directory) const;

  std::size_t size() const noexcept { return rules_.size(); }

 private:
  struct Rule {
    std::vector<std::string> segments;  // "**" stands for any number of directories
    bool negated = false;
    bool directory_only = false;
  };
  static bool parse_line(std::string line, Rule& rule);

  std::vector<Rule> rules_;
};

}  // namespace nightshift::plugin_common
