#include "text_counter.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <system_error>
#include <utility>

namespace nightshift::repo_scan {
namespace {

constexpr std::size_t block_bytes = 64 * 1024;
// How much of the start of a file is looked at for a NUL byte (as git does).
constexpr std::size_t binary_probe_bytes = 8000;
// A "line" longer than this (minified code, data) is counted in pieces, so
// memory stays bounded; a marker split across two pieces is missed.
constexpr std::size_t max_carry_bytes = 1024 * 1024;

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

class FileHandle {
 public:
  explicit FileHandle(const std::filesystem::path& file)
      // O_NONBLOCK: should a FIFO have replaced the file since the walk, open
      // must not wait for a writer.
      : fd_(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open");
  }
  ~FileHandle() { ::close(fd_); }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;

  // Reads up to buffer.size() bytes; 0 at the end.
  std::size_t read(std::string& buffer) const {
    while (true) {
      const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "read");
    }
  }
  std::uint64_t size() const {
    struct stat info {};
    if (::fstat(fd_, &info) != 0) throw std::system_error(errno, std::generic_category(), "fstat");
    return static_cast<std::uint64_t>(info.st_size);
  }

 private:
  int fd_;
};

}  // namespace

TextCounter::TextCounter(const std::vector<std::string>& markers)
    : markers_(markers), counts_(markers.size(), 0) {}

void TextCounter::feed(std::string_view block) {
  if (block.empty()) return;
  saw_bytes_ = true;
  ended_with_newline_ = block.back() == '\n';
  std::size_t start = 0;
  while (true) {
    const std::size_t newline = block.find('\n', start);
    if (newline == std::string_view::npos) break;
    ++lines_;
    if (carry_.empty()) {
      count_markers(block.substr(start, newline - start));
    } else {
      carry_.append(block.substr(start, newline - start));
      count_markers(carry_);
      carry_.clear();
    }
    start = newline + 1;
  }
  carry_.append(block.substr(start));
  if (carry_.size() > max_carry_bytes) {
    count_markers(carry_);
    carry_.clear();
  }
}

void TextCounter::finish() {
  if (saw_bytes_ && !ended_with_newline_) ++lines_;
  count_markers(carry_);
  carry_.clear();
}

void TextCounter::count_markers(std::string_view line) {
  for (std::size_t i = 0; i < markers_.size(); ++i) {
    const std::string& marker = markers_[i];
    for (std::size_t at = line.find(marker); at != std::string_view::npos;
         at = line.find(marker, at + marker.size())) {
      const bool starts_word = at == 0 || !is_word_char(line[at - 1]);
      const std::size_t end = at + marker.size();
      const bool ends_word = end == line.size() || !is_word_char(line[end]);
      if (starts_word && ends_word) ++counts_[i];
    }
  }
}

std::optional<FileCounts> count_file(const std::filesystem::path& file,
                                     const std::vector<std::string>& markers,
                                     const std::function<bool(std::uint64_t)>& keep_going) {
  FileHandle handle(file);
  FileCounts counts;
  counts.markers.assign(markers.size(), 0);
  TextCounter text(markers);
  std::string buffer(block_bytes, '\0');
  bool first_block = true;
  while (true) {
    const std::size_t n = handle.read(buffer);
    if (n == 0) break;
    const std::string_view block(buffer.data(), n);
    if (first_block && block.substr(0, binary_probe_bytes).find('\0') != std::string_view::npos) {
      // A binary file is measured, not read: its size is what counts.
      counts.binary = true;
      counts.bytes = std::max<std::uint64_t>(handle.size(), n);
      if (!keep_going(counts.bytes)) return std::nullopt;
      return counts;
    }
    first_block = false;
    counts.bytes += n;
    text.feed(block);
    if (!keep_going(n)) return std::nullopt;
  }
  text.finish();
  counts.lines = text.lines();
  counts.markers = text.marker_counts();
  return counts;
}

}  // namespace nightshift::repo_scan
