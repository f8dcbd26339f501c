#include "runs/worker_thread.hpp"

#include <locale.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include "runs/futex.hpp"

namespace nightshift {

// A thread's own control block, at the top of its stack mapping, above the
// stack pthread is given (on the page that holds pthread's descriptor,
// resident from the thread's first instruction): a run's thread keeps no
// heap block for its start, and a parked thread is handed its next body
// here.
struct alignas(WorkerThread::kBodyAlign) WorkerThread::Control {
  // What the thread is doing, or told to do (it and its owner wait on it),
  // and kSleeper while one of them sleeps on it.
  enum : std::uint32_t {
    kRunning = 0,       // a body is in place or running
    kDone = 1,          // the body returned; the thread waits for the next word
    kExit = 2,          // told to end
    kDetached = 3,      // its owner let go of it: it ends after its body
    kParkWhenDone = 4,  // its owner let go of it: it parks itself after its body
  };
  std::atomic<std::uint32_t> state{kRunning};
  void (*run)(void*) noexcept = nullptr;  // null once a body is done, until the next
  void (*destroy)(void*) noexcept = nullptr;
  const char* name = nullptr;
  std::uintptr_t stack_low = 0;
  void* mapping = nullptr;  // guard page first
  std::size_t mapping_bytes = 0;
  pthread_t thread{};
  std::shared_ptr<const void> affinity;
  std::chrono::steady_clock::time_point idle_since{};
  alignas(WorkerThread::kBodyAlign) unsigned char body[WorkerThread::kMostBodyBytes];
};

namespace {

using Control = WorkerThread::Control;

// The state word's high bit: a thread sleeps on the word, so whoever
// changes it must wake it. A change nobody waits for makes no system call;
// a wait sleeps at once, without spinning (see runs/futex.hpp).
constexpr std::uint32_t kSleeper = 0x8000'0000u;

// Waits while `word` holds `value`; returns what it holds then.
std::uint32_t wait_while(std::atomic<std::uint32_t>& word, std::uint32_t value) noexcept {
  std::uint32_t now = word.load(std::memory_order_acquire);
  for (;;) {
    if ((now & ~kSleeper) != value) return now & ~kSleeper;
    if (now == value &&
        !word.compare_exchange_weak(now, value | kSleeper, std::memory_order_acquire)) {
      continue;  // changed meanwhile: `now` holds what it holds now
    }
    futex::wait(word, value | kSleeper);
    now = word.load(std::memory_order_acquire);
  }
}

// Sets `word` to `value` and wakes whoever sleeps on it; returns what it
// held before.
std::uint32_t set_state(std::atomic<std::uint32_t>& word, std::uint32_t value) noexcept {
  const std::uint32_t before = word.exchange(value, std::memory_order_acq_rel);
  if ((before & kSleeper) != 0) futex::wake_all(word);
  return before & ~kSleeper;
}

// The lowest usable address of this thread's stack (above its guard), when
// the thread is a WorkerThread; null elsewhere.
thread_local std::uintptr_t t_stack_low = 0;

// The frame address of a function called from the caller: below every byte
// of the caller's live stack. Not inlined, so that it is a real call.
__attribute__((noinline)) std::uintptr_t below_callers_stack() noexcept {
  const auto frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  asm volatile("" ::: "memory");  // a call the optimizer keeps
  return frame;
}

std::size_t page_size() noexcept {
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// Linux 6.17 gives each process a private futex hash, sized by the smaller
// of its thread count and the CPU count: 16 buckets on a 2-core machine,
// however many threads wait. With thousands of runs each waiting on its own
// condition variable, every wake then walks a chain of hundreds of waiters
// under the bucket's spinlock: at 9,000 sleeping runs on 2 cores, those walks
// took more than a third of the machine and starved the store writer. The
// process goes back to the global hash, the only one before 6.17, which the
// kernel sizes by the machine's CPU count (256 buckets per CPU). Older
// kernels refuse the call (EINVAL) and use the global hash already.
void use_the_global_futex_hash() noexcept {
  constexpr int kPrFutexHash = 78;          // PR_FUTEX_HASH; Debian 12's headers predate it
  constexpr unsigned long kSetSlots = 1;    // PR_FUTEX_HASH_SET_SLOTS
  constexpr unsigned long kGlobalHash = 0;  // its size argument: "the global hash"
  static const bool done = [] {
    ::prctl(kPrFutexHash, kSetSlots, kGlobalHash, 0UL, 0UL);  // advice: ignored on failure
    return true;
  }();
  static_cast<void>(done);
}

// The read-write part of a thread's stack mapping: whole pages, room for the
// stack asked for (at least the system's minimum) and, above it, its Control.
std::size_t usable_bytes(std::size_t stack_bytes) noexcept {
  const std::size_t page = page_size();
  const auto min_stack = static_cast<std::size_t>(PTHREAD_STACK_MIN);
  return (std::max(stack_bytes, min_stack) + sizeof(Control) + page - 1) / page * page;
}

// Gives back this thread's stack pages below `keep_from` (rounded down to a
// page). Advice only: on failure the pages simply stay resident.
void release_stack_below(std::uintptr_t keep_from) noexcept {
  const auto page = static_cast<std::uintptr_t>(page_size());
  keep_from &= ~(page - 1);
  const std::uintptr_t low = (t_stack_low + page - 1) & ~(page - 1);
  if (t_stack_low == 0 || keep_from <= low) return;
  ::madvise(reinterpret_cast<void*>(low), keep_from - low, MADV_DONTNEED);
}

// What a parked thread keeps of its stack: the top pages, where its next
// body's first frames go at once.
constexpr std::uintptr_t kParkedResident = 16 * 1024;

void set_name(const char* name) noexcept {
  char cut[16];  // what a thread's name may hold, with its end
  std::snprintf(cut, sizeof cut, "%s", name);
  pthread_setname_np(pthread_self(), cut);
}

// Freed stacks, kept for the next threads of the same size. Bounded in
// address space; what it keeps resident is bounded by releasing all but the
// top of each stack as it comes back (what glibc does with its own).
class StackPool {
 public:
  static StackPool& instance() {
    // Never destroyed: threads may be joined while statics are torn down.
    static auto* pool = new StackPool;
    return *pool;
  }

  // A mapping of a guard page plus `usable` bytes (a page multiple).
  // Throws std::system_error when none can be made.
  void* take(std::size_t mapping_bytes) {
    {
      std::lock_guard lock(mutex_);
      for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
        if (it->bytes == mapping_bytes) {
          void* stack = it->base;
          free_.erase(std::next(it).base());
          pooled_bytes_ -= mapping_bytes;
          return stack;
        }
      }
    }
    void* base = ::mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      throw std::system_error(errno, std::generic_category(), "could not map a thread stack");
    }
    if (::mprotect(base, page_size(), PROT_NONE) != 0) {
      const int error = errno;
      ::munmap(base, mapping_bytes);
      throw std::system_error(error, std::generic_category(), "could not guard a thread stack");
    }
    return base;
  }

