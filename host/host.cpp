#include "host.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "store/run_store.hpp"

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

}  // namespace

Host::Host(HostOptions options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) throw std::invalid_argument("the host needs a data directory");
  if (options_.workspace.empty()) options_.workspace = std::filesystem::current_path();
  options_.workspace = std::filesystem::absolute(options_.workspace);
  options_.runs.workspace = options_.workspace;
  make_private_dir(options_.data_dir);

  loader_ = std::make_unique<PluginLoader>(options_.data_dir / "plugin-copies");
  catalog_ = std::make_unique<Catalog>(
      CatalogOptions{options_.installed_agent_dirs, options_.workspace, options_.user_remix_dir},
      *loader_);
  store_ = std::make_unique<RunStore>(
      StoreOptions{options_.data_dir / options_.database_name, options_.store_read_connections});
  bus_ = std::make_unique<EventBus>();
  runs_ = std::make_unique<RunManager>(*catalog_, *store_, *bus_, options_.runs);
  automation_ = std::make_unique<Automation>(
      *catalog_, *runs_, *bus_, options_.data_dir / options_.database_name, options_.automation);
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
