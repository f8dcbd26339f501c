// Retries of failed runs (agents.md, "Limits": retries, retryBackoffSeconds).
// A run that finishes `failed` while its agent (or remix) allows retries and
// it has attempts left gets a retry: a new run with the same agent, task and
// params, `attempt` one higher and `retryOf` naming it, started when the
// backoff is over (the first wait, doubling each attempt). The wait is in
// the store from the moment the failure is seen, so it survives a restart.
// `cancelled` runs are never retried.
//
// Under a shared store every host sees every failure and queues its retry
// (the store keeps one per failed run); the host that takes it from the
// store when it is due starts it, the others find it taken.
//
// Thread safety: every member is [thread-safe]. The bus handler only queues
// the finished run; the work (catalog, store, starting the retry) happens on
// the retrier's own thread, never on the store writer's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "automation/due_queue.hpp"
#include "catalog/catalog.hpp"
#include "events/event_bus.hpp"
#include "runs/run_manager.hpp"
#include "store/automation_store.hpp"

namespace nightshift {

class Retrier {
 public:
  // Loads the retries left waiting by the previous host; they start when
  // due (at once when their time passed while the host was down).
  Retrier(Catalog& catalog, RunManager& runs, EventBus& bus, AutomationStore& store);
  ~Retrier();
  Retrier(const Retrier&) = delete;
  Retrier& operator=(const Retrier&) = delete;

  // Stops taking failures and starting retries; waits persist. Idempotent.
  void stop();

  // Queues the retries waiting in a shared store that this host has not
  // seen (another host queued them); nothing on a single-host store.
  void refresh();

  // Runs that failed while no retrier listened (start-up recovery marked
  // them interrupted): each is retried as its agent's limits say, as if its
  // `finished` event had been heard.
  void consider_failed(std::vector<Run> runs);

  std::uint64_t retries_started() const { return started_.load(); }
  std::uint64_t retries_waiting() const;

  // The wait before the retry that follows attempt `attempt` (1-based).
  static std::chrono::milliseconds backoff(double first_seconds, std::uint32_t attempt);

 private:
  void on_event(const EventPtr& event);
  void consider(const Run& failed);
  void start_due(const std::string& failed_run_id);
  void release(const std::string& failed_run_id, Timestamp due_at);
  void work_loop();

  Catalog& catalog_;
  RunManager& runs_;
  AutomationStore& store_;
  std::atomic<std::uint64_t> started_{0};

  std::mutex mutex_;  // guards failures_ and stopping_
  std::condition_variable wake_;
  std::deque<Run> failures_;  // failed runs not yet considered
  bool stopping_ = false;

  std::unique_ptr<DueQueue> due_;  // retries waiting for their time
  std::thread worker_;             // considers failures
  EventBus::Subscription subscription_;
};

}  // namespace nightshift