  // A stack whose thread has ended.
  void give_back(void* base, std::size_t mapping_bytes) noexcept {
    // Keep the top pages resident (the next thread's descriptor, TLS and
    // first frames go there at once); give back what a deep call touched.
    const std::size_t usable = mapping_bytes - page_size();
    const std::size_t keep = std::min(kKeptResident, usable);
    ::madvise(static_cast<char*>(base) + page_size(), usable - keep, MADV_DONTNEED);
    {
      std::lock_guard lock(mutex_);
      if (pooled_bytes_ + mapping_bytes <= kMostPooledBytes) {
        try {
          free_.push_back({base, mapping_bytes});
          pooled_bytes_ += mapping_bytes;
          return;
        } catch (...) {
          // No room to remember it: unmapped below.
        }
      }
    }
    ::munmap(base, mapping_bytes);
  }

  std::size_t size() const noexcept {
    std::lock_guard lock(mutex_);
    return free_.size();
  }

 private:
  struct Free {
    void* base;
    std::size_t bytes;
  };
  static constexpr std::size_t kMostPooledBytes = std::size_t{256} << 20;  // address space only
  static constexpr std::size_t kKeptResident = 16 * 1024;
  mutable std::mutex mutex_;
  std::vector<Free> free_;
  std::size_t pooled_bytes_ = 0;
};

// Ends a thread that waits for its next word (parked, or never handed to the
// pool), waits for it, gives its stack back, and lets go of its affinity
// only then (nothing of the library runs on the thread any more).
void end_thread(Control* control) noexcept {
  set_state(control->state, Control::kExit);
  pthread_join(control->thread, nullptr);
  const std::shared_ptr<const void> affinity = std::move(control->affinity);
  void* const mapping = control->mapping;
  const std::size_t mapping_bytes = control->mapping_bytes;
  control->~Control();
  StackPool::instance().give_back(mapping, mapping_bytes);
}

// The parked threads, the most recently parked last.
class IdleThreads {
 public:
  static IdleThreads& instance() {
    // Never destroyed: threads may be joined while statics are torn down.
    static auto* idle = new IdleThreads;
    return *idle;
  }

