#include "cli/host_endpoint.hpp"

#include <boost/url/parse.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "cli/exit_codes.hpp"

namespace nightshift::cli {
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string read_token_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return trim(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
}

}  // namespace

std::filesystem::path default_data_dir() {
  if (const auto xdg = env_or_empty("XDG_DATA_HOME"); !xdg.empty()) {
    return std::filesystem::path(xdg) / "nightshift";
  }
  const auto home = env_or_empty("HOME");
  return std::filesystem::path(home.empty() ? "." : home) / ".local" / "share" / "nightshift";
}

HostEndpoint resolve_endpoint(const HostOptions& options) {
  auto parsed = boost::urls::parse_uri(options.url);
  if (!parsed) {
    throw CliError(ExitCode::usage,
                   "invalid --url '" + options.url + "': expected http://HOST:PORT");
  }
  const auto& url = *parsed;
  if (url.scheme_id() != boost::urls::scheme::http) {
    throw CliError(ExitCode::usage,
                   "unsupported --url '" + options.url + "': only http:// is supported");
  }
  HostEndpoint endpoint;
  endpoint.url = options.url;
  endpoint.host = url.host_address();
  endpoint.port = url.has_port() ? std::string(url.port()) : std::string("80");
  endpoint.host_header = std::string(url.encoded_host_and_port());
  if (endpoint.host.empty()) {
    throw CliError(ExitCode::usage, "invalid --url '" + options.url + "': no host");
  }
  endpoint.base_path = std::string(url.encoded_path());
  while (!endpoint.base_path.empty() && endpoint.base_path.back() == '/') {
    endpoint.base_path.pop_back();
  }
  const auto data_dir =
      options.data_dir.empty() ? default_data_dir() : std::filesystem::path(options.data_dir);
  endpoint.token_file = data_dir / "token";
  endpoint.token = options.token.empty() ? read_token_file(endpoint.token_file) : options.token;
  return endpoint;
}

}  // namespace nightshift::cli
