// The ids the host makes (runs, their threads, schedules, webhooks): UUIDs
// of version 7, whose first 48 bits are the Unix time in milliseconds and
// whose other 74 bits are random, so that ids made later sort later.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "model/run.hpp"

namespace nightshift {
namespace {

std::int64_t milliseconds_of(const std::string& id) {
  const std::string hex = id.substr(0, 8) + id.substr(9, 4);
  return static_cast<std::int64_t>(std::stoull(hex, nullptr, 16));
}

TEST(GeneratedIdTest, IsACanonicalLowerCaseVersion7Uuid) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = generate_uuid();
    ASSERT_TRUE(is_uuid(id)) << id;
    EXPECT_TRUE(std::none_of(id.begin(), id.end(), [](char c) {
      return std::isupper(static_cast<unsigned char>(c));
    })) << id;
    EXPECT_EQ(id[14], '7') << id << ": version";
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id << ": variant";
  }
}

TEST(GeneratedIdTest, BeginsWithTheTimeItWasMadeAt) {
  const std::int64_t before = now_ms().time_since_epoch().count();
  const std::string id = generate_uuid();
  const std::int64_t after = now_ms().time_since_epoch().count();
  EXPECT_GE(milliseconds_of(id), before) << id;
  EXPECT_LE(milliseconds_of(id), after) << id;
}

TEST(GeneratedIdTest, AnIdMadeInALaterMillisecondSortsAfter) {
  const std::string earlier = generate_uuid();
  const auto made = now_ms();
  while (now_ms() <= made) std::this_thread::yield();
  const std::string later = generate_uuid();
  EXPECT_LT(earlier, later);
}

TEST(GeneratedIdTest, IdsMadeAtOnceOnManyThreadsAreAllDifferent) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&made, t] {
      made[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) made[t].push_back(generate_uuid());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& ids : made) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  // Within one millisecond the random bits alone tell ids apart: many ids
  // share their first 48 bits.
  std::set<std::string> times;
  for (const std::string& id : all) times.insert(id.substr(0, 13));
  EXPECT_LT(times.size(), all.size());
}

}  // namespace
}  // namespace nightshift
