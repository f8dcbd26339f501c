// The PostgreSQL server of the store tests' PostgreSQL run: started once per
// test program (postgres_environment.cpp), before the first test, and
// stopped after the last; every test skips when PostgreSQL is not installed.
#pragma once

#include "postgres_server.hpp"

namespace nightshift::testing {

// The running server; only valid inside a test.
PostgresServer& test_postgres();

}  // namespace nightshift::testing
