#include "sse_parser.hpp"

#include <stdexcept>

namespace nightshift::llm {

namespace {
constexpr std::string_view byte_order_mark = "\xEF\xBB\xBF";
}  // namespace

void SseParser::feed(std::string_view bytes, const OnEvent& on_event) {
  // A UTF-8 byte order mark may open the stream, and may itself arrive in
  // pieces: match it byte by byte before anything else.
  while (at_start_ && !bytes.empty()) {
    if (bytes.front() == byte_order_mark[bom_matched_]) {
      bytes.remove_prefix(1);
      if (++bom_matched_ == byte_order_mark.size()) at_start_ = false;
    } else {
      at_start_ = false;  // no mark: the bytes matched so far are input
      feed_lines(byte_order_mark.substr(0, bom_matched_), on_event);
    }
  }
  feed_lines(bytes, on_event);
}

void SseParser::feed_lines(std::string_view bytes, const OnEvent& on_event) {
  for (std::size_t at = 0; at < bytes.size();) {
    if (after_cr_ && bytes[at] == '\n') {
      after_cr_ = false;
      ++at;
      continue;
    }
    after_cr_ = false;
    const std::size_t end = bytes.find_first_of("\r\n", at);
    const std::size_t stop = end == std::string_view::npos ? bytes.size() : end;
    if (line_.size() + (stop - at) > max_line_bytes_) {
      throw std::length_error("the server sent an event-stream line longer than " +
                              std::to_string(max_line_bytes_) + " bytes");
    }
    line_.append(bytes.substr(at, stop - at));
    if (end == std::string_view::npos) return;
    after_cr_ = bytes[end] == '\r';
    at = end + 1;
    line_complete(on_event);
  }
}

void SseParser::line_complete(const OnEvent& on_event) {
  if (line_.empty()) {
    if (has_data_) {
      std::string data;
      data.swap(data_);
      has_data_ = false;
      on_event(data);
    }
    return;
  }
  const std::string_view line = line_;
  const std::size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  if (colon != 0 && field == "data") {  // a line starting with ':' is a comment
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  }
  line_.clear();
}

void SseParser::finish(const OnEvent& on_event) {
  if (at_start_) {
    at_start_ = false;  // fewer bytes than a byte order mark came, all like one
    feed_lines(byte_order_mark.substr(0, bom_matched_), on_event);
  }
  if (!line_.empty()) line_complete(on_event);
  if (has_data_) {
    std::string data;
    data.swap(data_);
    has_data_ = false;
    on_event(data);
  }
}

}  // namespace nightshift::llm
