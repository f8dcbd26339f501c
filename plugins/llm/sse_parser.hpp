// Server-sent events, parsed incrementally: feed() takes the body in pieces
// cut anywhere (inside a line, between "\r" and "\n", inside a UTF-8
// character) and calls back with each event's data once its blank line has
// come. Only `data` fields matter here; comments, `event`, `id` and `retry`
// are skipped (the HTML standard's event-stream rules otherwise).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace nightshift::llm {

class SseParser {
 public:
  using OnEvent = std::function<void(std::string_view data)>;

  // A line longer than this is refused (std::length_error), so a server
  // that never ends a line cannot grow memory without bound.
  explicit SseParser(std::size_t max_line_bytes = 16 * 1024 * 1024)
      : max_line_bytes_(max_line_bytes) {}

  void feed(std::string_view bytes, const OnEvent& on_event);
  // The end of the stream: an event whose blank line never came is
  // dispatched all the same.
  void finish(const OnEvent& on_event);

 private:
  void feed_lines(std::string_view bytes, const OnEvent& on_event);
  void line_complete(const OnEvent& on_event);

  std::size_t max_line_bytes_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;  // the last byte was '\r': a '\n' right after it ends nothing new
  bool at_start_ = true;   // a UTF-8 byte order mark may open the stream
  std::size_t bom_matched_ = 0;
};

}  // namespace nightshift::llm
