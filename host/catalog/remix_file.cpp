#include "catalog/remix_file.hpp"

#include <yaml-cpp/yaml.h>

#include <boost/json/value.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "catalog/param_schema.hpp"

namespace nightshift {

namespace json = boost::json;

namespace {

// A remix is a short text; anything bigger is a mistake.
constexpr std::uintmax_t max_remix_bytes = 1024 * 1024;

// Bounds on the front matter, so that a hostile file costs little time and
// memory. yaml-cpp shares the node an alias names, so a file of a few
// hundred bytes whose aliases nest ("billion laughs") stays small as YAML
// and only grows while it is turned into JSON: the value and text bounds
// below count every copy an alias makes.
constexpr std::size_t max_front_matter_bytes = 64 * 1024;
constexpr std::size_t max_front_matter_depth = 64;          // nested mappings and sequences
constexpr std::size_t max_front_matter_values = 100'000;    // after expanding aliases
constexpr std::size_t max_front_matter_text = 1024 * 1024;  // scalar bytes, after expanding

// A problem with the file's content, turned into RemixFile::error.
class RemixError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The length of the valid UTF-8 prefix of `text` (all of it when valid):
// no overlong forms, no surrogates, nothing beyond U+10FFFF. JSON text must
// be UTF-8, and a remix's params and instructions become JSON. Written out
// because none of our libraries offers a public check.
std::size_t valid_utf8_prefix(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const auto lead = static_cast<unsigned char>(text[at]);
    if (lead < 0x80) {
      ++at;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t point = 0;
    std::uint32_t minimum = 0;
    if ((lead & 0xE0) == 0xC0) {
      length = 2, point = lead & 0x1F, minimum = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, point = lead & 0x0F, minimum = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, point = lead & 0x07, minimum = 0x10000;
    } else {
      return at;
    }
    if (text.size() - at < length) return at;
    for (std::size_t i = 1; i < length; ++i) {
      const auto next = static_cast<unsigned char>(text[at + i]);
      if ((next & 0xC0) != 0x80) return at;
      point = (point << 6) | (next & 0x3F);
    }
    if (point < minimum || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) return at;
    at += length;
  }
  return at;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Skips the digits at `at`, returning how many there were.
std::size_t skip_digits(std::string_view text, std::size_t& at) {
  const std::size_t first = at;
  while (at < text.size() && is_digit(text[at])) ++at;
  return at - first;
}

// [-+]?[0-9]+
bool is_core_integer(std::string_view text) {
  std::size_t at = text.starts_with('-') || text.starts_with('+') ? 1 : 0;
  return skip_digits(text, at) > 0 && at == text.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, YAML 1.2's core float
// without .inf and .nan (which stay strings: JSON has no such numbers).
bool is_core_float(std::string_view text) {
  std::size_t at = text.starts_with('-') || text.starts_with('+') ? 1 : 0;
  const std::size_t whole = skip_digits(text, at);
  std::size_t fraction = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    fraction = skip_digits(text, at);
  }
  if (whole == 0 && fraction == 0) return false;
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    ++at;
    if (at < text.size() && (text[at] == '-' || text[at] == '+')) ++at;
    if (skip_digits(text, at) == 0) return false;
  }
  return at == text.size();
}

// Turns yaml-cpp's node graph into JSON within the bounds above, naming the
// path of what it refuses ("params.seconds").
class YamlToJson {
 public:
  json::value convert(const YAML::Node& root) { return value_of(root, ""); }

 private:
  static std::string child_path(const std::string& path, const std::string& key) {
    return path.empty() ? key : member_path(path, key);
  }
  static std::string line_of(const YAML::Node& node) {
    // +2: line 1 of the file is the opening '---'; yaml-cpp counts from 0.
    return std::to_string(node.Mark().line + 2);
  }

  void count(const YAML::Node& node, std::size_t text_bytes) {
    if (++values_ > max_front_matter_values) {
      throw RemixError(
          "the front matter expands to more than " + std::to_string(max_front_matter_values) +
          " values (each use of a YAML alias repeats what it names; line " + line_of(node) + ")");
    }
    text_ += text_bytes;
    if (text_ > max_front_matter_text) {
      throw RemixError(
          "the front matter expands to more than 1 MiB of text (each use of a YAML alias "
          "repeats what it names; line " +
          line_of(node) + ")");
    }
  }

