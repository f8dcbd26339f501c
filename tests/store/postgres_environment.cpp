#include "postgres_environment.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace nightshift::testing {

namespace {

std::unique_ptr<PostgresServer>& server() {
  static std::unique_ptr<PostgresServer> instance;
  return instance;
}

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (const auto missing = PostgresServer::missing_binaries()) GTEST_SKIP() << *missing;
    server() = std::make_unique<PostgresServer>();
  }
  void TearDown() override { server().reset(); }
};

// Registered before main runs the tests (gtest_main).
[[maybe_unused]] ::testing::Environment* const registered =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

}  // namespace

PostgresServer& test_postgres() {
  if (!server()) throw std::logic_error("the test PostgreSQL server is not running");
  return *server();
}

}  // namespace nightshift::testing
