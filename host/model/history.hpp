// What a history page request asks for and what it gets, and how long
// finished runs are kept: plain values shared by the store, the run manager
// and their callers.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "model/run.hpp"

namespace nightshift {

// A GET /background-agents history page request.
struct HistoryQuery {
  std::size_t limit = 50;             // 1..500
  std::optional<std::string> cursor;  // from a previous HistoryPage
  std::optional<RunStatus> status;    // a terminal status
  std::optional<std::string> agent_id;
};

struct HistoryPage {
  std::vector<Run> runs;  // terminal runs, newest endedAt first
  std::optional<std::string> next_cursor;
};

// Retention: a finished run is pruned only when it is both older than
// max_age and not among the newest keep_at_least finished runs
// ("keep 30 days or 100,000 runs, whichever is more").
struct RetentionPolicy {
  std::chrono::hours max_age{24 * 30};
  std::size_t keep_at_least = 100000;
};

}  // namespace nightshift
