// Turns a byte stream (a child's stdout or stderr) into log-entry texts: one
// per line, long lines split into pieces of at most a given size, bytes that
// are not valid UTF-8 replaced by U+FFFD so every entry is valid JSON text.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace nightshift::plugin_common {

// `text` with every maximal ill-formed UTF-8 subsequence replaced by one
// U+FFFD (the "maximal subpart" practice of Unicode ch. 3 and WHATWG).
// Written by hand: none of the libraries we use validates UTF-8 on its own.
std::string sanitize_utf8(std::string_view text);

class LineSplitter {
 public:
  using Emit = std::function<void(std::string_view)>;

  // max_line_bytes: the longest piece emitted, in input bytes (at least 4, so
  // that a piece can always hold one whole UTF-8 character).
  explicit LineSplitter(std::size_t max_line_bytes);

  // Consumes more bytes, emitting every line they complete and every full
  // piece of an over-long line. A trailing "\r" of a line is dropped.
  void feed(std::string_view bytes, const Emit& emit);

  // Emits what is left of a last line that had no newline, if anything.
  void finish(const Emit& emit);

 private:
  void emit_full_pieces(const Emit& emit);
  std::size_t piece_end() const;

  std::size_t max_line_bytes_;
  std::string pending_;  // bytes of the current, not yet complete line
};

}  // namespace nightshift::plugin_common
