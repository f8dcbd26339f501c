// One run's worker thread: a pthread with an explicit stack size (so that
// thousands of sleeping runs stay small), owned like a std::thread: joined by
// its owner, or detached on purpose. Never leaked: a joinable WorkerThread
// joins when destroyed.
//
// A thread whose body has returned is not ended at once: join() parks it
// (or, let go with park_when_done(), it parks itself), and the next start()
// with the same stack size and the same affinity hands it the next body. Making and ending a thread
// (clone, the kernel's task, thread-local storage, malloc's arena) cost more than everything else a
// no-op run does; a parked thread takes a body with one futex wake. A thread
// only ever runs bodies of one affinity (the run manager uses the agent's
// loaded library): what an agent leaves on its thread (thread_local values,
// pthread keys) is seen only by later runs of the same library, and the
// thread holds the affinity (so the library stays loaded) until it ends, so
// that no thread-exit destructor of a library is called after it is
// unloaded. Before it is parked a thread gets the global locale back (see
// tidy()) and gives back its stack pages below the top 16 KiB. At most
// kMostIdle threads are parked, process-wide: a join past that ends the
// thread parked longest, and retire_idle() ends those parked long enough.
//
// Stacks come from a pool of this module's own mappings, each with a guard
// page, and go back to it when a thread ends. glibc keeps only 40 MiB of
// freed stacks; past that it unmaps them, and an unmap interrupts every
// core to flush its TLB. A stack in the pool keeps only its top pages
// resident; a new thread on it has fresh thread-local storage.
//
// A thread's stack pages stay resident once touched, however briefly: an
// agent that parsed its params with a 4 KiB buffer on the stack keeps that
// page for as long as it then sleeps. release_unused_stack() gives back the
// pages below the caller's frame; the run's long waits call it.
#pragma once

#include <pthread.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace nightshift {

class WorkerThread {
 public:
  WorkerThread() = default;
  // Starts `body` (a noexcept callable, called once) on a thread named
  // `name` (a string literal; cut to 15 characters) with a stack of
  // `stack_bytes` (raised to the system's minimum): a parked thread of the
  // same stack size and `affinity` when there is one, else a new thread,
  // which keeps `affinity` until it ends (null is an affinity too). `body`
  // is kept at the top of the thread's own stack mapping, not on the heap,
  // and destroyed on the thread once it has been called. Throws
  // std::system_error when no thread can be made.
  template <class Body>
  static WorkerThread start(std::size_t stack_bytes, const char* name,
                            std::shared_ptr<const void> affinity, Body body) {
    WorkerThread thread;
    start_into(thread, stack_bytes, name, std::move(affinity), std::move(body));
    return thread;
  }
  // As start(), with the handle placed in `slot` (empty) before the body
  // may begin: a body that takes its own handle from there (to hand it on,
  // or let it go) finds it without a lock held around the start (a thread
  // woken into a lock still held sleeps again at once). Until the body has
  // begun, nobody else may use `slot`. On failure `slot` stays empty.
  template <class Body>
  static void start_into(WorkerThread& slot, std::size_t stack_bytes, const char* name,
                         std::shared_ptr<const void> affinity, Body body) {
    static_assert(std::is_nothrow_invocable_v<Body&>, "a worker's body must be noexcept");
    static_assert(std::is_nothrow_move_constructible_v<Body>);
    static_assert(sizeof(Body) <= kMostBodyBytes && alignof(Body) <= kBodyAlign,
                  "a worker's body must be small: capture pointers, not values");
    start_body(slot, stack_bytes, name, std::move(affinity), &body, &BodyOps<Body>::move_to,
               &BodyOps<Body>::run, &BodyOps<Body>::destroy);
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

  // On a WorkerThread, between two runs done in one body (a run manager's
  // thread that goes on with the next queued run), and by the thread itself
  // after each body: sets the global locale again, in case the body set one
  // for its thread and did not take it back. What else a body changes of its
  // thread (its signal mask, its scheduling, thread_local values) it must
  // take back itself. A no-op on any other thread. [acts on the calling
  // thread only]
  static void tidy() noexcept;

  bool joinable() const noexcept { return control_ != nullptr; }
  // Waits until the body has returned (and been destroyed); then the thread
  // is parked for a next body (see kMostIdle).
  void join() noexcept;
  // Lets go of the thread, which parks itself once its body has returned,
  // as join() would park it, without anybody waiting for that. For a body
  // about to return (its own last steps may call this on its handle):
  // retire_idle() waits for the threads let go this way to be parked.
  void park_when_done() noexcept;
  // Lets the thread finish on its own (shutdown gave up on it): it ends
  // after its body, letting go of its affinity on its way out. Its stack is
  // not reused: nobody learns when the thread is done with it.
  void detach() noexcept;

  // Ends the threads parked for at least `idle_for` (all of them with
  // zero), once every thread let go with park_when_done() has parked, and
  // waits for them to end; then lets go of their affinities. Returns how
  // many it ended. [thread-safe]
  static std::size_t retire_idle(std::chrono::steady_clock::duration idle_for);
  // How many threads are parked, or let go to park themselves. [thread-safe]
  static std::size_t idle_threads() noexcept;
  // How many stacks the pool holds for the next threads. [thread-safe]
  static std::size_t pooled_stacks() noexcept;

  // The most a body may take, and its alignment.
  static constexpr std::size_t kMostBodyBytes = 48;
  static constexpr std::size_t kBodyAlign = 16;
  // The most threads parked at once, process-wide.
  static constexpr std::size_t kMostIdle = 64;

  // A thread's own state, at the top of its stack mapping (defined in the
  // .cpp; public only so that its helpers there can name it).
  struct Control;

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
  static void start_body(WorkerThread& slot, std::size_t stack_bytes, const char* name,
                         std::shared_ptr<const void> affinity, void* body, BodyMove move_to,
                         BodyOp run, BodyOp destroy);

  // While the body is ours to join; null before it starts and once it is
  // joined or detached.
  Control* control_ = nullptr;
};

}  // namespace nightshift
