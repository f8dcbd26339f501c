// The store's schema, as a numbered list of migration steps. The version a
// database is at lives in PRAGMA user_version; each step runs in its own
// transaction together with the bump of that version, so a crash leaves the
// database at one version or the next, never between.
#pragma once

#include <SQLiteCpp/Database.h>

#include <filesystem>

namespace nightshift::store {

// The newest schema version this build knows.
int latest_schema_version();

// Reads the database's version; throws when it is newer than this build knows.
int read_schema_version(SQLite::Database& db);

// Applies every migration step above the database's version, in order.
// Throws (naming the file and both versions) on a newer-than-known database.
void migrate(SQLite::Database& db, const std::filesystem::path& file);

}  // namespace nightshift::store