  // The most recently parked thread for `mapping_bytes` and `affinity`;
  // null when there is none.
  Control* take(std::size_t mapping_bytes, const void* affinity) noexcept {
    std::lock_guard lock(mutex_);
    for (auto it = parked_.rbegin(); it != parked_.rend(); ++it) {
      Control* control = *it;
      if (control->mapping_bytes == mapping_bytes && control->affinity.get() == affinity) {
        parked_.erase(std::next(it).base());
        return control;
      }
    }
    return nullptr;
  }

  // A thread whose body returned: parked. When kMostIdle are parked
  // already, the one parked longest is ended for it: the pool keeps the
  // threads most recently used, whatever their affinity.
  void park(Control* control) noexcept {
    Control* longest = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (parked_.size() == WorkerThread::kMostIdle) {
        longest = parked_.front();
        parked_.erase(parked_.begin());
      }
      control->idle_since = std::chrono::steady_clock::now();
      parked_.push_back(control);  // never reallocates: reserved
    }
    if (longest != nullptr) end_thread(longest);
  }

  // A thread let go to park itself once its body returns
  // (park_when_done): counted as arriving until it has.
  void expect() noexcept { arriving_.fetch_add(1); }
  // On that thread, its body returned: parked.
  void arrive(Control* control) noexcept {
    park(control);
    if (arriving_.fetch_sub(1) == 1 && waiting_for_arrivals_.load() != 0) {
      futex::wake_all(arriving_);
    }
  }
  // A thread expected whose body had returned already: parked by its owner.
  void arrived_before(Control* control) noexcept {
    park(control);
    arriving_.fetch_sub(1);
  }

  std::size_t retire(std::chrono::steady_clock::duration idle_for) {
    wait_for_arrivals();
    std::vector<Control*> ending;
    {
      const auto now = std::chrono::steady_clock::now();
      std::lock_guard lock(mutex_);
      // Oldest first: they are at the front.
      auto last = parked_.begin();
      while (last != parked_.end() && now - (*last)->idle_since >= idle_for) ++last;
      ending.assign(parked_.begin(), last);
      parked_.erase(parked_.begin(), last);
    }
    for (Control* control : ending) end_thread(control);
    return ending.size();
  }

  // Parked, or arriving.
  std::size_t size() const noexcept {
    // Arriving first: a thread that arrives meanwhile is counted once, or
    // twice, never not at all.
    const std::size_t arriving = arriving_.load();
    std::lock_guard lock(mutex_);
    return parked_.size() + arriving;
  }

 private:
  IdleThreads() { parked_.reserve(WorkerThread::kMostIdle); }

  // Until every thread expected has arrived. Short: a thread is let go in
  // its body's last steps. (Sequentially consistent, with arrive(): either
  // the arriving thread sees the waiter and wakes it, or the waiter sees
  // the count the thread left.)
  void wait_for_arrivals() noexcept {
    waiting_for_arrivals_.fetch_add(1);
    for (std::uint32_t now; (now = arriving_.load()) != 0;) futex::wait(arriving_, now);
    waiting_for_arrivals_.fetch_sub(1);
  }

  std::atomic<std::uint32_t> arriving_{0};
  std::atomic<std::uint32_t> waiting_for_arrivals_{0};

  mutable std::mutex mutex_;
  std::vector<Control*> parked_;
};

void* thread_entry(void* arg) noexcept {
  Control& self = *static_cast<Control*>(arg);
  t_stack_low = self.stack_low;
  const char* named = nullptr;
  for (;;) {
    if (self.name != named) {
      named = self.name;
      set_name(named);
    }
    self.run(self.body);
    self.destroy(self.body);
    self.run = nullptr;  // until a next body is handed over
    WorkerThread::tidy();
    // Parked, it keeps only the top of its stack.
    release_stack_below(below_callers_stack() - kParkedResident);
    std::uint32_t next = set_state(self.state, Control::kDone);  // its owner may be joining
    if (next == Control::kParkWhenDone) {
      IdleThreads::instance().arrive(&self);  // then waits for its next word, as parked
      next = Control::kDone;
    }
    if (next != Control::kDetached) {
      next = wait_while(self.state, Control::kDone);
      // A next body is in place: handed over with kRunning, and perhaps let
      // go (kDetached, kParkWhenDone) before this thread woke.
      if (self.run != nullptr) continue;
    }
    // Told to end by whoever ends it (and then lets go of the affinity), or
    // detached: nobody else will, so the thread lets go of it itself.
    if (next == Control::kDetached) self.affinity.reset();
    return nullptr;
  }
}

}  // namespace

