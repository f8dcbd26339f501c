#include "cli/resolve.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include "cli/exit_codes.hpp"

namespace nightshift::cli {
namespace json = boost::json;

namespace {

constexpr std::size_t kUuidLength = 36;

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool looks_like_id_part(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isxdigit(c) || c == '-'; });
}

void collect_matches(const json::array& runs, const std::string& prefix,
                     std::vector<std::string>& matches) {
  for (const auto& run : runs) {
    const auto id = string_member(run.as_object(), "instanceId");
    if (lowercase(id).rfind(prefix, 0) == 0 &&
        std::find(matches.begin(), matches.end(), id) == matches.end()) {
      matches.push_back(id);
    }
  }
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

}  // namespace

std::size_t unique_prefix_length(const std::vector<std::string>& ids, std::size_t minimum) {
  auto sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  std::size_t length = minimum;
  // Neighbours in sorted order share the longest prefixes.
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    const auto& left = sorted[i - 1];
    const auto& right = sorted[i];
    std::size_t common = 0;
    while (common < left.size() && common < right.size() && left[common] == right[common]) {
      ++common;
    }
    length = std::max(length, common + 1);
  }
  return length;
}

std::string resolve_run_id(ApiClient& api, const std::string& id_or_prefix) {
  const auto prefix = lowercase(id_or_prefix);
  if (!looks_like_id_part(prefix)) {
    throw CliError(ExitCode::run_not_found, "no run with id '" + id_or_prefix + "'");
  }
  if (prefix.size() == kUuidLength) return prefix;
  RunQuery query;
  query.include_history = true;
  const auto lists = api.runs(query);
  std::vector<std::string> matches;
  collect_matches(lists.active, prefix, matches);
  collect_matches(lists.history, prefix, matches);
  if (matches.empty()) {
    throw CliError(ExitCode::run_not_found,
                   "no run with id '" + id_or_prefix + "'; `nightshift ps --all` lists them");
  }
  if (matches.size() > 1) {
    throw CliError(ExitCode::run_not_found, "run id '" + id_or_prefix + "' is ambiguous: " +
                                                join(matches) + "; type more of it");
  }
  return matches.front();
}

std::string resolve_agent_id(ApiClient& api, const std::string& id_or_name) {
  if (id_or_name.find(':') != std::string::npos) return id_or_name;
  std::vector<std::string> matches;
  for (const auto& agent : api.agents()) {
    if (string_member(agent.as_object(), "name") == id_or_name) {
      matches.push_back(string_member(agent.as_object(), "id"));
    }
  }
  if (matches.empty()) {
    throw CliError(ExitCode::agent_not_found,
                   "no agent named '" + id_or_name + "'; `nightshift agents` lists them");
  }
  if (matches.size() > 1) {
    throw CliError(ExitCode::agent_not_found, "agent name '" + id_or_name + "' is ambiguous: " +
                                                  join(matches) + "; use the full id");
  }
  return matches.front();
}

}  // namespace nightshift::cli
