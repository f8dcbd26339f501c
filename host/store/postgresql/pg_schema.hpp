// The PostgreSQL store's schema as numbered migration steps (append only).
// The version lives in the table nightshift_schema; each step runs in its
// own transaction with the bump of that version, under an advisory lock, so
// several hosts starting at once migrate the database exactly once.
#pragma once

#include "store/postgresql/pg_connection.hpp"

namespace nightshift::pg {

int latest_schema_version();
// The database's version (0 for an empty database).
int read_schema_version(Connection& conn);
// Applies every step above the database's version. Throws (naming both
// versions) on a database newer than this build knows.
void migrate(Connection& conn);

}  // namespace nightshift::pg
