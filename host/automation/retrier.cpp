#include "automation/retrier.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <cmath>

namespace nightshift {

namespace {

DueQueue::Clock::time_point wall(Timestamp t) {
  return DueQueue::Clock::time_point{
      std::chrono::duration_cast<DueQueue::Clock::duration>(t.time_since_epoch())};
}

}  // namespace

std::chrono::milliseconds Retrier::backoff(double first_seconds, std::uint32_t attempt) {
  const double factor = std::ldexp(1.0, static_cast<int>(std::min<std::uint32_t>(attempt, 40)) - 1);
  // At most a week: past that a retry is no longer what anyone waits for.
  const double ms = std::min(first_seconds * factor * 1000.0, 7.0 * 24 * 3600 * 1000);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

Retrier::Retrier(Catalog& catalog, RunManager& runs, EventBus& bus, AutomationStore& store)
    : catalog_(catalog), runs_(runs), store_(store) {
  due_ = std::make_unique<DueQueue>("ns-retry", [this](const std::string& id) { start_due(id); });
  for (const PendingRetry& retry : store_.list_pending_retries()) {
    due_->set(retry.failed_run_id, wall(retry.due_at));
  }
  worker_ = std::thread([this] { work_loop(); });
  subscription_ = bus.subscribe([this](const EventPtr& event) { on_event(event); });
}

Retrier::~Retrier() {
  stop();
}

void Retrier::stop() {
  subscription_.reset();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  due_->stop();
}

std::uint64_t Retrier::retries_waiting() const {
  return due_->size();
}

// On the store writer's publisher thread: only queue.
void Retrier::on_event(const EventPtr& event) {
  const auto* run_event = std::get_if<RunEvent>(event.get());
  if (run_event == nullptr || run_event->kind != RunEventKind::finished ||
      run_event->run.status != RunStatus::failed) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  failures_.push_back(run_event->run);
  wake_.notify_all();
}

void Retrier::consider_failed(std::vector<Run> runs) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  for (Run& run : runs) {
    if (run.status == RunStatus::failed) failures_.push_back(std::move(run));
  }
  wake_.notify_all();
}

void Retrier::work_loop() {
  ::pthread_setname_np(::pthread_self(), "ns-retry-check");
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !failures_.empty(); });
    if (stopping_) return;
    Run failed = std::move(failures_.front());
    failures_.pop_front();
    lock.unlock();
    try {
      consider(failed);
    } catch (const std::exception& error) {
      spdlog::error("run {} failed, and its retry could not be arranged: {}", failed.instance_id,
                    error.what());
    }
    lock.lock();
  }
}

void Retrier::consider(const Run& failed) {
  const std::optional<AgentInfo> info = catalog_.find(failed.agent_id);
  if (!info || !info->available) return;  // gone since: nothing to retry with
  const AutomationLimits limits =
      catalog_.resolve(failed.agent_id, failed.params).limits.automation;
  const std::uint32_t retries = limits.retries.value_or(0);
  if (failed.attempt > retries) return;  // attempt 1 + N retries
  PendingRetry retry;
  retry.failed_run_id = failed.instance_id;
  retry.attempt = failed.attempt + 1;
  retry.agent_id = failed.agent_id;
  retry.task = std::optional<std::string>(failed.task);
  retry.params = failed.params;
  const auto wait =
      backoff(limits.retry_backoff_seconds.value_or(kDefaultRetryBackoffSeconds), failed.attempt);
  retry.due_at = failed.ended_at.value_or(now_ms()) + wait;
  store_.add_pending_retry(retry);
  due_->set(retry.failed_run_id, wall(retry.due_at));
  spdlog::info("run {} failed (attempt {}); retry {} of {} in {} ms", failed.instance_id,
               failed.attempt, failed.attempt, retries, wait.count());
}

void Retrier::refresh() {
  if (!store_.shared()) return;
  // Retries another host queued and did not start (e.g. it stopped): any
  // host may start them; the take below lets one.
  for (const PendingRetry& retry : store_.list_pending_retries()) {
    due_->set(retry.failed_run_id, wall(retry.due_at));
  }
}

// A taken retry waits again. A store that cannot record it now leaves it
// taken by this host, which tries it again when due (a shared store frees it
// for the others later).
void Retrier::release(const std::string& failed_run_id, Timestamp due_at) {
  try {
    store_.release_pending_retry(failed_run_id, due_at);
  } catch (const std::exception& error) {
    spdlog::warn("the retry of run {} could not be put back to wait: {}", failed_run_id,
                 error.what());
  }
}

// On the due queue's thread.
void Retrier::start_due(const std::string& failed_run_id) {
  // Taken by one host only (under a shared store every host that saw the
  // failure has it queued).
  const std::optional<PendingRetry> retry = store_.take_pending_retry(failed_run_id);
  if (!retry) return;
  StartRequest request;
  request.agent_id = retry->agent_id;
  request.task = retry->task;
  request.params = retry->params;
  request.attempt = retry->attempt;
  request.retry_of = retry->failed_run_id;
  request.instance_id = retry->run_id;
  try {
    const Run run = runs_.start(request);
    started_.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("run {} retries run {} (attempt {})", run.instance_id, failed_run_id,
                 retry->attempt);
  } catch (const RunError& error) {
    if (error.code() == RunError::Code::shutting_down) {
      release(failed_run_id, retry->due_at);  // for the next start
      return;
    }
    if (error.code() == RunError::Code::at_capacity ||
        error.code() == RunError::Code::store_failed) {
      const auto again = DueQueue::Clock::now() + std::chrono::seconds(5);
      due_->set(failed_run_id, again);
      release(failed_run_id, std::chrono::time_point_cast<std::chrono::milliseconds>(again));
      return;
    }
    spdlog::warn("the retry of run {} was not started: {}", failed_run_id, error.what());
  } catch (const std::exception& error) {
    spdlog::warn("the retry of run {} was not started: {}", failed_run_id, error.what());
  }
  store_.finish_pending_retry(failed_run_id);
}

}  // namespace nightshift
