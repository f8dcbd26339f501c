#include "cli/remix_writer.hpp"

#include <boost/json/serialize.hpp>
#include <charconv>
#include <fstream>
#include <regex>

#include "cli/exit_codes.hpp"

namespace nightshift::cli {
namespace json = boost::json;

namespace {

// A key may be written plain in YAML only when it cannot be read as anything
// but a string; otherwise it is quoted (JSON quoting is valid YAML).
std::string yaml_key(const std::string& key) {
  static const std::regex plain_key("[A-Za-z_][A-Za-z0-9_-]*");
  if (std::regex_match(key, plain_key) && key != "true" && key != "false" && key != "null") {
    return key;
  }
  return json::serialize(json::string(key));
}

// JSON text of `value`, with numbers written the way people write them
// (0.2, not Boost.JSON's 2E-1); JSON flow style is also valid YAML.
std::string flow_text(const json::value& value) {
  switch (value.kind()) {
    case json::kind::double_: {
      char buffer[64];
      const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value.get_double());
      return error == std::errc() ? std::string(buffer, end) : json::serialize(value);
    }
    case json::kind::array: {
      std::string text = "[";
      for (const auto& item : value.get_array()) {
        text += (text.size() > 1 ? ", " : "") + flow_text(item);
      }
      return text + "]";
    }
    case json::kind::object: {
      std::string text = "{";
      for (const auto& [key, item] : value.get_object()) {
        text += (text.size() > 1 ? ", " : "") + json::serialize(json::string(key)) + ": " +
                flow_text(item);
      }
      return text + "}";
    }
    default:
      return json::serialize(value);
  }
}

}  // namespace

bool is_valid_agent_name(const std::string& name) {
  static const std::regex pattern("[a-z0-9][a-z0-9._-]{0,63}");
  return std::regex_match(name, pattern);
}

std::string render_remix(const RemixSpec& spec) {
  std::string text = "---\n";
  text += "name: " + json::serialize(json::string(spec.name)) + "\n";
  if (!spec.description.empty()) {
    text += "description: " + json::serialize(json::string(spec.description)) + "\n";
  }
  text += "base: " + json::serialize(json::string(spec.base_agent)) + "\n";
  text += "version: 1.0.0\n";
  if (!spec.params.empty()) {
    text += "params:\n";
    for (const auto& [key, value] : spec.params) {
      text += "  " + yaml_key(std::string(key)) + ": " + flow_text(value) + "\n";
    }
  }
  text += "---\n";
  text += spec.instructions;
  if (!spec.instructions.empty() && spec.instructions.back() != '\n') text += "\n";
  return text;
}

std::filesystem::path write_remix(const std::filesystem::path& workspace, const RemixSpec& spec,
                                  bool overwrite) {
  if (!is_valid_agent_name(spec.name)) {
    throw CliError(ExitCode::usage, "invalid remix name '" + spec.name +
                                        "': use 1 to 64 of a-z, 0-9, '.', '_', '-', starting "
                                        "with a letter or digit");
  }
  const auto directory = workspace / ".nightshift" / "remix";
  const auto path = directory / (spec.name + ".md");
  if (std::filesystem::exists(path) && !overwrite) {
    throw CliError(ExitCode::already_exists,
                   path.string() + " exists already; pass --force to overwrite it");
  }
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    throw CliError(ExitCode::error, "cannot create " + directory.string() + ": " + error.message());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << render_remix(spec);
  out.close();
  if (!out) throw CliError(ExitCode::error, "cannot write " + path.string());
  return path;
}

}  // namespace nightshift::cli
