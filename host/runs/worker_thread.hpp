// One run's worker thread: a pthread with an explicit stack size (so that
// thousands of sleeping runs stay small), owned like a std::thread: joined by
// its owner, or detached on purpose. Never leaked: a joinable WorkerThread
// joins when destroyed.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <functional>

namespace nightshift {

class WorkerThread {
 public:
  WorkerThread() = default;
  // Starts `body` on a new thread named `name` (at most 15 characters) with
  // a stack of `stack_bytes` (raised to the system's minimum). Throws
  // std::system_error when the thread cannot be made.
  static WorkerThread start(std::size_t stack_bytes, const char* name, std::function<void()> body);

  WorkerThread(WorkerThread&& other) noexcept;
  WorkerThread& operator=(WorkerThread&& other) noexcept;
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;
  ~WorkerThread();

  bool joinable() const noexcept { return joinable_; }
  void join() noexcept;
  // Lets the thread finish on its own (shutdown gave up on it).
  void detach() noexcept;

 private:
  pthread_t thread_{};
  bool joinable_ = false;
};

}  // namespace nightshift
