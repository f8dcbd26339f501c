// Several hosts in one test, sharing one PostgreSQL database of a private
// server (tests/support/postgres_server.hpp): each a Host with its own data
// directory and an API server on 127.0.0.1 (port 0).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "api_test_host.hpp"
#include "postgres_server.hpp"

namespace nightshift::hosts_test {

using namespace api_test;

struct SharedHostSettings {
  std::string name;
  std::size_t max_concurrent = 32;
  std::size_t max_queued = 10000;
  std::chrono::milliseconds lease{30000};
  // Remixes in the host's workspace: name and front matter.
  std::vector<std::pair<std::string, std::string>> remixes{};
  std::size_t max_unread_messages = 100;
  AutomationOptions automation{};
};

class SharedHost {
 public:
  SharedHost(const std::string& store_uri, const SharedHostSettings& settings)
      : host_(options(store_uri, settings)), server_(server_options(), host_) {
    server_.start();
  }
  ~SharedHost() {
    server_.stop_accepting();
    host_.shutdown(std::chrono::milliseconds(2000));
    server_.stop();
  }

  std::uint16_t port() const { return server_.local_endpoint().port(); }
  RunManager& runs() { return host_.runs(); }
  Host& host() { return host_; }
  const std::string& name() const { return host_.options().host_name; }

 private:
  HostOptions options(const std::string& store_uri, const SharedHostSettings& settings) {
    HostOptions options;
    options.data_dir = dir_ / "data";
    options.workspace = dir_ / "workspace";
    std::filesystem::create_directories(options.workspace / ".nightshift" / "remix");
    for (const auto& [name, front_matter] : settings.remixes) {
      std::ofstream(options.workspace / ".nightshift" / "remix" / (name + ".md"))
          << "---\n"
          << front_matter << "\n---\n";
    }
    options.installed_agent_dirs = {NIGHTSHIFT_TEST_AGENTS_DIR, NIGHTSHIFT_RUNS_TEST_AGENTS_DIR};
    options.user_remix_dir = dir_ / "user-remix";
    options.store = store_uri;
    options.host_name = settings.name;
    options.host_version = "test";
    options.host_lease = settings.lease;
    options.heartbeat_interval = std::max(std::chrono::milliseconds(100), settings.lease / 6);
    options.runs.max_concurrent = settings.max_concurrent;
    options.runs.max_queued = settings.max_queued;
    options.runs.max_unread_messages = settings.max_unread_messages;
    options.runs.stop_grace = std::chrono::milliseconds(2000);
    options.automation = settings.automation;
    return options;
  }
  static api::ServerOptions server_options() {
    api::ServerOptions options;
    options.listen_host = "127.0.0.1";
    options.port = 0;
    options.token = kToken;
    return options;
  }

  testing::TempDir dir_;
  Host host_;
  api::Server server_;
};

// A private PostgreSQL server with a fresh database per test; skips the
// test when PostgreSQL is not installed.
class SharedHostsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto missing = testing::PostgresServer::missing_binaries()) GTEST_SKIP() << *missing;
    postgres_ = std::make_unique<testing::PostgresServer>();
    database_ = postgres_->create_database();
  }
  void TearDown() override {
    hosts_.clear();  // before the server they use
    postgres_.reset();
  }

  std::string store_uri() const { return postgres_->uri(database_); }

  SharedHost& add_host(SharedHostSettings settings) {
    hosts_.push_back(std::make_unique<SharedHost>(store_uri(), settings));
    return *hosts_.back();
  }

  std::unique_ptr<testing::PostgresServer> postgres_;
  std::string database_;
  std::vector<std::unique_ptr<SharedHost>> hosts_;
};

}  // namespace nightshift::hosts_test
