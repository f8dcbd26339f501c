// The PostgreSQL store is a module of its own, nightshift-store-postgresql.so
// (in <prefix>/lib/nightshift/ when installed, lib/nightshift/ of the build
// tree when built): open_store loads it the first time a PostgreSQL store is
// opened, so that a host on SQLite, the default, never maps libpq and the
// libraries it pulls in (GnuTLS, Kerberos, LDAP, ...).
//
// These are its two entry points. They are called with the host's own types:
// the module is built with the host, from the same sources, and is never
// loaded by anything else. Both throw what the stores' constructors throw.
#pragma once

#include "store/automation_store.hpp"
#include "store/store.hpp"

namespace nightshift::postgresql_module {

inline constexpr const char* kFileName = "nightshift-store-postgresql.so";
inline constexpr const char* kOpenStoreSymbol = "nightshift_postgresql_open_store";
inline constexpr const char* kOpenAutomationStoreSymbol =
    "nightshift_postgresql_open_automation_store";

// The caller owns what they return.
using OpenStore = Store* (*)(const StoreLocation& location);
using OpenAutomationStore = AutomationStore* (*)(const StoreLocation& location);

}  // namespace nightshift::postgresql_module
