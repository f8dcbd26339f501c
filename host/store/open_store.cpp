#include <stdexcept>

#include "store/postgresql/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace nightshift {

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
  if (is_postgresql_uri(location.uri)) return std::make_unique<PostgresStore>(location);
  throw std::invalid_argument("unknown store '" + location.uri +
                              "': use 'sqlite' (the default) or a postgresql:// URI, e.g. "
                              "postgresql://user@localhost/nightshift");
}

}  // namespace nightshift
