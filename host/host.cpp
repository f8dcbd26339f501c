#include "host.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "install_layout.hpp"
#include "store/run_store.hpp"
#include "store/store.hpp"

namespace nightshift {

namespace {

// The data directory holds every run's history and logs: only its owner may
// read it, whatever the umask.
void make_private_dir(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  if (::chmod(dir.c_str(), 0700) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "cannot make " + dir.string() + " private (mode 0700)");
  }
}

// nightshift-worker: as installed, else as built in this tree.
std::filesystem::path find_worker() {
#ifdef NIGHTSHIFT_BUILD_WORKER_PATH
  return installed_or_built("nightshift-worker", X_OK, NIGHTSHIFT_BUILD_WORKER_PATH);
#else
  return installed_or_built("nightshift-worker", X_OK, {});
#endif
}

std::string machine_host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

Host::Host(HostOptions options) : options_(std::move(options)) {
  // spdlog's registry is made on first use; made here, before any of the
  // host's threads, it is in place before one of them logs (made by the
  // first thread that logs, the other threads see it only through a lock
  // inside the library, which a thread sanitizer cannot see).
  spdlog::default_logger_raw();
  if (options_.data_dir.empty()) throw std::invalid_argument("the host needs a data directory");
  if (options_.workspace.empty()) options_.workspace = std::filesystem::current_path();
  options_.workspace = std::filesystem::absolute(options_.workspace);
  options_.runs.workspace = options_.workspace;
  // Agents run in it (a process run's working directory): it must exist.
  std::filesystem::create_directories(options_.workspace);
  if (options_.runs.worker_path.empty()) options_.runs.worker_path = find_worker();
  if (options_.host_name.empty()) options_.host_name = machine_host_name();
  options_.runs.host_name = options_.host_name;
  options_.runs.host_version = options_.host_version;
  make_private_dir(options_.data_dir);

  loader_ = std::make_unique<PluginLoader>(options_.data_dir / "plugin-copies");
  catalog_ = std::make_unique<Catalog>(
      CatalogOptions{options_.installed_agent_dirs, options_.workspace, options_.user_remix_dir},
      *loader_);
  StoreLocation location;
  location.uri = options_.store;
  location.sqlite_database = options_.data_dir / options_.database_name;
  location.read_connections = options_.store_read_connections;
  location.host_name = options_.host_name;
  location.host_version = options_.host_version;
  location.host_lease = options_.host_lease;
  location.heartbeat_interval = options_.heartbeat_interval;
  store_ = open_store(location);
  bus_ = std::make_unique<EventBus>();
  runs_ = std::make_unique<RunManager>(*catalog_, *store_, *bus_, options_.runs);
  // Schedules, webhooks and waiting retries beside the runs: in the SQLite
  // file, or in the PostgreSQL database every host shares.
  automation_ = std::make_unique<Automation>(*catalog_, *runs_, *bus_,
                                             open_automation_store(location), options_.automation);
  // Runs the previous host left active were failed before the retrier
  // listened: they are retried as any failed run.
  automation_->retries().consider_failed(runs_->take_interrupted_at_start());
}

Host::~Host() {
  if (automation_) automation_->stop_starting();
  if (runs_) runs_->shutdown(options_.runs.stop_grace);
  if (automation_) automation_->stop();
  automation_.reset();
  runs_.reset();
  bus_.reset();
  store_.reset();
  catalog_.reset();
  loader_.reset();
}

void Host::shutdown(std::chrono::milliseconds grace) {
  // No retry or scheduled start begins while the runs stop; the webhooks
  // still record the deliveries of their last events (sent after a restart).
  automation_->stop_starting();
  runs_->shutdown(grace);
  automation_->stop();
}

}  // namespace nightshift
