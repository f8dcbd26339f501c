// A run's agent in its own process: the bridge between a LiveRun and
// isolation::run_in_process. What the worker reports goes through the run's
// own C callbacks (so caps, throttling and ordering are the same as in a
// thread); the worker's stdout and stderr become host entries (warn).
//
// Thread safety: called on the run's worker thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runs/live_run.hpp"

namespace nightshift {

struct AgentExit {
  std::int32_t rc = NIGHTSHIFT_RUN_OK;
  std::optional<std::string> failure;  // the run fails with this (a crash, a limit)
  bool killed = false;                 // killed after the stop grace
};

namespace isolation {
class Spawner;
}

// `spawner`: the manager's process spawner (null: a posix_spawn per run).
AgentExit run_agent_in_process(LiveRun& run, const RunManagerOptions& options,
                               std::shared_ptr<isolation::Spawner> spawner);

}  // namespace nightshift
