// Lists the regular files of a directory tree, skipping `.git`, what the
// ignore rules match, and every symlink (a symlinked directory is never
// entered, so the walk cannot leave the tree or loop).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "gitignore.hpp"

namespace nightshift::plugin_common {

struct FoundFile {
  std::filesystem::path path;
  std::string relative_path;  // '/'-separated, from the root
  std::uint64_t bytes = 0;    // as listed; the scan measures again
};

struct Problem {
  std::string relative_path;
  std::string reason;
};

struct WalkResult {
  std::vector<FoundFile> files;  // sorted by relative path
  std::uint64_t ignored = 0;     // files and directories the ignore rules matched
  std::uint64_t symlinks = 0;    // symlinks, not followed
  std::uint64_t special = 0;     // FIFOs, sockets, devices
  std::vector<Problem> unreadable_directories;
  bool stopped = false;  // `cancelled` said so before the walk was done
};

WalkResult walk_tree(const std::filesystem::path& root, const GitignoreRules& rules,
                     const std::function<bool()>& cancelled);

}  // namespace nightshift::plugin_common
