// Reads one file and counts its bytes, lines and marker words (TODO, ...).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift::repo_scan {

struct FileCounts {
  std::uint64_t bytes = 0;
  std::uint64_t lines = 0;  // 0 for a binary file
  bool binary = false;      // a NUL byte in the first block: bytes only, no lines or markers
  std::vector<std::uint64_t> markers;  // per marker word, in the order they were given
};

// Counts lines and whole-word marker occurrences in text fed block by block.
// A marker counts where it is neither preceded nor followed by a letter,
// digit or '_' ("TODO:" and "TODO(x)" count, "TODOS" does not).
class TextCounter {
 public:
  explicit TextCounter(const std::vector<std::string>& markers);
  void feed(std::string_view block);
  // Counts a last line that has no newline. Call once, after the last feed.
  void finish();
  std::uint64_t lines() const noexcept { return lines_; }
  const std::vector<std::uint64_t>& marker_counts() const noexcept { return counts_; }

 private:
  void count_markers(std::string_view line);

  const std::vector<std::string>& markers_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t lines_ = 0;
  std::string carry_;  // the start of a line that the next block continues
  bool saw_bytes_ = false;
  bool ended_with_newline_ = false;
};

// Reads `file` (never through a symlink) and counts it. `keep_going` is
// called with the number of bytes just read, after every block; when it
// returns false the count is abandoned and nullopt returned. Throws
// std::system_error when the file cannot be opened or read.
std::optional<FileCounts> count_file(const std::filesystem::path& file,
                                     const std::vector<std::string>& markers,
                                     const std::function<bool(std::uint64_t)>& keep_going);

}  // namespace nightshift::repo_scan
