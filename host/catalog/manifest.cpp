#include "catalog/manifest.hpp"

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "catalog/param_schema.hpp"

namespace nightshift {

namespace json = boost::json;

namespace {

[[noreturn]] void too_big() {
  throw std::runtime_error("agent.json is larger than 1 MiB; a manifest is a few lines");
}

std::string read_text(const std::filesystem::path& file) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(file, error);
  if (error) throw std::runtime_error("cannot read agent.json: " + error.message());
  if (size > max_manifest_bytes) too_big();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open agent.json");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string string_field(const json::object& manifest, std::string_view key, bool required) {
  const json::value* field = manifest.if_contains(key);
  if (field == nullptr) {
    if (required) throw std::runtime_error("agent.json has no \"" + std::string(key) + "\"");
    return {};
  }
  if (!field->is_string()) {
    throw std::runtime_error("agent.json: \"" + std::string(key) + "\" must be a string");
  }
  return std::string(field->get_string());
}

// The library must sit in the agent's own folder: a manifest cannot point
// the host at a file elsewhere.
void check_library_name(const std::string& library) {
  const std::filesystem::path path(library);
  if (library.empty() || path.has_parent_path() || library == "." || library == "..") {
    throw std::runtime_error("agent.json: \"library\" must be a file name in the agent's folder");
  }
}

}  // namespace

bool is_valid_agent_name(std::string_view name) {
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.empty() || name.size() > 64 || !lower_or_digit(name.front())) return false;
  for (char c : name) {
    if (!lower_or_digit(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

Manifest read_manifest(const std::filesystem::path& file) {
  return parse_manifest(read_text(file));
}

Manifest parse_manifest(std::string_view text) {
  if (text.size() > max_manifest_bytes) too_big();
  json::parse_options options;
  options.max_depth = max_manifest_depth;
  boost::system::error_code parse_error;
  json::value parsed = json::parse(text, parse_error, {}, options);
  if (parse_error == json::error::too_deep) {
    throw std::runtime_error("agent.json nests objects and arrays deeper than " +
                             std::to_string(max_manifest_depth) + " levels");
  }
  if (parse_error) {
    throw std::runtime_error("agent.json is not valid JSON: " + parse_error.message());
  }
  if (!parsed.is_object()) throw std::runtime_error("agent.json must hold a JSON object");
  const json::object& object = parsed.get_object();

  Manifest manifest;
  manifest.name = string_field(object, "name", true);
  manifest.version = string_field(object, "version", false);
  manifest.description = string_field(object, "description", false);
  manifest.library = string_field(object, "library", true);
  check_library_name(manifest.library);
  if (const json::value* messages = object.if_contains("messages")) {
    if (!messages->is_bool())
      throw std::runtime_error("agent.json: \"messages\" must be true or false");
    manifest.messages = messages->get_bool();
  }
  if (const json::value* isolation = object.if_contains("isolation")) {
    const auto parsed =
        isolation->is_string() ? parse_isolation(isolation->get_string()) : std::nullopt;
    if (!parsed) {
      throw std::runtime_error("agent.json: \"isolation\" must be \"process\" or \"thread\"");
    }
    manifest.isolation = *parsed;
  }
  if (const json::value* limits = object.if_contains("limits"); limits && !limits->is_null()) {
    if (!limits->is_object()) throw std::runtime_error("agent.json: \"limits\" must be an object");
    try {
      manifest.limits = parse_limits(limits->get_object(), "agent.json");
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
  }
  if (const json::value* params = object.if_contains("params")) {
    if (!params->is_object()) throw std::runtime_error("agent.json: \"params\" must be an object");
    manifest.params = params->get_object();
  }
  if (auto why = check_schema(manifest.params)) throw std::runtime_error("agent.json: " + *why);
  return manifest;
}

}  // namespace nightshift
