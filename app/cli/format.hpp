// Human output: colours (only on a terminal, never with NO_COLOR), times and
// durations people read easily, and aligned tables.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift::cli {

enum class Style { none, bold, dim, red, green, yellow, blue, cyan };

// Whether to colour what goes to `fd`: a terminal, and NO_COLOR unset.
bool colour_enabled(int fd);
std::string paint(std::string_view text, Style style, bool colour);
Style status_style(std::string_view status);

using TimePoint = std::chrono::system_clock::time_point;

// "450ms", "3.2s", "3m 12s", "2h 05m", "3d 4h".
std::string format_duration(std::int64_t milliseconds);
// Parses the API's RFC 3339 UTC times ("2026-11-24T05:46:31.482Z").
std::optional<TimePoint> parse_timestamp(std::string_view text);
// "just now", "42 s ago", "2 min ago", "3 h ago"; older: local date and time.
std::string format_relative(TimePoint when, TimePoint now);
// Local time, "2026-11-24 06:46:31".
std::string format_local(TimePoint when);
// Local time with its zone, "2026-11-24 06:46:31 CET": for times set by a
// schedule in a zone of its own, so that they are not read in that one.
std::string format_local_zoned(TimePoint when);
// Local time of day with milliseconds, "06:46:31.482", for log lines.
std::string format_clock(TimePoint when);

// Cuts `text` to `max_chars` characters (UTF-8 aware), ending in "…", and
// folds line breaks into spaces so a table row stays one line.
std::string truncate_text(std::string_view text, std::size_t max_chars);
// Characters, not bytes, of UTF-8 text.
std::size_t display_width(std::string_view text);

// A table of left-aligned columns separated by two spaces.
class Table {
 public:
  struct Cell {
    std::string text;
    Style style = Style::none;
  };
  explicit Table(std::vector<std::string> headers);
  void add_row(std::vector<Cell> cells);
  void print(std::ostream& out, bool colour) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace nightshift::cli
