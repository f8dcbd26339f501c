#include "automation/automation.hpp"

namespace nightshift {

Automation::Automation(Catalog& catalog, RunManager& runs, EventBus& bus,
                       const std::filesystem::path& database, AutomationOptions options)
    : runs_(runs), store_(std::make_unique<AutomationStore>(database)) {
  webhooks_ = std::make_unique<Webhooks>(bus, *store_, options.webhooks);
  retrier_ = std::make_unique<Retrier>(catalog, runs, bus, *store_);
  scheduler_ = std::make_unique<Scheduler>(catalog, runs, bus, *store_);
}

Automation::~Automation() {
  stop();
}

void Automation::stop_starting() {
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
  request.task = run->task;
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
