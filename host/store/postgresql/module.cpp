// The entry points of nightshift-store-postgresql.so (see module.hpp).
#include "store/postgresql/module.hpp"

#include <type_traits>

#include "store/postgresql/pg_automation_store.hpp"
#include "store/postgresql/pg_store.hpp"

extern "C" __attribute__((visibility("default"))) nightshift::Store*
nightshift_postgresql_open_store(const nightshift::StoreLocation& location) {
  return new nightshift::PostgresStore(location);
}

extern "C" __attribute__((visibility("default"))) nightshift::AutomationStore*
nightshift_postgresql_open_automation_store(const nightshift::StoreLocation& location) {
  return new nightshift::PgAutomationStore(location.uri, location.host_name, location.host_lease);
}

// Checked against the types the host calls them through.
static_assert(std::is_same_v<decltype(&nightshift_postgresql_open_store),
                             nightshift::postgresql_module::OpenStore>);
static_assert(std::is_same_v<decltype(&nightshift_postgresql_open_automation_store),
                             nightshift::postgresql_module::OpenAutomationStore>);