  // Entering a mapping or sequence: bounds the depth, and refuses an alias
  // that names a node containing it (yaml-cpp makes a cycle of it).
  void enter(const YAML::Node& node) {
    for (const YAML::Node& ancestor : open_) {
      if (ancestor.is(node)) {
        throw RemixError(
            "the front matter has an alias that names a mapping or sequence "
            "containing it (line " +
            line_of(node) + ")");
      }
    }
    if (open_.size() >= max_front_matter_depth) {
      throw RemixError("the front matter nests mappings and sequences deeper than " +
                       std::to_string(max_front_matter_depth) + " levels (line " + line_of(node) +
                       ")");
    }
    open_.push_back(node);
  }

  // The file is valid UTF-8; this guards against escapes in quoted scalars
  // making text that is not (yaml-cpp refuses the ones we know of).
  static void check_utf8(const std::string& text, const std::string& path) {
    if (valid_utf8_prefix(text) != text.size()) {
      throw RemixError((path.empty() ? std::string("a value") : path) +
                       " is not valid UTF-8 (a YAML escape made a character JSON cannot carry)");
    }
  }

  json::value value_of(const YAML::Node& node, const std::string& path) {
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        count(node, 0);
        return nullptr;
      case YAML::NodeType::Scalar:
        count(node, node.Scalar().size());
        check_utf8(node.Scalar(), path);
        // "?" marks a plain scalar; quoted ones ("!") and explicit tags stay text.
        if (node.Tag() == "?") return plain_scalar(node.Scalar(), path);
        return json::string(node.Scalar());
      case YAML::NodeType::Sequence:
        return sequence_of(node, path);
      case YAML::NodeType::Map:
        return mapping_of(node, path);
    }
    return nullptr;
  }

  json::value sequence_of(const YAML::Node& node, const std::string& path) {
    count(node, 0);
    enter(node);
    json::array array;
    for (const YAML::Node& item : node) {
      array.push_back(value_of(item, path + "[" + std::to_string(array.size()) + "]"));
    }
    open_.pop_back();
    return array;
  }

  json::value mapping_of(const YAML::Node& node, const std::string& path) {
    count(node, 0);
    enter(node);
    json::object object;
    for (const auto& pair : node) {
      if (!pair.first.IsScalar()) throw RemixError("a mapping key is not a plain value");
      const std::string& key = pair.first.Scalar();
      count(pair.first, key.size());
      check_utf8(key, path.empty() ? "a key" : "a key of " + path);
      object[key] = value_of(pair.second, child_path(path, key));
    }
    open_.pop_back();
    return object;
  }

  // A plain (unquoted) YAML scalar as the YAML 1.2 core schema reads it:
  // null, boolean, integer, float, else a string. yaml-cpp leaves that to us.
  static json::value plain_scalar(const std::string& text, const std::string& path) {
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
      return nullptr;
    }
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    if (is_core_integer(text)) return integer(text, path);
    if (is_core_float(text)) return floating(text, path);
    return json::string(text);
  }

  static json::value integer(const std::string& text, const std::string& path) {
    const char* first = text.data() + (text.front() == '+' ? 1 : 0);
    const char* last = text.data() + text.size();
    std::int64_t number = 0;
    if (std::from_chars(first, last, number).ec == std::errc()) return number;
    std::uint64_t positive = 0;
    if (text.front() != '-' && std::from_chars(first, last, positive).ec == std::errc()) {
      return positive;
    }
    throw RemixError(path + " is an integer too large to carry exactly (at most 64 bits)");
  }

  static json::value floating(const std::string& text, const std::string& path) {
    const char* first = text.data() + (text.front() == '+' ? 1 : 0);
    double number = 0;
    const auto result = std::from_chars(first, text.data() + text.size(), number);
    if (result.ec == std::errc::result_out_of_range) {
      // Out of range either way: beyond a double (refused below) or too
      // close to zero (it reads as the nearest double, as JSON parsers do).
      number = std::strtod(text.c_str(), nullptr);
    }
    if (!std::isfinite(number)) throw RemixError(path + " is not a finite number");
    return number;
  }

  std::vector<YAML::Node> open_;  // the mappings and sequences being converted
  std::size_t values_ = 0;
  std::size_t text_ = 0;
};

