#include "cli/params.hpp"

#include <boost/json/parse.hpp>

#include "cli/exit_codes.hpp"

namespace nightshift::cli {
namespace json = boost::json;

namespace {

json::value parse_value(const std::string& text) {
  boost::system::error_code error;
  auto value = json::parse(text, error);
  if (!error) return value;
  return json::string(text);
}

std::vector<std::string> split_key(const std::string& key, const std::string& argument) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (true) {
    const auto dot = key.find('.', begin);
    parts.push_back(key.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (parts.back().empty()) {
      throw CliError(ExitCode::usage, "invalid --param '" + argument + "': empty key part");
    }
    if (dot == std::string::npos) return parts;
    begin = dot + 1;
  }
}

void set_path(json::object& root, const std::vector<std::string>& path, json::value value,
              const std::string& argument) {
  json::object* target = &root;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    auto& member = (*target)[path[i]];
    if (member.is_null()) member = json::object();
    if (!member.is_object()) {
      throw CliError(ExitCode::usage, "invalid --param '" + argument + "': '" + path[i] +
                                          "' is already set to a value that is not an object");
    }
    target = &member.as_object();
  }
  (*target)[path.back()] = std::move(value);
}

}  // namespace

json::object parse_params(const std::vector<std::string>& arguments) {
  json::object params;
  for (const auto& argument : arguments) {
    const auto equals = argument.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw CliError(ExitCode::usage,
                     "invalid --param '" + argument + "': expected KEY=VALUE, e.g. seconds=3");
    }
    const auto key = argument.substr(0, equals);
    set_path(params, split_key(key, argument), parse_value(argument.substr(equals + 1)), argument);
  }
  return params;
}

}  // namespace nightshift::cli
