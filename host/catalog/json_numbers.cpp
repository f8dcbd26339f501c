#include "catalog/json_numbers.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "catalog/param_schema.hpp"

namespace nightshift {

namespace json = boost::json;

namespace {

// A basic_parser handler that keeps nothing but the path to the current
// value and the text of the current number, and stops at the first number
// it refuses.
class NumberChecker {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::optional<std::string> problem;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    open_.push_back(Level{true, {}, 0});
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) { return close(); }
  bool on_array_begin(json::error_code&) {
    open_.push_back(Level{false, {}, 0});
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) { return close(); }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    open_.back().key.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    return on_key_part(part, 0, ignored_);
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return value_done(); }
  bool on_number_part(json::string_view part, json::error_code&) {
    number_.append(part.data(), part.size());
    return true;
  }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return number_done(); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return number_done(); }
  bool on_double(double number, json::string_view last, json::error_code& error) {
    number_.append(last.data(), last.size());
    if (number_.find_first_of(".eE") == std::string::npos) {
      problem = path() + " is an integer too large to carry exactly (at most 64 bits)";
    } else if (!std::isfinite(number)) {
      problem = path() + " is not a finite number";
    }
    if (problem) {
      error = json::error::exception;  // stops the parser; `problem` says why
      return false;
    }
    return number_done();
  }
  bool on_bool(bool, json::error_code&) { return value_done(); }
  bool on_null(json::error_code&) { return value_done(); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Level {
    bool object;
    std::string key;    // the member being read, in an object
    std::size_t index;  // the element being read, in an array
  };

  // "params.list[2]"; "the document" for a number that is all of it.
  std::string path() const {
    std::string text;
    for (const Level& level : open_) {
      if (!level.object) {
        text += '[';
        text += std::to_string(level.index);
        text += ']';
      } else if (text.empty()) {
        text = member_path("", level.key);
        if (text.starts_with('.')) text.erase(0, 1);
      } else {
        text = member_path(text, level.key);
      }
    }
    return text.empty() ? "the document" : text;
  }
  bool number_done() {
    number_.clear();
    return value_done();
  }
  bool value_done() {
    if (!open_.empty()) {
      open_.back().key.clear();
      ++open_.back().index;
    }
    return true;
  }
  bool close() {
    open_.pop_back();
    return value_done();
  }

  std::vector<Level> open_;  // the objects and arrays around the current value
  std::string number_;       // the text of the current number so far
  json::error_code ignored_;
};

}  // namespace

std::optional<std::string> find_inexact_number(std::string_view text,
                                               const json::parse_options& options) {
  json::basic_parser<NumberChecker> parser(options);
  json::error_code error;
  parser.write_some(false, text.data(), text.size(), error);
  return std::move(parser.handler().problem);
}

}  // namespace nightshift