struct Sections {
  std::string front_matter;
  std::string body;
};

std::string_view without_line_end(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.remove_suffix(1);
  }
  return line;
}

// Splits "---\n<yaml>\n---\n<body>" into its two parts.
Sections split_front_matter(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 BOM
  const std::size_t first_end = text.find('\n');
  if (without_line_end(text.substr(0, first_end)) != "---") {
    throw RemixError("no front matter: a remix starts with a '---' line");
  }
  std::size_t line_start = first_end == std::string_view::npos ? text.size() : first_end + 1;
  const std::size_t yaml_start = line_start;
  while (line_start < text.size()) {
    const std::size_t line_end = text.find('\n', line_start);
    const std::string_view line = without_line_end(text.substr(line_start, line_end - line_start));
    const std::size_t next = line_end == std::string_view::npos ? text.size() : line_end + 1;
    if (line == "---" || line == "...") {
      return Sections{std::string(text.substr(yaml_start, line_start - yaml_start)),
                      std::string(text.substr(next))};
    }
    line_start = next;
  }
  throw RemixError("the front matter is not closed by a '---' line");
}

std::string trimmed(const std::string& text) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const std::size_t last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string optional_string(const json::object& front, std::string_view key) {
  const json::value* field = front.if_contains(key);
  if (field == nullptr || field->is_null()) return {};
  if (!field->is_string()) throw RemixError("'" + std::string(key) + "' must be a string");
  return std::string(field->get_string());
}

json::object parse_yaml_object(const std::string& yaml) {
  if (yaml.size() > max_front_matter_bytes) {
    throw RemixError("the front matter is larger than 64 KiB");
  }
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    // +2: line 1 of the file is the opening '---'; yaml-cpp counts from 0.
    throw RemixError("the front matter is not valid YAML (line " + std::to_string(e.mark.line + 2) +
                     "): " + e.msg);
  }
  if (!root.IsMap()) throw RemixError("the front matter must be a YAML mapping (key: value)");
  return YamlToJson().convert(root).as_object();
}

void read_limits(const json::object& front, RemixFile& remix) {
  const json::value* limits = front.if_contains("limits");
  if (limits == nullptr || limits->is_null()) return;
  if (!limits->is_object()) throw RemixError("'limits' must be a mapping");
  try {
    remix.limits = parse_limits(limits->get_object(), "the front matter");
  } catch (const std::invalid_argument& e) {
    throw RemixError(e.what());
  }
}

void read_front_matter(const json::object& front, RemixFile& remix) {
  if (const std::string name = optional_string(front, "name"); !name.empty()) remix.name = name;
  remix.description = optional_string(front, "description");
  remix.version = optional_string(front, "version");
  remix.base = optional_string(front, "base");
  if (remix.base.empty()) throw RemixError("the front matter has no 'base' (the agent it remixes)");
  if (const json::value* params = front.if_contains("params"); params && !params->is_null()) {
    if (!params->is_object()) throw RemixError("'params' must be a mapping");
    remix.params = params->get_object();
  }
  read_limits(front, remix);
}

}  // namespace

RemixFile parse_remix(const std::string& text, const std::string& stem) {
  RemixFile remix;
  remix.name = stem;
  try {
    if (const std::size_t valid = valid_utf8_prefix(text); valid != text.size()) {
      throw RemixError("the file is not valid UTF-8 (at byte " + std::to_string(valid) +
                       "); a remix is UTF-8 text");
    }
    const Sections sections = split_front_matter(text);
    remix.instructions = trimmed(sections.body);
    read_front_matter(parse_yaml_object(sections.front_matter), remix);
  } catch (const std::exception& e) {  // RemixError, or yaml-cpp's or Boost.JSON's own
    remix.error = e.what();
  }
  return remix;
}

RemixFile read_remix_file(const std::filesystem::path& file) {
  const std::string stem = file.stem().string();
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(file, error);
  RemixFile remix;
  if (error) {
    remix.error = "cannot read the file: " + error.message();
  } else if (size > max_remix_bytes) {
    remix.error = "the file is larger than 1 MiB";
  } else {
    std::ifstream in(file, std::ios::binary);
    remix = parse_remix(
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), stem);
  }
  if (remix.name.empty()) remix.name = stem;
  remix.location = file;
  return remix;
}

}  // namespace nightshift
