// What one run of the llm agent works with: its params (agents.md's table)
// and the host environment's settings, checked, with every mistake reported
// as an error that says what was wrong and how to fix it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift::llm {

struct Settings {
  std::string base_url;  // as given or defaulted; parsed by Endpoint
  std::string model;
  std::string api_key_env;  // the variable's name
  std::string api_key;      // its value; empty: no Authorization header. Never logged.
  std::vector<std::string> tools;
  std::uint64_t max_turns = 30;
  std::uint64_t max_tokens = 200000;
  std::optional<double> temperature;
  bool stream = true;
  std::string instructions;

  // From the host's environment (see README): bounds on each request and
  // its retries.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(600)};
  unsigned attempts = 5;  // tries per model call, the first one included
  std::chrono::milliseconds first_retry_delay{1000};
  std::chrono::milliseconds max_retry_delay{std::chrono::seconds(300)};
};

// The built-in default when neither the param nor NIGHTSHIFT_LLM_BASE_URL
// says otherwise (Ollama's OpenAI-compatible endpoint).
inline constexpr std::string_view default_base_url = "http://127.0.0.1:11434/v1";

// The tools a run may enable.
const std::vector<std::string>& known_tools();

// Throws std::invalid_argument with a message for the run's error.
Settings parse_settings(std::string_view params_json);

}  // namespace nightshift::llm
