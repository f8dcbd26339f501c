// WorkerThread: a body called once on its thread, kept on the thread's own
// stack mapping and destroyed there; a joined thread parked for the next
// body of its affinity, holding the affinity until it is retired; stacks of
// retired threads reused by new threads with fresh thread-local storage; and
// release_unused_stack giving back the pages below the live stack.
// Residency is read with mincore(2), which reports it exactly: no timing, no
// measurement.
#include "runs/worker_thread.hpp"

#include <gtest/gtest.h>
#include <locale.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
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
  WorkerThread thread = WorkerThread::start(kStackBytes, "ns-a-name-longer-than-15", nullptr,
                                            RecordingBody{&seen, keep});
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
  WorkerThread thread = WorkerThread::start(kStackBytes, "ns-test", nullptr, [&]() noexcept {
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
    threads.push_back(WorkerThread::start(kStackBytes, "t", nullptr, []() noexcept {}));
  for (WorkerThread& thread : threads) thread.join();
  const int slots = ::prctl(kPrFutexHash, kGetSlots, 0UL, 0UL, 0UL);
  if (slots < 0) GTEST_SKIP() << "this kernel has no private futex hash";
  EXPECT_EQ(slots, 0) << "the process still uses a private futex hash of " << slots << " slots";
}

thread_local int t_marker = 0;

// A fresh start for each test of the idle threads: none parked.
class IdleWorkerThreadTest : public ::testing::Test {
 protected:
  void SetUp() override { WorkerThread::retire_idle(std::chrono::steady_clock::duration::zero()); }
  void TearDown() override { SetUp(); }
};

TEST_F(IdleWorkerThreadTest, AJoinedThreadTakesTheNextBodyOfItsAffinity) {
  const auto library = std::make_shared<int>(1);
  Seen first, second;
  int second_saw = -1;
  WorkerThread::start(kStackBytes, "ns-first", library, [&]() noexcept {
    first.thread = std::this_thread::get_id();
    t_marker = 42;
  }).join();
  EXPECT_EQ(WorkerThread::idle_threads(), 1u);
  EXPECT_EQ(library.use_count(), 2) << "a parked thread holds its affinity";
  WorkerThread::start(kStackBytes, "ns-second", library, [&]() noexcept {
    second.thread = std::this_thread::get_id();
    second_saw = t_marker;
    pthread_getname_np(pthread_self(), second.name, sizeof second.name);
  }).join();
  EXPECT_EQ(second.thread, first.thread) << "the parked thread was not reused";
  EXPECT_EQ(second_saw, 42) << "runs of one library share their thread's thread-locals";
  EXPECT_STREQ(second.name, "ns-second") << "the next body's name is the thread's";
  EXPECT_EQ(WorkerThread::idle_threads(), 1u);
}

TEST_F(IdleWorkerThreadTest, ABodyOfAnotherAffinityGetsAnotherThreadWithFreshThreadLocals) {
  const auto one = std::make_shared<int>(1);
  const auto other = std::make_shared<int>(2);
  std::thread::id first, second;
  int second_saw = -1;
  WorkerThread::start(kStackBytes, "ns-test", one, [&]() noexcept {
    first = std::this_thread::get_id();
    t_marker = 42;
  }).join();
  WorkerThread::start(kStackBytes, "ns-test", other, [&]() noexcept {
    second = std::this_thread::get_id();
    second_saw = t_marker;
  }).join();
  EXPECT_NE(second, first);
  EXPECT_EQ(second_saw, 0) << "a thread-local leaked from another library's run";
  EXPECT_EQ(WorkerThread::idle_threads(), 2u);
}

TEST_F(IdleWorkerThreadTest, RetiringEndsTheThreadsParkedLongEnoughAndLetsGoOfTheirAffinity) {
  const auto library = std::make_shared<int>(1);
  WorkerThread::start(kStackBytes, "ns-test", library, []() noexcept {}).join();
  EXPECT_EQ(WorkerThread::retire_idle(std::chrono::hours(1)), 0u);
  EXPECT_EQ(WorkerThread::idle_threads(), 1u);
  EXPECT_EQ(library.use_count(), 2);
  EXPECT_EQ(WorkerThread::retire_idle(std::chrono::steady_clock::duration::zero()), 1u);
  EXPECT_EQ(WorkerThread::idle_threads(), 0u);
  EXPECT_EQ(library.use_count(), 1) << "a retired thread still holds its affinity";
}

TEST_F(IdleWorkerThreadTest, AtMostKMostIdleThreadsAreParked) {
  constexpr std::size_t kThreads = WorkerThread::kMostIdle + 3;
  std::atomic<bool> go{false};
  std::atomic<std::size_t> waiting{0};
  std::vector<WorkerThread> threads;
  // All at once, so that each is a thread of its own.
  for (std::size_t i = 0; i < kThreads; ++i) {
    threads.push_back(WorkerThread::start(kStackBytes, "ns-test", nullptr, [&]() noexcept {
      waiting.fetch_add(1);
      go.wait(false);
    }));
  }
  while (waiting.load() < kThreads) std::this_thread::yield();
  go.store(true);
  go.notify_all();
  for (WorkerThread& thread : threads) thread.join();
  EXPECT_EQ(WorkerThread::idle_threads(), WorkerThread::kMostIdle);
}

TEST_F(IdleWorkerThreadTest, AFullPoolEndsTheThreadParkedLongestForTheOneParkedLast) {
  std::vector<std::shared_ptr<int>> libraries;
  for (std::size_t i = 0; i < WorkerThread::kMostIdle; ++i) {
    libraries.push_back(std::make_shared<int>(static_cast<int>(i)));
    WorkerThread::start(kStackBytes, "ns-test", libraries.back(), []() noexcept {}).join();
  }
  ASSERT_EQ(WorkerThread::idle_threads(), WorkerThread::kMostIdle);
  const auto last = std::make_shared<int>(-1);
  std::thread::id first_run, second_run;
  WorkerThread::start(kStackBytes, "ns-test", last, [&]() noexcept {
    first_run = std::this_thread::get_id();
  }).join();
  EXPECT_EQ(WorkerThread::idle_threads(), WorkerThread::kMostIdle);
  EXPECT_EQ(libraries.front().use_count(), 1) << "the thread parked longest was not ended";
  EXPECT_EQ(libraries.back().use_count(), 2);
  WorkerThread::start(kStackBytes, "ns-test", last, [&]() noexcept {
    second_run = std::this_thread::get_id();
  }).join();
  EXPECT_EQ(second_run, first_run) << "the thread parked last was not kept";
}

TEST_F(IdleWorkerThreadTest, AParkedThreadKeepsOnlyTheTopOfItsStackAndTheGlobalLocale) {
  StackRange stack;
  std::uintptr_t body_frame = 0;
  bool locale_set = false, global_locale_after = false;
  locale_t c_locale = newlocale(LC_ALL_MASK, "C", nullptr);
  ASSERT_NE(c_locale, nullptr);
  WorkerThread::start(kStackBytes, "ns-test", nullptr, [&]() noexcept {
    stack = own_stack();
    body_frame = below_here(0);
    touch_stack(safe_depth(stack));
    locale_set = uselocale(c_locale) != nullptr;
  }).join();
  ASSERT_EQ(WorkerThread::idle_threads(), 1u);
  // Parked, not ended: the pages the deep call touched (below the body's
  // frame, and more than 16 KiB below the frame the thread parks in) are
  // given back all the same. (Above the body's frame a sanitizer's runtime
  // may keep its thread-locals, in use while the thread lives.)
  EXPECT_EQ(resident_pages(stack.low, body_frame - 16 * 1024), 0u);
  WorkerThread::start(kStackBytes, "ns-test", nullptr, [&]() noexcept {
    global_locale_after = uselocale(nullptr) == LC_GLOBAL_LOCALE;
  }).join();
  freelocale(c_locale);
  EXPECT_TRUE(locale_set);
  EXPECT_TRUE(global_locale_after) << "a locale set by the last body stayed on the thread";
}

TEST_F(IdleWorkerThreadTest, ARetiredThreadsStackServesTheNextThreadWithFreshThreadLocals) {
  StackRange first_stack, second_stack;
  int second_saw = -1;
  const auto one = std::make_shared<int>(1);
  const auto other = std::make_shared<int>(2);
  WorkerThread::start(kStackBytes, "ns-test", one, [&]() noexcept {
    first_stack = own_stack();
    t_marker = 42;
    touch_stack(safe_depth(first_stack));
  }).join();
  EXPECT_EQ(WorkerThread::retire_idle(std::chrono::steady_clock::duration::zero()), 1u);
  EXPECT_GE(WorkerThread::pooled_stacks(), 1u);
  EXPECT_EQ(resident_pages(first_stack.low, first_stack.high - 64 * 1024), 0u);

  WorkerThread::start(kStackBytes, "ns-test", other, [&]() noexcept {
    second_stack = own_stack();
    second_saw = t_marker;
  }).join();
  EXPECT_EQ(second_stack.low, first_stack.low) << "the pooled stack was not reused";
  EXPECT_EQ(second_stack.high, first_stack.high);
  EXPECT_EQ(second_saw, 0) << "a thread-local kept the previous thread's value";
}

TEST_F(IdleWorkerThreadTest, AThreadLetGoInItsBodyParksItselfAndTakesTheNextBody) {
  const auto library = std::make_shared<int>(1);
  std::mutex handle_mutex;
  WorkerThread handle;
  std::thread::id first, second;
  std::atomic<bool> let_go{false};
  {
    // As the run manager does: the body's last steps let go of its own handle.
    std::lock_guard lock(handle_mutex);
    handle = WorkerThread::start(kStackBytes, "ns-test", library, [&]() noexcept {
      first = std::this_thread::get_id();
      std::lock_guard body_lock(handle_mutex);
      handle.park_when_done();
      let_go.store(true);
    });
  }
  while (!let_go.load()) std::this_thread::yield();
  EXPECT_FALSE(handle.joinable());
  EXPECT_EQ(WorkerThread::idle_threads(), 1u) << "a thread let go counts as parked at once";
  // Nothing to retire yet, but the call waits until the thread has parked.
  EXPECT_EQ(WorkerThread::retire_idle(std::chrono::hours(1)), 0u);
  WorkerThread::start(kStackBytes, "ns-test", library, [&]() noexcept {
    second = std::this_thread::get_id();
  }).join();
  EXPECT_EQ(second, first) << "the thread that parked itself was not reused";
  EXPECT_EQ(WorkerThread::idle_threads(), 1u);
}

TEST_F(IdleWorkerThreadTest, ABodyHandedToAParkedThreadRunsWhenLetGoBeforeTheThreadWakes) {
  const auto library = std::make_shared<int>(1);
  for (int i = 0; i < 40; ++i) {
    WorkerThread::start(kStackBytes, "ns-test", library, []() noexcept {}).join();
    ASSERT_EQ(WorkerThread::idle_threads(), 1u);
    std::atomic<bool> ran{false};
    WorkerThread thread =
        WorkerThread::start(kStackBytes, "ns-test", library, [&]() noexcept { ran.store(true); });
    // At once: the parked thread is most likely still asleep.
    if (i % 2 == 0) {
      thread.detach();
    } else {
      thread.park_when_done();
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!ran.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(ran.load()) << "the body was dropped (round " << i << ")";
    WorkerThread::retire_idle(std::chrono::steady_clock::duration::zero());
  }
}

TEST_F(IdleWorkerThreadTest, AHandleStartedIntoItsSlotIsThereWhenTheBodyBegins) {
  // A new thread first, then (mostly) the one that parked itself.
  for (int i = 0; i < 20; ++i) {
    WorkerThread slot;
    std::atomic<bool> found{false}, done{false};
    WorkerThread::start_into(slot, kStackBytes, "ns-test", nullptr, [&]() noexcept {
      found.store(slot.joinable());
      slot.park_when_done();
      done.store(true);
    });
    while (!done.load()) std::this_thread::yield();
    EXPECT_TRUE(found.load()) << "the body began before its handle was in place (round " << i
                              << ")";
    EXPECT_FALSE(slot.joinable());
  }
  EXPECT_GE(WorkerThread::retire_idle(std::chrono::steady_clock::duration::zero()), 1u);
}

TEST_F(IdleWorkerThreadTest, RetiringAllWaitsForEveryThreadLetGoToPark) {
  const auto library = std::make_shared<int>(1);
  // Let go while the body runs, or after it returned: both park the thread.
  for (int i = 0; i < 200; ++i) {
    WorkerThread::start(kStackBytes, "ns-test", library, []() noexcept {}).park_when_done();
  }
  EXPECT_GE(WorkerThread::retire_idle(std::chrono::steady_clock::duration::zero()), 1u);
  EXPECT_EQ(WorkerThread::idle_threads(), 0u);
  EXPECT_EQ(library.use_count(), 1) << "a thread parked after the retirement holds its affinity";
}

TEST_F(IdleWorkerThreadTest, ADetachedThreadEndsAfterItsBodyAndLetsGoOfItsAffinity) {
  const auto library = std::make_shared<int>(1);
  std::atomic<bool> go{false};
  std::atomic<pid_t> tid{0};
  WorkerThread thread = WorkerThread::start(kStackBytes, "ns-test", library, [&]() noexcept {
    tid.store(static_cast<pid_t>(::gettid()));
    go.wait(false);
  });
  while (tid.load() == 0) std::this_thread::yield();
  thread.detach();
  EXPECT_FALSE(thread.joinable());
  go.store(true);
  go.notify_all();
  const std::string task = "/proc/self/task/" + std::to_string(tid.load());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (::access(task.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_NE(::access(task.c_str(), F_OK), 0) << "the detached thread did not end";
  EXPECT_EQ(WorkerThread::idle_threads(), 0u);
  EXPECT_EQ(library.use_count(), 1) << "an ended thread still holds its affinity";
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
  WorkerThread thread = WorkerThread::start(kStackBytes, "ns-test", nullptr, [&]() noexcept {
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
