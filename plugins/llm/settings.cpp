#include "settings.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace nightshift::llm {
namespace {

namespace json = boost::json;

[[noreturn]] void bad(const std::string& message) {
  throw std::invalid_argument(message);
}

std::string env_or(const char* name, std::string_view fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::string(fallback);
}

std::string string_param(const json::object& params, std::string_view name) {
  const json::value* value = params.if_contains(name);
  if (value == nullptr || value->is_null()) return {};
  if (!value->is_string()) bad("param " + std::string(name) + " must be a string");
  return std::string(value->get_string());
}

std::optional<double> number_param(const json::object& params, std::string_view name) {
  const json::value* value = params.if_contains(name);
  if (value == nullptr || value->is_null()) return std::nullopt;
  if (!value->is_number()) bad("param " + std::string(name) + " must be a number");
  return value->to_number<double>();
}

std::uint64_t positive_integer_param(const json::object& params, std::string_view name,
                                     std::uint64_t fallback) {
  const std::optional<double> value = number_param(params, name);
  if (!value) return fallback;
  if (!(*value >= 1) || *value > 1e15 || std::floor(*value) != *value) {
    bad("param " + std::string(name) + " must be a whole number, 1 or more");
  }
  return static_cast<std::uint64_t>(*value);
}

bool is_variable_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  if (std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A number of seconds (decimals allowed) from the environment.
std::optional<std::chrono::milliseconds> env_seconds(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(seconds >= 0) || seconds > 1e6) {
    bad(std::string("the environment variable ") + name + " must be a number of seconds, not '" +
        text + "'");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

}  // namespace

const std::vector<std::string>& known_tools() {
  static const std::vector<std::string> tools{"list_files", "read_file", "search",
                                              "write_file", "edit_file", "run_command"};
  return tools;
}

Settings parse_settings(std::string_view params_json) {
  json::error_code parse_error;
  const json::value parsed = json::parse(params_json, parse_error);
  if (parse_error || !parsed.is_object()) bad("the params are not a JSON object");
  const json::object& params = parsed.get_object();

  Settings out;
  out.base_url = string_param(params, "baseUrl");
  if (out.base_url.empty()) out.base_url = env_or("NIGHTSHIFT_LLM_BASE_URL", default_base_url);
  out.model = string_param(params, "model");
  if (out.model.empty()) out.model = env_or("NIGHTSHIFT_LLM_MODEL", "");
  if (out.model.empty()) {
    bad("no model named: set the `model` param (e.g. --param model=qwen2.5-coder) or "
        "NIGHTSHIFT_LLM_MODEL in the host's environment");
  }

  out.api_key_env = string_param(params, "apiKeyEnv");
  if (out.api_key_env.empty()) out.api_key_env = "NIGHTSHIFT_LLM_API_KEY";
  // Never echoed: a key pasted here by mistake must not reach the error.
  if (!is_variable_name(out.api_key_env)) {
    bad("param apiKeyEnv must be the name of an environment variable (letters, digits and '_'), "
        "never the key itself: put the key in the host's environment and name the variable here");
  }
  if (const char* key = std::getenv(out.api_key_env.c_str())) out.api_key = key;

  if (const json::value* tools = params.if_contains("tools"); tools && !tools->is_null()) {
    if (!tools->is_array()) bad("param tools must be an array of tool names");
    for (const json::value& tool : tools->get_array()) {
      const auto& known = known_tools();
      if (!tool.is_string() ||
          std::find(known.begin(), known.end(), tool.get_string()) == known.end()) {
        bad("param tools: " + json::serialize(tool) +
            " is not a tool; the tools are list_files, read_file, search, write_file, "
            "edit_file and run_command");
      }
      const std::string name(tool.get_string());
      if (std::find(out.tools.begin(), out.tools.end(), name) == out.tools.end()) {
        out.tools.push_back(name);
      }
    }
  } else {
    out.tools = {"list_files", "read_file", "search"};
  }

  out.max_turns = positive_integer_param(params, "maxTurns", 30);
  out.max_tokens = positive_integer_param(params, "maxTokens", 200000);
  out.temperature = number_param(params, "temperature");
  if (out.temperature && !(*out.temperature >= 0 && *out.temperature <= 2)) {
    bad("param temperature must be between 0 and 2");
  }
  if (const json::value* stream = params.if_contains("stream"); stream && !stream->is_null()) {
    if (!stream->is_bool()) bad("param stream must be true or false");
    out.stream = stream->get_bool();
  }
  out.instructions = string_param(params, "instructions");

  if (auto timeout = env_seconds("NIGHTSHIFT_LLM_REQUEST_TIMEOUT")) {
    if (timeout->count() == 0) bad("NIGHTSHIFT_LLM_REQUEST_TIMEOUT must be more than 0 seconds");
    out.request_timeout = *timeout;
  }
  if (const char* attempts = std::getenv("NIGHTSHIFT_LLM_RETRY_ATTEMPTS");
      attempts != nullptr && *attempts != '\0') {
    char* end = nullptr;
    const long value = std::strtol(attempts, &end, 10);
    if (end == attempts || *end != '\0' || value < 1 || value > 100) {
      bad(std::string("NIGHTSHIFT_LLM_RETRY_ATTEMPTS must be a whole number from 1 to 100, not '") +
          attempts + "'");
    }
    out.attempts = static_cast<unsigned>(value);
  }
  if (auto delay = env_seconds("NIGHTSHIFT_LLM_RETRY_DELAY")) out.first_retry_delay = *delay;
  return out;
}

}  // namespace nightshift::llm
