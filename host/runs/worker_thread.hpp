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
#include <new>
#include <type_traits>
#include <utility>

namespace nightshift {

class WorkerThread {
 public:
  WorkerThread() = default;
  // Starts `body` (a noexcept callable, called once) on a new thread named
  // `name` (a string literal; cut to 15 characters) with a stack of
  // `stack_bytes` (raised to the system's minimum). `body` is kept at the
  // top of the thread's own stack mapping, not on the heap, and destroyed on
  // the thread once it has been called. Throws std::system_error when the
  // thread cannot be made.
  template <class Body>
  static WorkerThread start(std::size_t stack_bytes, const char* name, Body body) {
    static_assert(std::is_nothrow_invocable_v<Body&>, "a worker's body must be noexcept");
    static_assert(std::is_nothrow_move_constructible_v<Body>);
    static_assert(sizeof(Body) <= kMostBodyBytes && alignof(Body) <= kBodyAlign,
                  "a worker's body must be small: capture pointers, not values");
    return start_body(stack_bytes, name, &body, &BodyOps<Body>::move_to, &BodyOps<Body>::run,
                      &BodyOps<Body>::destroy);
  }

  // The size of the read-write mapping (the stack, and above it what the
  // thread is started with) a thread of `stack_bytes` gets: how it shows in
  // /proc/PID/smaps, beside its guard page.
  static std::size_t stack_mapping_bytes(std::size_t stack_bytes) noexcept;

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

  bool joinable() const noexcept { return stack_ != nullptr; }
  void join() noexcept;
  // Lets the thread finish on its own (shutdown gave up on it). Its stack
  // is not reused: nobody learns when the thread is done with it.
  void detach() noexcept;

  // How many stacks the pool holds for the next threads. [thread-safe]
  static std::size_t pooled_stacks() noexcept;

  // The most a body may take, and its alignment.
  static constexpr std::size_t kMostBodyBytes = 48;
  static constexpr std::size_t kBodyAlign = 16;

 private:
  template <class Body>
  struct BodyOps {
    static void move_to(void* place, void* from) noexcept {
      ::new (place) Body(std::move(*static_cast<Body*>(from)));
    }
    static void run(void* body) noexcept { (*static_cast<Body*>(body))(); }
    static void destroy(void* body) noexcept { static_cast<Body*>(body)->~Body(); }
  };
  using BodyOp = void (*)(void*) noexcept;
  using BodyMove = void (*)(void*, void*) noexcept;
  static WorkerThread start_body(std::size_t stack_bytes, const char* name, void* body,
                                 BodyMove move_to, BodyOp run, BodyOp destroy);

  pthread_t thread_{};
  // The stack's mapping (guard page first) while the thread is ours to join;
  // null before it starts and once it is joined or detached.
  void* stack_ = nullptr;
  std::size_t stack_mapping_bytes_ = 0;
};

}  // namespace nightshift
