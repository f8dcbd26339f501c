// The engine as the host builds it (a nightshift::Host over one data
// directory), for the run tests and the crash driver; and a recorder of bus
// events.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "host.hpp"
#include "store/store.hpp"

namespace nightshift::testing {

// Where the engine finds its agents: the built-in ones and this suite's.
inline std::vector<std::filesystem::path> runs_test_agent_dirs() {
  return {NIGHTSHIFT_BUILD_AGENTS_DIR, NIGHTSHIFT_RUNS_TEST_AGENTS_DIR};
}

// The options of a Host over `data_dir` with its workspace inside it.
inline HostOptions engine_options(const std::filesystem::path& data_dir,
                                  std::vector<std::filesystem::path> agent_dirs,
                                  RunManagerOptions runs = {}) {
  HostOptions options;
  options.data_dir = data_dir;
  options.database_name = "runs.db";
  options.workspace = data_dir / "workspace";
  options.installed_agent_dirs = std::move(agent_dirs);
  options.user_remix_dir = data_dir / "user-remix";
  options.runs = std::move(runs);
  return options;
}

// A Host built on open(), so a test can prepare the workspace and choose
// the run manager's options first.
struct Engine {
  Engine(const std::filesystem::path& data_dir, std::vector<std::filesystem::path> agent_dirs)
      : data_dir(data_dir), agent_dirs(std::move(agent_dirs)), workspace(data_dir / "workspace") {
    std::filesystem::create_directories(workspace);
  }

  void open(RunManagerOptions options) {
    host = std::make_unique<Host>(engine_options(data_dir, agent_dirs, std::move(options)));
  }
  RunManager& manager() { return host->runs(); }
  Store& store() { return host->store(); }
  EventBus& bus() { return host->bus(); }

  std::filesystem::path data_dir;
  std::vector<std::filesystem::path> agent_dirs;
  std::filesystem::path workspace;
  std::unique_ptr<Host> host;
};

// Keeps every event the bus publishes, in order.
class EventRecorder {
 public:
  explicit EventRecorder(EventBus& bus)
      : subscription_(bus.subscribe([this](const EventPtr& event) {
          std::lock_guard lock(mutex_);
          events_.push_back(event);
        })) {}

  std::vector<EventPtr> all() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

  // The events about one run, in publication order.
  std::vector<EventPtr> of_run(const std::string& instance_id) const {
    std::vector<EventPtr> out;
    for (const EventPtr& event : all()) {
      if (const auto* run = std::get_if<RunEvent>(event.get())) {
        if (run->run.instance_id == instance_id) out.push_back(event);
      } else if (const auto* log = std::get_if<LogEvent>(event.get());
                 log != nullptr && log->instance_id == instance_id) {
        out.push_back(event);
      }
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<EventPtr> events_;
  EventBus::Subscription subscription_;  // last: unsubscribed before the rest goes
};

}  // namespace nightshift::testing
