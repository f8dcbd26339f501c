// The composition root of the engine: owns the plugin loader, the catalog,
// the run store, the event bus, the run manager and automation (retries,
// schedules, webhooks), builds them in that order and stops them in the
// reverse. `nightshift serve`, the test hosts, the
// crash driver and the benchmarks all build a Host; nothing else wires the
// parts together, and every default lives in HostOptions (or the options
// struct of the part it belongs to).
//
// Thread safety: the accessors are [thread-safe] (the parts are); shutdown()
// and the destructor are called from the thread that owns the Host.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "automation/automation.hpp"
#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "loader/plugin_loader.hpp"
#include "runs/run_manager.hpp"

namespace nightshift {

class Store;

struct HostOptions {
  // Holds the database (`database_name`) and the loader's plugin copies.
  // Created if missing, mode 0700.
  std::filesystem::path data_dir;
  std::string database_name = "nightshift.db";
  std::size_t store_read_connections = 4;
  // Which store: empty (or "sqlite") for the SQLite file above, else a
  // postgresql:// URI shared by several hosts.
  std::string store;
  // This host's name among the hosts of a shared store, and in each run it
  // executes (Run.host). Empty: the machine's host name.
  std::string host_name;
  std::string host_version;  // shown by GET /hosts
  // A shared store's host lease and heartbeat (see StoreLocation).
  std::chrono::milliseconds host_lease{30000};
  std::chrono::milliseconds heartbeat_interval{5000};
  // Where runs work and local and remix agents are found.
  std::filesystem::path workspace;
  // Directories of installed agents, searched in order.
  std::vector<std::filesystem::path> installed_agent_dirs;
  // User remixes ($XDG_CONFIG_HOME/nightshift/remix); empty: none.
  std::filesystem::path user_remix_dir;
  // The run manager's limits; its `workspace` is set from the one above.
  RunManagerOptions runs;
  // Retries, schedules and webhooks.
  AutomationOptions automation;
};

class Host {
 public:
  // Builds every part: the data directory, the loader, the catalog (which
  // scans for agents), the store (migrations and start-up recovery) and the
  // bus, then the run manager. Throws when a part cannot start (e.g. the
  // database cannot be opened), after undoing what was built.
  explicit Host(HostOptions options);
  // Calls shutdown(options.runs.stop_grace) if it has not been called, then
  // destroys the parts in reverse order.
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const HostOptions& options() const noexcept { return options_; }
  PluginLoader& loader() noexcept { return *loader_; }
  Catalog& catalog() noexcept { return *catalog_; }
  Store& store() noexcept { return *store_; }
  EventBus& bus() noexcept { return *bus_; }
  RunManager& runs() noexcept { return *runs_; }
  Automation& automation() noexcept { return *automation_; }

  // Graceful stop of the engine: no new starts, every active run asked to
  // stop, up to `grace` for them, what is left recorded as interrupted, the
  // store flushed. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

 private:
  HostOptions options_;
  // Construction order; destroyed in reverse.
  std::unique_ptr<PluginLoader> loader_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<EventBus> bus_;
  std::unique_ptr<RunManager> runs_;
  std::unique_ptr<Automation> automation_;
};

}  // namespace nightshift
