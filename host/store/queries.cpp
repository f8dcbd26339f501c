#include "store/queries.hpp"

#include "store/run_row.hpp"

namespace nightshift::store {

std::string active_runs_sql(bool by_agent) {
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs WHERE finished = 0";
  if (by_agent) sql += " AND agent_id = ?1";
  sql += " ORDER BY created_at DESC, id DESC";
  return sql;
}

// Each combination has an index whose leading columns are its equality
// filters followed by (ended_at, id), so a page is one range scan.
std::string history_page_sql(bool by_status, bool by_agent, bool after_cursor) {
  std::string sql = std::string("SELECT ") + kRunColumns + ", id FROM runs WHERE finished = 1";
  if (by_agent) sql += " AND agent_id = :agent";
  if (by_status) sql += " AND status = :status";
  if (after_cursor) sql += " AND (ended_at, id) < (:ended_at, :id)";
  sql += " ORDER BY ended_at DESC, id DESC LIMIT :limit";
  return sql;
}

std::string prune_candidates_sql() {
  return "SELECT id, log_count FROM runs WHERE finished = 1 AND ended_at < ?1 "
         "AND (ended_at, id) < (?2, ?3) ORDER BY ended_at, id LIMIT ?4";
}

std::string read_logs_sql() {
  return "SELECT seq, ts, level, message, source FROM logs "
         "WHERE run = (SELECT id FROM runs WHERE instance_id = ?1) AND seq > ?2 "
         "ORDER BY seq LIMIT ?3";
}

std::string retry_started_sql() {
  return "SELECT 1 FROM runs WHERE retry_of = ?1 LIMIT 1";
}

}  // namespace nightshift::store
