// The run manager's one timekeeping thread: deadlines (run time limits, the
// stop grace), a short batching delay for log and progress sweeps, starting
// worker threads and ending those parked too long, and a periodic task
// (retention pruning), so that no run needs a timer or a thread of its own
// for any of it.
//
// Thread safety: at, soon, post are [thread-safe]; stop and the destructor
// are called by the owner. Tasks run on the watchdog thread, one at a time;
// a task that throws is logged and the thread carries on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace nightshift {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;
  using Task = std::function<void()>;

  // `sweep_delay`: how long soon() tasks may wait to be batched together.
  // `periodic` runs every `period` (not at once).
  Watchdog(std::chrono::milliseconds sweep_delay, std::chrono::milliseconds period, Task periodic);
  ~Watchdog();  // stop()
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Runs `task` at `when` (or as soon as possible after).
  void at(Clock::time_point when, Task task);
  // Runs `task` within about sweep_delay, batched with others.
  void soon(Task task);
  // Runs `task` as soon as the thread is free.
  void post(Task task);

  // Runs what was posted, drops what is not due, joins the thread.
  // Idempotent.
  void stop();

 private:
  void main();
  static void run_task(const Task& task) noexcept;

  const std::chrono::milliseconds sweep_delay_;
  const std::chrono::milliseconds period_;
  const Task periodic_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::multimap<Clock::time_point, Task> deadlines_;
  std::vector<Task> batched_;
  std::vector<Task> posted_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace nightshift
