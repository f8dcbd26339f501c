// Every run a run manager knows, active and finished, each once.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "runs/run_manager.hpp"

namespace nightshift::testing {

// Reads the active runs, then up to `limit` of the history. A run that
// finishes between the two reads is in both; it is returned once.
inline std::vector<Run> every_run(const RunManager& runs, std::size_t limit = 500) {
  std::vector<Run> out = runs.active();
  std::set<std::string> seen;
  for (const Run& run : out) seen.insert(run.instance_id);
  HistoryQuery query;
  query.limit = limit;
  for (Run& run : runs.history(query).runs) {
    if (seen.insert(run.instance_id).second) out.push_back(std::move(run));
  }
  return out;
}

}  // namespace nightshift::testing
