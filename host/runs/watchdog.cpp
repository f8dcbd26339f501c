#include "runs/watchdog.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

namespace nightshift {

Watchdog::Watchdog(std::chrono::milliseconds sweep_delay, std::chrono::milliseconds period,
                   Task periodic)
    : sweep_delay_(sweep_delay),
      period_(period),
      periodic_(std::move(periodic)),
      thread_([this] { main(); }) {}

Watchdog::~Watchdog() {
  stop();
}

void Watchdog::at(Clock::time_point when, Task task) {
  std::lock_guard lock(mutex_);
  const bool earliest = deadlines_.empty() || when < deadlines_.begin()->first;
  deadlines_.emplace(when, std::move(task));
  if (earliest) wake_.notify_one();
}

void Watchdog::soon(Task task) {
  std::lock_guard lock(mutex_);
  batched_.push_back(std::move(task));
  if (batched_.size() == 1) wake_.notify_one();
}

void Watchdog::post(Task task) {
  std::lock_guard lock(mutex_);
  posted_.push_back(std::move(task));
  if (posted_.size() == 1) wake_.notify_one();
}

void Watchdog::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  // What was posted meanwhile (thread joins, mostly) still runs.
  std::vector<Task> posted;
  {
    std::lock_guard lock(mutex_);
    posted.swap(posted_);
    deadlines_.clear();
    batched_.clear();
  }
  for (const Task& task : posted) run_task(task);
}

void Watchdog::run_task(const Task& task) noexcept {
  try {
    task();
  } catch (const std::exception& e) {
    spdlog::error("run manager watchdog: {}", e.what());
  } catch (...) {
    spdlog::error("run manager watchdog: a task threw a non-exception");
  }
}

namespace {

// Empties a round's tasks and keeps the buffer for the next round, unless a
// burst made it far larger than rounds need.
void keep_buffer(std::vector<Watchdog::Task>& tasks) {
  constexpr std::size_t kKeptTasks = 16384;  // 512 KiB
  if (tasks.capacity() > kKeptTasks) {
    std::vector<Watchdog::Task>().swap(tasks);
  } else {
    tasks.clear();
  }
}

}  // namespace

void Watchdog::main() {
  constexpr auto kNever = Clock::time_point::max();
  auto next_periodic = Clock::now() + period_;
  // Set while batched tasks wait: when they run, however often the thread
  // wakes for other reasons meanwhile.
  auto next_sweep = kNever;
  // What runs this round, swapped with the queues so that they keep their
  // buffers: the threads that queue tasks (a run's own thread, at every log
  // line or progress tick) never grow a vector and free the old buffer,
  // which would then stay cached by malloc for that thread, unused, as long
  // as it lives (sleeping, mostly).
  std::vector<Task> posted;
  std::vector<Task> swept;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!batched_.empty() && next_sweep == kNever) next_sweep = Clock::now() + sweep_delay_;
    auto wake = std::min(next_periodic, next_sweep);
    if (!deadlines_.empty()) wake = std::min(wake, deadlines_.begin()->first);
    wake_.wait_until(lock, wake, [&] {
      return stopping_ || !posted_.empty() ||
             (!deadlines_.empty() && deadlines_.begin()->first < wake) ||
             (next_sweep == kNever && !batched_.empty());
    });
    if (stopping_) break;

    const auto now = Clock::now();
    std::vector<Task> due;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      due.push_back(std::move(deadlines_.begin()->second));
      deadlines_.erase(deadlines_.begin());
    }
    posted.swap(posted_);
    if (now >= next_sweep) {
      swept.swap(batched_);
      next_sweep = kNever;
    }
    const bool periodic_now = now >= next_periodic;
    if (periodic_now) next_periodic = now + period_;

    lock.unlock();
    for (const Task& task : posted) run_task(task);
    for (const Task& task : due) run_task(task);
    for (const Task& task : swept) run_task(task);
    if (periodic_now && periodic_) run_task(periodic_);
    keep_buffer(posted);
    keep_buffer(swept);
    lock.lock();
  }
}

}  // namespace nightshift
