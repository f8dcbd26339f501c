// store_tests_postgresql: the PostgreSQL server of the store tests' run on
// PostgreSQL, and the shared store tests' stores on it.
#include "postgres_environment.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "store/postgresql/pg_automation_store.hpp"
#include "store_fixtures.hpp"

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

bool on_postgresql() {
  return true;
}

std::unique_ptr<Store> open_test_store(const std::filesystem::path&, std::string& database) {
  if (database.empty()) database = test_postgres().create_database();
  StoreLocation location;
  location.uri = test_postgres().conninfo(database);
  location.host_name = "store-test";
  return open_store(location);
}

std::unique_ptr<AutomationStore> open_test_automation_store(const std::filesystem::path&,
                                                            const std::string& database) {
  return std::make_unique<PgAutomationStore>(test_postgres().conninfo(database), "store-test");
}

std::int64_t count_test_rows(const std::filesystem::path&, const std::string& database,
                             const std::string& table) {
  return test_postgres().count_rows(database, table);
}

}  // namespace nightshift::testing
