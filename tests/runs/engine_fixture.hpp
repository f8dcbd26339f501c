// The engine assembled the way the host assembles it (loader, catalog, store,
// bus, run manager) over one data directory, for the run tests and the crash
// driver; and a recorder of bus events.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "loader/plugin_loader.hpp"
#include "runs/run_manager.hpp"
#include "store/run_store.hpp"

namespace nightshift::testing {

// Where the engine finds its agents: the built-in ones and this suite's.
inline std::vector<std::filesystem::path> runs_test_agent_dirs() {
  return {NIGHTSHIFT_BUILD_AGENTS_DIR, NIGHTSHIFT_RUNS_TEST_AGENTS_DIR};
}

struct Engine {
  Engine(const std::filesystem::path& data_dir, std::vector<std::filesystem::path> agent_dirs)
      : workspace(data_dir / "workspace"),
        loader(data_dir / "scratch"),
        catalog(CatalogOptions{std::move(agent_dirs), workspace, data_dir / "user-remix"}, loader),
        store(StoreOptions{data_dir / "runs.db", 4}) {
    std::filesystem::create_directories(workspace);
    catalog.rescan();
  }

  void open(RunManagerOptions options) {
    options.workspace = workspace;
    manager = std::make_unique<RunManager>(catalog, store, bus, std::move(options));
  }

  std::filesystem::path workspace;
  PluginLoader loader;
  Catalog catalog;
  RunStore store;
  EventBus bus;
  std::unique_ptr<RunManager> manager;  // destroyed first
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
      } else if (std::get<LogEvent>(*event).instance_id == instance_id) {
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
