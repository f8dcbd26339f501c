#include "tree_walker.hpp"

#include <algorithm>
#include <system_error>

namespace nightshift::plugin_common {
namespace fs = std::filesystem;
namespace {

struct PendingDirectory {
  fs::path path;
  std::string relative_path;  // empty for the root
};

std::string child_relative_path(const std::string& parent, const fs::path& name) {
  return parent.empty() ? name.generic_string() : parent + "/" + name.generic_string();
}

}  // namespace

WalkResult walk_tree(const fs::path& root, const GitignoreRules& rules,
                     const std::function<bool()>& cancelled) {
  WalkResult result;
  // An explicit stack rather than recursion: depth is bounded by memory, not
  // by the thread's stack.
  std::vector<PendingDirectory> pending{{root, ""}};
  while (!pending.empty()) {
    if (cancelled()) {
      result.stopped = true;
      break;
    }
    const PendingDirectory directory = std::move(pending.back());
    pending.pop_back();
    std::error_code ec;
    fs::directory_iterator it(directory.path, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const fs::directory_entry& entry = *it;
      const fs::path name = entry.path().filename();
      if (name == ".git") continue;
      const std::string relative = child_relative_path(directory.relative_path, name);
      std::error_code status_error;
      const fs::file_status status = entry.symlink_status(status_error);
      if (status_error) {
        result.unreadable_directories.push_back({relative, status_error.message()});
        continue;
      }
      if (fs::is_symlink(status)) {
        ++result.symlinks;
      } else if (fs::is_directory(status)) {
        if (rules.is_ignored(relative, true)) {
          ++result.ignored;
        } else {
          pending.push_back({entry.path(), relative});
        }
      } else if (!fs::is_regular_file(status)) {
        ++result.special;
      } else if (rules.is_ignored(relative, false)) {
        ++result.ignored;
      } else {
        std::error_code size_error;
        const auto bytes = entry.file_size(size_error);
        result.files.push_back({entry.path(), relative, size_error ? 0 : bytes});
      }
    }
    if (ec) {
      result.unreadable_directories.push_back(
          {directory.relative_path.empty() ? "." : directory.relative_path, ec.message()});
    }
  }
  std::sort(result.files.begin(), result.files.end(), [](const FoundFile& a, const FoundFile& b) {
    return a.relative_path < b.relative_path;
  });
  return result;
}

}  // namespace nightshift::plugin_common
