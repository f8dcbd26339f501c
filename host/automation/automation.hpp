// Automation (host/automation/): retries of failed runs, re-runs, schedules
// and webhooks, over the run manager. Owned by the Host, built after the run
// manager and stopped before it.
//
// Thread safety: every public member is [thread-safe].
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "automation/retrier.hpp"
#include "automation/scheduler.hpp"
#include "automation/webhooks.hpp"
#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "runs/run_manager.hpp"
#include "store/automation_store.hpp"

namespace nightshift {

struct AutomationOptions {
  WebhookOptions webhooks;
  // Under a shared store: how often the schedules, webhooks and waiting
  // retries other hosts changed are re-read into this host's due queues
  // (their delay; claims in the store keep each firing to one host anyway).
  std::chrono::milliseconds shared_refresh{1000};
};

// Counters for GET /metrics, since this process started.
struct AutomationStats {
  std::uint64_t retries_started = 0;
  std::uint64_t retries_waiting = 0;
  std::uint64_t scheduled_starts = 0;
  std::uint64_t scheduled_skips = 0;  // times skipped: the previous run was active
  std::uint64_t schedules_enabled = 0;
  WebhookStats webhooks;
};

class Automation {
 public:
  // Starts the retrier, the scheduler and the webhook dispatcher over
  // `store` (see open_automation_store), each with what the previous host
  // left waiting; under a shared store also the thread that re-reads what
  // the other hosts changed, every options.shared_refresh.
  Automation(Catalog& catalog, RunManager& runs, EventBus& bus,
             std::unique_ptr<AutomationStore> store, AutomationOptions options);
  ~Automation();
  Automation(const Automation&) = delete;
  Automation& operator=(const Automation&) = delete;

  // Starts a finished run again: same agent, task and params, `rerunOf` set.
  // Refusals as RunManager::start gives them, through `done`; throws
  // RunError (run_not_found, run_active) at once.
  void rerun(const std::string& instance_id, RunManager::StartCallback done);
  // The same, waiting for the commit.
  Run rerun(const std::string& instance_id);

  Retrier& retries() { return *retrier_; }
  Scheduler& schedules() { return *scheduler_; }
  Webhooks& webhooks() { return *webhooks_; }
  AutomationStore& store() { return *store_; }

  AutomationStats stats() const;

  // Stops starting runs: no retry and no scheduled start from now on (what
  // waits stays in the store). Idempotent.
  void stop_starting();
  // Also stops the webhooks, after recording the deliveries of the events
  // seen so far. Idempotent.
  void stop();

 private:
  StartRequest rerun_request(const std::string& instance_id) const;
  void refresh_main(std::chrono::milliseconds every);
  void stop_refreshing();

  RunManager& runs_;
  std::unique_ptr<AutomationStore> store_;
  std::unique_ptr<Retrier> retrier_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Webhooks> webhooks_;

  std::mutex refresh_mutex_;  // guards stopping_refresh_
  std::condition_variable refresh_wake_;
  bool stopping_refresh_ = false;
  std::thread refresher_;  // under a shared store only
};

}  // namespace nightshift
