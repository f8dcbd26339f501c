// One run's worker thread: a pthread with an explicit stack size (so that
// thousands of sleeping runs stay small), owned like a std::thread: joined by
// its owner, or detached on purpose. Never leaked: a joinable WorkerThread
// joins when destroyed.
//
// Stacks come from a pool of this module's own mappings, each with a guard
// page, and go back to it when the thread is joined. glibc keeps only 40 MiB
// of freed stacks; past that it unmaps them, and an unmap interrupts every
// core to flush its TLB: with runs ending by the thousand per second that
// cost more than a third of the engine's throughput. A stack in the pool
// keeps only its top pages resident. Each run still gets a new thread (and
// so fresh thread-local storage); only the memory under it is reused.
//
// A thread's stack pages stay resident once touched, however briefly: an
// agent that parsed its params with a 4 KiB buffer on the stack keeps that
// page for as long as it then sleeps. release_unused_stack() gives back the
// pages below the caller's frame; the run's long waits call it.
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

  // On a WorkerThread: returns the stack pages below the caller's live
  // stack (keeping 512 bytes for the wait about to start) to the system, so
  // that a thread about to wait long holds only the stack it is using. They
  // come back zeroed if the thread goes deeper again. A no-op on any other
  // thread. [thread-safe: acts on the calling thread only]
  static void release_unused_stack() noexcept;

  bool joinable() const noexcept { return joinable_; }
  void join() noexcept;
  // Lets the thread finish on its own (shutdown gave up on it). Its stack
  // is not reused: nobody learns when the thread is done with it.
  void detach() noexcept;

  // How many stacks the pool holds for the next threads. [thread-safe]
  static std::size_t pooled_stacks() noexcept;

 private:
  pthread_t thread_{};
  bool joinable_ = false;
  void* stack_ = nullptr;  // the stack's mapping (guard page first); null when not ours
  std::size_t stack_mapping_bytes_ = 0;
};

}  // namespace nightshift
