#include "cli/format.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace nightshift::cli {
namespace {

std::string_view ansi_code(Style style) {
  switch (style) {
    case Style::bold:
      return "\033[1m";
    case Style::dim:
      return "\033[2m";
    case Style::red:
      return "\033[31m";
    case Style::green:
      return "\033[32m";
    case Style::yellow:
      return "\033[33m";
    case Style::blue:
      return "\033[34m";
    case Style::cyan:
      return "\033[36m";
    case Style::none:
      break;
  }
  return "";
}

bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

std::string two_digits(std::int64_t value) {
  std::string text = std::to_string(value);
  if (value >= 0 && value < 10) text.insert(text.begin(), '0');
  return text;
}

std::tm local_tm(TimePoint when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm parts{};
  localtime_r(&seconds, &parts);
  return parts;
}

}  // namespace

bool colour_enabled(int fd) {
  return ::isatty(fd) == 1 && std::getenv("NO_COLOR") == nullptr;
}

std::string paint(std::string_view text, Style style, bool colour) {
  if (!colour || style == Style::none) return std::string(text);
  return std::string(ansi_code(style)) + std::string(text) + "\033[0m";
}

Style status_style(std::string_view status) {
  if (status == "completed") return Style::green;
  if (status == "failed") return Style::red;
  if (status == "cancelled") return Style::yellow;
  if (status == "running") return Style::cyan;
  if (status == "queued" || status == "stopping") return Style::blue;
  return Style::none;
}

std::string format_duration(std::int64_t milliseconds) {
  if (milliseconds < 0) milliseconds = 0;
  if (milliseconds < 1000) return std::to_string(milliseconds) + "ms";
  if (milliseconds < 10'000) {
    const auto tenths = milliseconds / 100;
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "s";
  }
  const auto seconds = milliseconds / 1000;
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m " + two_digits(seconds % 60) + "s";
  if (seconds < 86400) {
    return std::to_string(seconds / 3600) + "h " + two_digits(seconds / 60 % 60) + "m";
  }
  return std::to_string(seconds / 86400) + "d " + std::to_string(seconds / 3600 % 24) + "h";
}

std::optional<TimePoint> parse_timestamp(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6) {
    return std::nullopt;
  }
  std::int64_t millis = 0;
  std::size_t position = static_cast<std::size_t>(consumed);
  if (position < copy.size() && copy[position] == '.') {
    int digits = 0;
    for (++position;
         position < copy.size() && std::isdigit(static_cast<unsigned char>(copy[position]));
         ++position, ++digits) {
      if (digits < 3) millis = millis * 10 + (copy[position] - '0');
    }
    for (; digits < 3; ++digits) millis *= 10;
  }
  std::tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_sec = second;
  const std::time_t seconds = ::timegm(&parts);
  return std::chrono::system_clock::from_time_t(seconds) + std::chrono::milliseconds(millis);
}

std::string format_relative(TimePoint when, TimePoint now) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - when).count();
  if (seconds < 5) return "just now";
  if (seconds < 60) return std::to_string(seconds) + " s ago";
  if (seconds < 3600) return std::to_string(seconds / 60) + " min ago";
  if (seconds < 86400) return std::to_string(seconds / 3600) + " h ago";
  return format_local(when).substr(0, 16);
}

std::string format_local(TimePoint when) {
  const auto parts = local_tm(when);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &parts);
  return text;
}

std::string format_local_zoned(TimePoint when) {
  const auto parts = local_tm(when);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S %Z", &parts);
  return text;
}

std::string format_clock(TimePoint when) {
  const auto parts = local_tm(when);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &parts);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
  char with_millis[24];
  std::snprintf(with_millis, sizeof with_millis, "%s.%03d", text, static_cast<int>(millis));
  return with_millis;
}

std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return !is_continuation_byte(c); }));
}

std::string truncate_text(std::string_view text, std::size_t max_chars) {
  std::string folded;
  folded.reserve(text.size());
  for (const char c : text) folded += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (display_width(folded) <= max_chars || max_chars == 0) return folded;
  std::size_t chars = 0;
  std::size_t cut = 0;
  for (; cut < folded.size(); ++cut) {
    if (!is_continuation_byte(folded[cut]) && chars++ == max_chars - 1) break;
  }
  return folded.substr(0, cut) + "…";
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::add_row(std::vector<Cell> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out, bool colour) const {
  std::vector<std::size_t> widths;
  for (const auto& header : headers_) widths.push_back(display_width(header));
  for (const auto& row : rows_) {
    for (std::size_t column = 0; column < row.size(); ++column) {
      widths[column] = std::max(widths[column], display_width(row[column].text));
    }
  }
  // Pads after painting so the escape codes do not count towards the width;
  // no line ends in blanks.
  auto print_row = [&](const std::vector<Cell>& cells) {
    std::string line;
    for (std::size_t column = 0; column < cells.size(); ++column) {
      line += paint(cells[column].text, cells[column].style, colour);
      if (column + 1 < cells.size()) {
        line += std::string(widths[column] - display_width(cells[column].text) + 2, ' ');
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  };
  std::vector<Cell> header_cells;
  for (const auto& header : headers_) header_cells.push_back({header, Style::bold});
  print_row(header_cells);
  for (const auto& row : rows_) print_row(row);
}

}  // namespace nightshift::cli