std::size_t WorkerThread::stack_mapping_bytes(std::size_t stack_bytes) noexcept {
  return usable_bytes(stack_bytes);
}

void WorkerThread::start_body(WorkerThread& slot, std::size_t stack_bytes, const char* name,
                              std::shared_ptr<const void> affinity, void* body, BodyMove move_to,
                              BodyOp run, BodyOp destroy) {
  slot.join();  // as an assignment of start()'s handle would
  use_the_global_futex_hash();
  const std::size_t page = page_size();
  const std::size_t usable = usable_bytes(stack_bytes);
  const std::size_t mapping_bytes = usable + page;  // and a guard page
  if (Control* parked = IdleThreads::instance().take(mapping_bytes, affinity.get())) {
    parked->run = run;
    parked->destroy = destroy;
    parked->name = name;
    move_to(parked->body, body);
    slot.control_ = parked;  // before the thread may begin (the state's release orders it)
    set_state(parked->state, Control::kRunning);
    return;
  }
  StackPool& pool = StackPool::instance();
  void* const mapping = pool.take(mapping_bytes);
  char* const stack = static_cast<char*>(mapping) + page;
  // The Control at the very top; the thread's stack is everything below it.
  auto* const control = ::new (stack + usable - sizeof(Control)) Control{};
  control->run = run;
  control->destroy = destroy;
  control->name = name;
  control->stack_low = reinterpret_cast<std::uintptr_t>(stack);
  control->mapping = mapping;
  control->mapping_bytes = mapping_bytes;
  control->affinity = std::move(affinity);
  move_to(control->body, body);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, usable - sizeof(Control));
  slot.control_ = control;  // before the thread may begin (pthread_create orders it)
  const int rc = pthread_create(&control->thread, &attr, &thread_entry, control);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    slot.control_ = nullptr;
    destroy(control->body);
    control->~Control();
    pool.give_back(mapping, mapping_bytes);
    throw std::system_error(rc, std::generic_category(), "could not start a thread");
  }
}

std::size_t WorkerThread::retire_idle(std::chrono::steady_clock::duration idle_for) {
  return IdleThreads::instance().retire(idle_for);
}

std::size_t WorkerThread::idle_threads() noexcept {
  return IdleThreads::instance().size();
}

std::size_t WorkerThread::pooled_stacks() noexcept {
  return StackPool::instance().size();
}

void WorkerThread::tidy() noexcept {
  if (t_stack_low == 0) return;
  // A locale a body set for its thread (uselocale) and did not take back.
  uselocale(LC_GLOBAL_LOCALE);
}

void WorkerThread::release_unused_stack() noexcept {
  // Keep 512 bytes below the live stack: the red zone, madvise's own call
  // (a syscall stub), and the first frames of the wait that follows.
  constexpr std::uintptr_t kMargin = 512;
  release_stack_below(below_callers_stack() - kMargin);
}

WorkerThread::WorkerThread(WorkerThread&& other) noexcept
    : control_(std::exchange(other.control_, nullptr)) {}

WorkerThread& WorkerThread::operator=(WorkerThread&& other) noexcept {
  if (this != &other) {
    join();
    control_ = std::exchange(other.control_, nullptr);
  }
  return *this;
}

WorkerThread::~WorkerThread() {
  join();
}

void WorkerThread::join() noexcept {
  if (!joinable()) return;
  Control* const control = std::exchange(control_, nullptr);
  wait_while(control->state, Control::kRunning);
  // The body has returned and is destroyed; the thread waits for its next word.
  IdleThreads::instance().park(control);
}

void WorkerThread::park_when_done() noexcept {
  if (!joinable()) return;
  Control* const control = std::exchange(control_, nullptr);
  IdleThreads& idle = IdleThreads::instance();
  idle.expect();
  // Its owner is not waiting on the word (this is its owner), so it holds
  // kRunning or kDone, without kSleeper, unless the thread sleeps on kDone.
  std::uint32_t running = Control::kRunning;
  if (!control->state.compare_exchange_strong(running, Control::kParkWhenDone,
                                              std::memory_order_acq_rel)) {
    // The body has returned already and the thread waits for its next word.
    idle.arrived_before(control);
  }
}

void WorkerThread::detach() noexcept {
  if (!joinable()) return;
  Control* const control = std::exchange(control_, nullptr);
  pthread_detach(control->thread);
  // Its stack is left mapped: the thread may still be on it.
  // Waiting for its next word, it ends now; running, it ends after its body.
  set_state(control->state, Control::kDetached);
}

}  // namespace nightshift
