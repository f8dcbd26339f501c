// WorkerThread: a body called once on its thread, kept on the thread's own
// stack mapping and destroyed there; stacks from the pool, given back on
// join, reused by the next thread with fresh thread-local storage; and
// release_unused_stack giving back the pages below the live stack. Residency is read with
// mincore(2), which reports it exactly: no timing, no measurement.
#include "runs/worker_thread.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace nightshift {
namespace {

constexpr std::size_t kStackBytes = 1u << 20;

struct StackRange {
  std::uintptr_t low = 0;
  std::uintptr_t high = 0;
};

std::uintptr_t page_size() {
  return static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
}

// The calling thread's stack as pthreads reports it.
StackRange own_stack() {
  pthread_attr_t attr;
  EXPECT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
  void* addr = nullptr;
  std::size_t size = 0;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  const auto low = reinterpret_cast<std::uintptr_t>(addr);
  return {low, low + size};
}

// Resident pages among [low, high); `low` page-aligned, `high` anywhere in
// its page (a worker's stack ends a little under its mapping's end).
std::size_t resident_pages(std::uintptr_t low, std::uintptr_t high) {
  const std::size_t pages = (high - low + page_size() - 1) / page_size();
  std::vector<unsigned char> residency(pages);
  EXPECT_EQ(::mincore(reinterpret_cast<void*>(low), high - low, residency.data()), 0)
      << std::strerror(errno);
  std::size_t resident = 0;
  for (unsigned char page : residency) resident += page & 1u;
  return resident;
}

// Writes `bytes` of stack below the caller, so that those pages are touched.
__attribute__((noinline)) void touch_stack(std::size_t bytes) {
  volatile char* buffer = static_cast<volatile char*>(__builtin_alloca(bytes));
  for (std::size_t i = 0; i < bytes; i += 512) buffer[i] = 1;
  buffer[bytes - 1] = 1;
}

// The page-aligned address `depth` bytes below the caller's frame.
__attribute__((noinline)) std::uintptr_t below_here(std::uintptr_t depth) {
  const auto frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  return (frame - depth) & ~(page_size() - 1);
}

// How deep the calling thread can still go, within 256 KiB: half of what is
// left below it (sanitizer runtimes keep large thread-locals at the top of
// a thread's stack, leaving less of it to the code).
std::size_t safe_depth(const StackRange& stack) {
  const std::uintptr_t left = below_here(0) - stack.low;
  return std::min<std::uintptr_t>(256 * 1024, left / 2) & ~(page_size() - 1);
}

// What a body saw of itself and its thread.
struct Seen {
  int calls = 0;
  std::thread::id thread;
  std::uintptr_t body = 0;  // the body's own address while it ran
  StackRange stack;
  char name[16] = {};
};

// A body that records where it is; `keep` stands for what a run's body
// holds (its run), to see when the body is destroyed.
struct RecordingBody {
  Seen* seen;
  std::shared_ptr<int> keep;
  void operator()() noexcept {
    ++seen->calls;
    seen->thread = std::this_thread::get_id();
    seen->body = reinterpret_cast<std::uintptr_t>(this);
    seen->stack = own_stack();
    pthread_getname_np(pthread_self(), seen->name, sizeof seen->name);
  }
};

TEST(WorkerThreadTest, ABodyRunsOnceOnItsThreadFromTheTopOfItsStackAndIsDestroyedThere) {
  Seen seen;
  auto keep = std::make_shared<int>(7);
  WorkerThread thread =
      WorkerThread::start(kStackBytes, "ns-a-name-longer-than-15", RecordingBody{&seen, keep});
  thread.join();
  EXPECT_EQ(seen.calls, 1);
  EXPECT_NE(seen.thread, std::this_thread::get_id());
  EXPECT_STREQ(seen.name, "ns-a-name-longe") << "a thread's name is cut to 15 characters";
  // Kept above the stack pthreads was given, inside the same mapping: not
  // on the heap.
  EXPECT_GE(seen.body, seen.stack.high);
  EXPECT_LT(seen.body, seen.stack.high + page_size());
  EXPECT_GE(seen.stack.high - seen.stack.low, kStackBytes);
  EXPECT_EQ(WorkerThread::stack_mapping_bytes(kStackBytes) % page_size(), 0u);
  EXPECT_GE(WorkerThread::stack_mapping_bytes(kStackBytes), seen.stack.high - seen.stack.low);
  // Destroyed on its thread, before the join returned: what it held is let go.
  EXPECT_EQ(keep.use_count(), 1);
}

TEST(WorkerThreadTest, ReleasingTheUnusedStackDropsThePagesADeepCallTouched) {
  std::size_t depth = 0, pages = 0, before = 0, after = 0;
  WorkerThread thread = WorkerThread::start(kStackBytes, "ns-test", [&]() noexcept {
    const StackRange stack = own_stack();
    depth = safe_depth(stack);
    if (depth < 64 * 1024) return;
    const std::uintptr_t here = below_here(0);
    touch_stack(depth);
    // Well below anything live, inside what touch_stack wrote.
    const std::uintptr_t high = below_here(16 * 1024);
    const std::uintptr_t low = (here - depth + 8 * 1024 + page_size() - 1) & ~(page_size() - 1);
    pages = (high - low) / page_size();
    before = resident_pages(low, high);
    WorkerThread::release_unused_stack();
    after = resident_pages(low, high);
  });
  thread.join();
  ASSERT_GE(depth, 64u * 1024) << "the stack was smaller than the test needs";
  EXPECT_EQ(before, pages);
  EXPECT_EQ(after, 0u);
}

TEST(WorkerThreadTest, ReleasingOnAThreadThatIsNotAWorkerChangesNothing) {
  touch_stack(64 * 1024);
  const std::uintptr_t high = below_here(16 * 1024);
  const std::uintptr_t low = high - 32 * 1024;
  const std::size_t before = resident_pages(low, high);
  WorkerThread::release_unused_stack();
  EXPECT_EQ(resident_pages(low, high), before);
  EXPECT_GT(before, 0u);
}

// Linux 6.17 and later give a process a private futex hash of 16 buckets on
// a small machine, whatever its thread count; a process with worker threads
// must be back on the global hash (slot count 0). Older kernels have no
// private hash and refuse the question: nothing to check there.
TEST(WorkerThreadTest, AProcessWithWorkersUsesTheGlobalFutexHash) {
  constexpr int kPrFutexHash = 78;
  constexpr unsigned long kGetSlots = 2;
  // Some threads first, so that a kernel that has one makes a private hash.
  std::vector<WorkerThread> threads;
  for (int i = 0; i < 4; ++i)
    threads.push_back(WorkerThread::start(kStackBytes, "t", []() noexcept {}));
  for (WorkerThread& thread : threads) thread.join();
  const int slots = ::prctl(kPrFutexHash, kGetSlots, 0UL, 0UL, 0UL);
  if (slots < 0) GTEST_SKIP() << "this kernel has no private futex hash";
  EXPECT_EQ(slots, 0) << "the process still uses a private futex hash of " << slots << " slots";
}

thread_local int t_marker = 0;

TEST(WorkerThreadTest, AJoinedThreadsStackServesTheNextThreadWithFreshThreadLocals) {
  StackRange first_stack, second_stack;
  int second_saw = -1;
  std::size_t deep_resident = 1;
  {
    WorkerThread first = WorkerThread::start(kStackBytes, "ns-test", [&]() noexcept {
      first_stack = own_stack();
      t_marker = 42;
      touch_stack(safe_depth(first_stack));
    });
    first.join();
  }
  EXPECT_GE(WorkerThread::pooled_stacks(), 1u);
  // Back in the pool, the pages the deep call touched are given back.
  deep_resident = resident_pages(first_stack.low, first_stack.high - 64 * 1024);
  EXPECT_EQ(deep_resident, 0u);

  WorkerThread second = WorkerThread::start(kStackBytes, "ns-test", [&]() noexcept {
    second_stack = own_stack();
    second_saw = t_marker;
  });
  second.join();
  EXPECT_EQ(second_stack.low, first_stack.low) << "the pooled stack was not reused";
  EXPECT_EQ(second_stack.high, first_stack.high);
  EXPECT_EQ(second_saw, 0) << "a thread-local kept the previous thread's value";
}

// The permissions of the mapping that holds `address`, from /proc/self/maps
// ("rw-p", "---p"); empty when nothing is mapped there.
std::string permissions_at(std::uintptr_t address) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::uintptr_t low = 0, high = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s", &low, &high, perms) != 3) {
      continue;
    }
    if (address >= low && address < high) return perms;
  }
  return {};
}

TEST(WorkerThreadTest, BelowEachStackIsAGuardPageWithoutAccess) {
  StackRange stack;
  std::string below, bottom;
  WorkerThread thread = WorkerThread::start(kStackBytes, "ns-test", [&]() noexcept {
    stack = own_stack();
    below = permissions_at(stack.low - 1);
    bottom = permissions_at(stack.low);
  });
  thread.join();
  EXPECT_EQ(below, "---p") << "an overflow would run into other memory";
  EXPECT_EQ(bottom, "rw-p");
  EXPECT_GE(stack.high - stack.low, kStackBytes);
}

}  // namespace
}  // namespace nightshift
