// store_tests: the shared store tests on SQLite, each in its own file.
#include <SQLiteCpp/Database.h>

#include "store/sqlite/sqlite_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {

bool on_postgresql() {
  return false;
}

std::unique_ptr<Store> open_test_store(const std::filesystem::path& file, std::string&) {
  return std::make_unique<SqliteStore>(StoreOptions{file, 4});
}

std::unique_ptr<AutomationStore> open_test_automation_store(const std::filesystem::path& file,
                                                            const std::string&) {
  return std::make_unique<SqliteAutomationStore>(file);
}

std::int64_t count_test_rows(const std::filesystem::path& file, const std::string&,
                             const std::string& table) {
  return SQLite::Database(file.string()).execAndGet("SELECT count(*) FROM " + table).getInt64();
}

}  // namespace nightshift::testing
