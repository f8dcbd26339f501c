// How a Run and a LogEntry map onto the columns of the runs and logs tables.
#pragma once

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include "model/run.hpp"
#include "store/run_fields.hpp"

namespace nightshift::store {

// Throws std::invalid_argument when the run cannot be stored as it is (a
// terminal run without endedAt). bind_run checks it too. (In
// run_checks.cpp, which both stores link: it needs no SQLite.)
void check_writable(const Run& run);

// The parameter of the upsert statement that bind_run binds log_count to.
inline constexpr int kLogCountParameter = 15;
inline constexpr int kFinishedParameter = kRunColumnCount + 1;

// Binds the run's fields to the parameters of the upsert statement:
// kRunColumns in order, then `finished` as the last one (kFinishedParameter).
// The text fields are bound without a copy: `run` must stay alive and
// unchanged until the statement has been executed.
void bind_run(SQLite::Statement& statement, const Run& run);

// Reads the current row, selected with kRunColumns starting at column 0.
// Never throws for a malformed stored value: the run reads as well as it can
// and its error says which fields could not be read (read_run_fields).
Run read_run(const SQLite::Statement& statement);

}  // namespace nightshift::store
