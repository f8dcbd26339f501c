// Every list query is an index range scan in the list's order: no full scan
// of runs, no sort of the whole history, whichever filters are set.
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include "store/queries.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

std::vector<std::string> query_plan(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement explain(db, "EXPLAIN QUERY PLAN " + sql);
  std::vector<std::string> steps;
  while (explain.executeStep()) steps.push_back(explain.getColumn(3).getString());
  return steps;
}

std::string joined(const std::vector<std::string>& steps) {
  std::string text;
  for (const auto& step : steps) text += step + " | ";
  return text;
}

void expect_index_scan(SQLite::Database& db, const std::string& sql, const std::string& index) {
  const auto steps = query_plan(db, sql);
  const std::string plan = joined(steps);
  SCOPED_TRACE(sql + "\nplan: " + plan);
  bool uses_index = false;
  for (const auto& step : steps) {
    // "... INDEX runs_history (...)" or "... INDEX runs_history" at the end.
    const auto at = step.find("INDEX " + index);
    const auto after = at + 6 + index.size();
    if (at != std::string::npos && (after == step.size() || step[after] == ' ')) {
      uses_index = true;
    }
    EXPECT_NE(step, "SCAN runs") << "full scan of runs";
    EXPECT_EQ(step.find("TEMP B-TREE"), std::string::npos) << "sorts instead of reading in order";
  }
  EXPECT_TRUE(uses_index) << "expected index " << index;
}

class QueryPlanTest : public ::testing::Test {
 protected:
  StoreFixture fixture_;
  SQLite::Database db_ = fixture_.inspect();
};

TEST_F(QueryPlanTest, HistoryUsesTheIndexOfEachFilterCombination) {
  for (const bool after_cursor : {false, true}) {
    expect_index_scan(db_, store::history_page_sql(false, false, after_cursor), "runs_history");
    expect_index_scan(db_, store::history_page_sql(true, false, after_cursor),
                      "runs_history_by_status");
    expect_index_scan(db_, store::history_page_sql(false, true, after_cursor),
                      "runs_history_by_agent");
    expect_index_scan(db_, store::history_page_sql(true, true, after_cursor),
                      "runs_history_by_agent_status");
  }
}

TEST_F(QueryPlanTest, ActiveListUsesTheActiveIndexes) {
  expect_index_scan(db_, store::active_runs_sql(false), "runs_active");
  expect_index_scan(db_, store::active_runs_sql(true), "runs_active_by_agent");
}

TEST_F(QueryPlanTest, PruneAndLogReadsUseIndexes) {
  expect_index_scan(db_, store::prune_candidates_sql(), "runs_history");
  const std::string logs_plan = joined(query_plan(db_, store::read_logs_sql()));
  EXPECT_NE(logs_plan.find("SEARCH logs USING PRIMARY KEY (run=? AND seq>?)"), std::string::npos)
      << logs_plan;
}

TEST_F(QueryPlanTest, FindingARetrysRunUsesItsIndex) {
  expect_index_scan(db_, store::retry_started_sql(), "runs_by_retry_of");
}

}  // namespace
}  // namespace nightshift::testing
