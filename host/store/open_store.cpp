#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "install_layout.hpp"
#include "store/automation_store.hpp"
#include "store/postgresql/module.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace nightshift {

namespace {

// nightshift-store-postgresql.so: as installed, else as built in this tree.
std::filesystem::path postgresql_module_path() {
#ifdef NIGHTSHIFT_BUILD_POSTGRESQL_MODULE_PATH
  return installed_or_built(postgresql_module::kFileName, R_OK,
                            NIGHTSHIFT_BUILD_POSTGRESQL_MODULE_PATH);
#else
  return installed_or_built(postgresql_module::kFileName, R_OK, postgresql_module::kFileName);
#endif
}

struct PostgresqlModule {
  postgresql_module::OpenStore open_store = nullptr;
  postgresql_module::OpenAutomationStore open_automation_store = nullptr;
};

PostgresqlModule load_postgresql_module() {
  const std::filesystem::path path = postgresql_module_path();
  // Never closed: the stores it makes live as long as the host, and their
  // code and libpq's stay mapped until the process ends.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    throw std::runtime_error(
        std::string("cannot use a PostgreSQL store: ") + (why != nullptr ? why : path.c_str()) +
        ". Its module is installed with nightshift, in <prefix>/lib/nightshift/, and needs "
        "libpq (Debian: apt-get install libpq5)");
  }
  PostgresqlModule module;
  module.open_store = reinterpret_cast<postgresql_module::OpenStore>(
      ::dlsym(handle, postgresql_module::kOpenStoreSymbol));
  module.open_automation_store = reinterpret_cast<postgresql_module::OpenAutomationStore>(
      ::dlsym(handle, postgresql_module::kOpenAutomationStoreSymbol));
  if (module.open_store == nullptr || module.open_automation_store == nullptr) {
    throw std::runtime_error("cannot use a PostgreSQL store: " + path.string() +
                             " is not the PostgreSQL module of this nightshift (reinstall it)");
  }
  return module;
}

// Loaded once, at the first PostgreSQL store; a failed load is tried again
// by the next open (a static whose initializer throws is not initialized).
const PostgresqlModule& postgresql_module_once() {
  static const PostgresqlModule module = load_postgresql_module();
  return module;
}

}  // namespace

bool is_postgresql_uri(std::string_view uri) {
  return uri.starts_with("postgresql://") || uri.starts_with("postgres://") ||
         uri.find("dbname=") != std::string_view::npos ||
         uri.find("host=") != std::string_view::npos;
}

std::unique_ptr<Store> open_store(const StoreLocation& location) {
  if (location.uri.empty() || location.uri == "sqlite") {
    return std::make_unique<SqliteStore>(
        StoreOptions{location.sqlite_database, location.read_connections});
  }
  if (is_postgresql_uri(location.uri)) {
    return std::unique_ptr<Store>(postgresql_module_once().open_store(location));
  }
  throw std::invalid_argument("unknown store '" + location.uri +
                              "': use 'sqlite' (the default) or a postgresql:// URI, e.g. "
                              "postgresql://user@localhost/nightshift");
}

std::unique_ptr<AutomationStore> open_automation_store(const StoreLocation& location) {
  if (is_postgresql_uri(location.uri)) {
    return std::unique_ptr<AutomationStore>(
        postgresql_module_once().open_automation_store(location));
  }
  return std::make_unique<SqliteAutomationStore>(location.sqlite_database);
}

}  // namespace nightshift
