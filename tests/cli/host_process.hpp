// A real `nightshift serve` for the CLI tests that are not in cli_test.cpp:
// its own data directory and workspace, 127.0.0.1 port 0, the built-in
// agents, stopped with SIGTERM when the object goes.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "test_support.hpp"

namespace nightshift::testing {

class HostProcess {
 public:
  // Starts the host with `dir` for its files and `workspace` as its
  // workspace, and waits (with a deadline) until it listens. Throws when it
  // does not come up, with what it printed.
  HostProcess(const std::filesystem::path& binary, const std::filesystem::path& agents_dir,
              const std::filesystem::path& dir, const std::filesystem::path& workspace)
      : dir_(dir) {
    using namespace std::chrono_literals;
    std::filesystem::create_directories(dir_ / "data");
    std::filesystem::create_directories(workspace);
    std::vector<std::string> argv{binary.string(), "serve",
                                  "--listen",      "127.0.0.1:0",
                                  "--data-dir",    (dir_ / "data").string(),
                                  "--workspace",   workspace.string(),
                                  "--agents-dir",  agents_dir.string()};
    process_ = std::make_unique<ChildProcess>(
        argv,
        environment_with({{"XDG_DATA_HOME", (dir_ / "xdg-data").string()},
                          {"XDG_CONFIG_HOME", (dir_ / "xdg-config").string()},
                          {"NIGHTSHIFT_TOKEN", ""},
                          {"NIGHTSHIFT_URL", ""}}),
        dir_ / "host.out", dir_ / "host.err", dir_);
    const std::regex listening("listening on (http://[^\\s]+)\n");
    std::smatch match;
    std::string text;
    const bool up = wait_until(
        [&] {
          text = read_file(dir_ / "host.out");
          return std::regex_search(text, match, listening) || process_->wait_for_exit(0ms);
        },
        30s, 10ms);
    if (!up || !std::regex_search(text, match, listening)) {
      throw std::runtime_error("the host did not start: " + read_file(dir_ / "host.err"));
    }
    url_ = match[1];
    token_ = read_file(dir_ / "data" / "token");
    while (!token_.empty() && (token_.back() == '\n' || token_.back() == '\r')) token_.pop_back();
    if (token_.empty()) throw std::runtime_error("the host wrote no token");
  }

  ~HostProcess() {
    process_->send_signal(SIGTERM);
    process_->wait_for_exit(std::chrono::seconds(20));  // then the ChildProcess kills it
  }
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;

  const std::string& url() const { return url_; }
  const std::string& token() const { return token_; }
  std::string log() const { return read_file(dir_ / "host.err"); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> process_;
  std::string url_;
  std::string token_;
};

}  // namespace nightshift::testing
