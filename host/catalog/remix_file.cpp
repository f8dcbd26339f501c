#include "catalog/remix_file.hpp"

#include <yaml-cpp/yaml.h>

#include <boost/json/value.hpp>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <regex>
#include <stdexcept>
#include <string_view>

namespace nightshift {

namespace json = boost::json;

namespace {

// A remix is a short text; anything bigger is a mistake.
constexpr std::uintmax_t max_remix_bytes = 1024 * 1024;

// A problem with the file's content, turned into RemixFile::error.
class RemixError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A plain (unquoted) YAML scalar as the YAML 1.2 core schema reads it: null,
// boolean, integer, float, else a string. yaml-cpp leaves that to us.
json::value plain_scalar_to_json(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  static const std::regex integer("[-+]?[0-9]+");
  static const std::regex floating("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(text, integer)) {
    const char* first = text.data() + (text.front() == '+' ? 1 : 0);
    std::int64_t number = 0;
    const auto [end, error] = std::from_chars(first, text.data() + text.size(), number);
    if (error == std::errc() && end == text.data() + text.size()) return number;
  }
  if (std::regex_match(text, floating)) return std::stod(text);
  return json::string(text);
}

json::value yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      // "?" marks a plain scalar; quoted ones ("!") and explicit tags stay text.
      if (node.Tag() == "?") return plain_scalar_to_json(node.Scalar());
      return json::string(node.Scalar());
    case YAML::NodeType::Sequence: {
      json::array array;
      for (const YAML::Node& item : node) array.push_back(yaml_to_json(item));
      return array;
    }
    case YAML::NodeType::Map: {
      json::object object;
      for (const auto& pair : node) {
        if (!pair.first.IsScalar()) throw RemixError("a mapping key is not a plain value");
        object[pair.first.Scalar()] = yaml_to_json(pair.second);
      }
      return object;
    }
  }
  return nullptr;
}

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
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    // +2: line 1 of the file is the opening '---'; yaml-cpp counts from 0.
    throw RemixError("the front matter is not valid YAML (line " + std::to_string(e.mark.line + 2) +
                     "): " + e.msg);
  }
  if (!root.IsMap()) throw RemixError("the front matter must be a YAML mapping (key: value)");
  return yaml_to_json(root).as_object();
}

void read_limits(const json::object& front, RemixFile& remix) {
  const json::value* limits = front.if_contains("limits");
  if (limits == nullptr || limits->is_null()) return;
  if (!limits->is_object()) throw RemixError("'limits' must be a mapping");
  const json::value* timeout = limits->get_object().if_contains("timeoutSeconds");
  if (timeout == nullptr || timeout->is_null()) return;
  if (!timeout->is_number() || !(timeout->to_number<double>() > 0)) {
    throw RemixError("'limits.timeoutSeconds' must be a number of seconds above 0");
  }
  remix.timeout_seconds = timeout->to_number<double>();
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
    const Sections sections = split_front_matter(text);
    remix.instructions = trimmed(sections.body);
    read_front_matter(parse_yaml_object(sections.front_matter), remix);
  } catch (const std::exception& e) {  // RemixError, or a number too big for a double
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
