#include "runs/worker_thread.hpp"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

namespace nightshift {

namespace {

// What a thread is started with, at the top of its own stack mapping, above
// the stack pthread is given (on the page that holds pthread's descriptor,
// resident from the thread's first instruction): a run's thread keeps no
// heap block for its start.
struct alignas(WorkerThread::kBodyAlign) Start {
  void (*run)(void*) noexcept;
  void (*destroy)(void*) noexcept;
  std::uintptr_t stack_low;
  const char* name;
  alignas(WorkerThread::kBodyAlign) unsigned char body[WorkerThread::kMostBodyBytes];
};

// The lowest usable address of this thread's stack (above its guard), when
// the thread is a WorkerThread; null elsewhere.
thread_local std::uintptr_t t_stack_low = 0;

void* thread_entry(void* arg) noexcept {
  Start& start = *static_cast<Start*>(arg);
  char name[16];  // what a thread's name may hold, with its end
  std::snprintf(name, sizeof name, "%s", start.name);
  pthread_setname_np(pthread_self(), name);
  t_stack_low = start.stack_low;
  start.run(start.body);
  start.destroy(start.body);
  return nullptr;
}

std::size_t page_size() noexcept {
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
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

  // A stack whose thread has been joined.
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

// The frame address of a function called from the caller: below every byte
// of the caller's live stack. Not inlined, so that it is a real call.
__attribute__((noinline)) std::uintptr_t below_callers_stack() noexcept {
  const auto frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  asm volatile("" ::: "memory");  // a call the optimizer keeps
  return frame;
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
// stack asked for (at least the system's minimum) and, above it, its Start.
std::size_t usable_bytes(std::size_t stack_bytes) noexcept {
  const std::size_t page = page_size();
  const auto min_stack = static_cast<std::size_t>(PTHREAD_STACK_MIN);
  return (std::max(stack_bytes, min_stack) + sizeof(Start) + page - 1) / page * page;
}

}  // namespace

std::size_t WorkerThread::stack_mapping_bytes(std::size_t stack_bytes) noexcept {
  return usable_bytes(stack_bytes);
}

WorkerThread WorkerThread::start_body(std::size_t stack_bytes, const char* name, void* body,
                                      BodyMove move_to, BodyOp run, BodyOp destroy) {
  use_the_global_futex_hash();
  const std::size_t page = page_size();
  const std::size_t usable = usable_bytes(stack_bytes);
  const std::size_t mapping_bytes = usable + page;  // and a guard page
  StackPool& pool = StackPool::instance();
  void* const mapping = pool.take(mapping_bytes);
  char* const stack = static_cast<char*>(mapping) + page;
  // The Start at the very top; the thread's stack is everything below it.
  auto* const start = ::new (stack + usable - sizeof(Start)) Start{};
  start->run = run;
  start->destroy = destroy;
  start->stack_low = reinterpret_cast<std::uintptr_t>(stack);
  start->name = name;
  move_to(start->body, body);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, usable - sizeof(Start));
  WorkerThread thread;
  const int rc = pthread_create(&thread.thread_, &attr, &thread_entry, start);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    destroy(start->body);
    pool.give_back(mapping, mapping_bytes);
    throw std::system_error(rc, std::generic_category(), "could not start a thread");
  }
  thread.stack_ = mapping;
  thread.stack_mapping_bytes_ = mapping_bytes;
  return thread;
}

std::size_t WorkerThread::pooled_stacks() noexcept {
  return StackPool::instance().size();
}

void WorkerThread::release_unused_stack() noexcept {
  if (t_stack_low == 0) return;
  const auto page = static_cast<std::uintptr_t>(page_size());
  // Keep 512 bytes below the live stack: the red zone, madvise's own call
  // (a syscall stub), and the first frames of the wait that follows.
  constexpr std::uintptr_t kMargin = 512;
  const std::uintptr_t keep_from = (below_callers_stack() - kMargin) & ~(page - 1);
  const std::uintptr_t low = (t_stack_low + page - 1) & ~(page - 1);
  if (keep_from <= low) return;
  // Advice only: on failure the pages simply stay resident.
  ::madvise(reinterpret_cast<void*>(low), keep_from - low, MADV_DONTNEED);
}

WorkerThread::WorkerThread(WorkerThread&& other) noexcept
    : thread_(other.thread_),
      stack_(std::exchange(other.stack_, nullptr)),
      stack_mapping_bytes_(std::exchange(other.stack_mapping_bytes_, 0)) {}

WorkerThread& WorkerThread::operator=(WorkerThread&& other) noexcept {
  if (this != &other) {
    join();
    thread_ = other.thread_;
    stack_ = std::exchange(other.stack_, nullptr);
    stack_mapping_bytes_ = std::exchange(other.stack_mapping_bytes_, 0);
  }
  return *this;
}

WorkerThread::~WorkerThread() {
  join();
}

void WorkerThread::join() noexcept {
  if (!joinable()) return;
  pthread_join(thread_, nullptr);
  // The thread is gone: nothing runs on its stack any more.
  StackPool::instance().give_back(std::exchange(stack_, nullptr), stack_mapping_bytes_);
}

void WorkerThread::detach() noexcept {
  if (!joinable()) return;
  pthread_detach(thread_);
  stack_ = nullptr;  // left mapped: the thread may still be on it
}

}  // namespace nightshift
