// The SQL of the list queries, one text per filter combination. Kept apart
// so the tests can ask SQLite for the plan of exactly the queries the store
// runs (each must be an index range scan in the list's order).
#pragma once

#include <string>

namespace nightshift::store {

// Active runs, newest created first. Binds ?1 = agent_id when by_agent.
std::string active_runs_sql(bool by_agent);

// One history page, newest ended first, ties broken by id. Named parameters:
// :agent, :status (when filtered), :ended_at and :id (after a cursor), :limit.
// Selects the run columns followed by the row id.
std::string history_page_sql(bool by_status, bool by_agent, bool after_cursor);

// The oldest prunable finished runs: ended before ?1 and strictly before the
// position (?2 ended_at, ?3 id), oldest first, at most ?4.
std::string prune_candidates_sql();

// A run's log entries after a seq: ?1 instance_id, ?2 after seq, ?3 limit.
std::string read_logs_sql();

// Whether a run retries the failed run ?1 (one row or none).
std::string retry_started_sql();

}  // namespace nightshift::store
