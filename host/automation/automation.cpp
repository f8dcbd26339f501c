#include "automation/automation.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace nightshift {

Automation::Automation(Catalog& catalog, RunManager& runs, EventBus& bus,
                       std::unique_ptr<AutomationStore> store, AutomationOptions options)
    : runs_(runs), store_(std::move(store)) {
  webhooks_ = std::make_unique<Webhooks>(bus, *store_, options.webhooks);
  retrier_ = std::make_unique<Retrier>(catalog, runs, bus, *store_);
  scheduler_ = std::make_unique<Scheduler>(catalog, runs, bus, *store_);
  if (store_->shared()) {
    refresher_ = std::thread([this, every = options.shared_refresh] { refresh_main(every); });
  }
}

Automation::~Automation() {
  stop();
}

// A short poll rather than notifications: automation changes are rare, a
// second's delay is what a schedule edited elsewhere waits at most, and the
// claims in the store keep every firing, retry and delivery to one host
// whatever this host's copy says meanwhile.
void Automation::refresh_main(std::chrono::milliseconds every) {
  ::pthread_setname_np(::pthread_self(), "ns-auto-sync");
  std::unique_lock lock(refresh_mutex_);
  while (!refresh_wake_.wait_for(lock, every, [this] { return stopping_refresh_; })) {
    lock.unlock();
    try {
      scheduler_->refresh();
      retrier_->refresh();
      webhooks_->refresh();
    } catch (const std::exception& error) {
      spdlog::warn("automation could not re-read the shared store (tried again in {} ms): {}",
                   every.count(), error.what());
    }
    lock.lock();
  }
}

void Automation::stop_refreshing() {
  {
    std::lock_guard lock(refresh_mutex_);
    stopping_refresh_ = true;
    refresh_wake_.notify_all();
  }
  if (refresher_.joinable()) refresher_.join();
}

void Automation::stop_starting() {
  stop_refreshing();
  if (scheduler_) scheduler_->stop();
  if (retrier_) retrier_->stop();
}

void Automation::stop() {
  stop_starting();
  if (webhooks_) webhooks_->stop();
}

StartRequest Automation::rerun_request(const std::string& instance_id) const {
  const std::optional<Run> run = runs_.get(instance_id);
  if (!run)
    throw RunError(RunError::Code::run_not_found, "no run has the id '" + instance_id + "'");
  if (is_active(run->status)) {
    throw RunError(RunError::Code::run_active,
                   "run " + instance_id + " is still active; re-run it once it has ended");
  }
  StartRequest request;
  request.agent_id = run->agent_id;
  request.task = std::optional<std::string>(run->task);
  request.params = run->params;
  request.rerun_of = instance_id;
  return request;
}

void Automation::rerun(const std::string& instance_id, RunManager::StartCallback done) {
  runs_.start(rerun_request(instance_id), std::move(done));
}

Run Automation::rerun(const std::string& instance_id) {
  return runs_.start(rerun_request(instance_id));
}

AutomationStats Automation::stats() const {
  AutomationStats s;
  s.retries_started = retrier_->retries_started();
  s.retries_waiting = retrier_->retries_waiting();
  s.scheduled_starts = scheduler_->scheduled_starts();
  s.scheduled_skips = scheduler_->skipped_overlaps();
  s.schedules_enabled = scheduler_->enabled_count();
  s.webhooks = webhooks_->stats();
  return s;
}

}  // namespace nightshift
