// Where the host is and how to authenticate to it, from --url, --token and
// --data-dir (or NIGHTSHIFT_URL / NIGHTSHIFT_TOKEN, or the local token file).
#pragma once

#include <filesystem>
#include <string>

namespace nightshift::cli {

// What the user gave on the command line (or in the environment).
struct HostOptions {
  std::string url = "http://127.0.0.1:7733";
  std::string token;     // empty: read <data-dir>/token
  std::string data_dir;  // empty: $XDG_DATA_HOME/nightshift or ~/.local/share/nightshift
};

// A parsed, ready-to-use address of the host.
struct HostEndpoint {
  std::string url;                   // as the user wrote it, for messages
  std::string host;                  // to resolve and connect: name or address, no brackets
  std::string port;                  // numeric or service name
  std::string host_header;           // the Host header: host[:port] as in the URL
  std::string base_path;             // path prefix of the URL, without a trailing slash
  std::string token;                 // may be empty when none was found
  std::filesystem::path token_file;  // where the token was looked for, for messages
};

// The data directory the host uses by default on this machine.
std::filesystem::path default_data_dir();

// Parses the URL and finds the token; throws CliError(usage) on a bad URL.
HostEndpoint resolve_endpoint(const HostOptions& options);

}  // namespace nightshift::cli
