// A full disk, for real: the host's data directory on a small tmpfs that
// the runs fill. While the store cannot commit, the host says so and refuses
// starts; nothing it had accepted is lost; once there is room again, every
// held write is committed without a restart and the database is sound.
// Needs root (to mount a tmpfs); skipped with a message elsewhere.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine_fixture.hpp"
#include "store/run_store.hpp"
#include "test_support.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;

class SmallDisk {
 public:
  explicit SmallDisk(const std::filesystem::path& dir) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
      error_ = std::strerror(errno);
    }
  }
  ~SmallDisk() {
    if (error_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool grow() {
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, "size=256m,mode=0700") == 0;
  }

 private:
  std::filesystem::path dir_;
  std::string error_;
};

TEST(StoreFailureTest, FullDiskIsVisibleRefusesStartsLosesNothingAndRecoversWithoutARestart) {
  testing::TempDir dir;
  SmallDisk disk(dir.path() / "data");
  if (!disk.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error()
                 << "); this test needs root to fill a small disk";
  }
  std::string flood_id, echo_id;
  {
    Host host(testing::engine_options(dir.path() / "data", testing::runs_test_agent_dirs()));
    RunManager& runs = host.runs();
    echo_id = runs.start(StartRequest{"installed:echo", "before the disk filled", {}}).instance_id;
    ASSERT_TRUE(runs.wait(echo_id, 20s));
    flood_id = runs.start(StartRequest{"installed:runs-flood",
                                       std::nullopt,
                                       {{"count", 40000}, {"size", 200}, {"pauseEvery", 200}}})
                   .instance_id;

    ASSERT_TRUE(testing::wait_until([&] { return !runs.stats().store_ok; }, 60s))
        << "the flood never filled the 1 MiB disk";
    EXPECT_GT(runs.stats().store_failures, 0u);
    try {
      runs.start(StartRequest{"installed:echo", std::nullopt, {}});
      ADD_FAILURE() << "a start was accepted while the store could not record it";
    } catch (const RunError& error) {
      EXPECT_EQ(error.code(), RunError::Code::store_failed);
      EXPECT_NE(std::string(error.what()).find("store cannot record"), std::string::npos);
    }

    ASSERT_TRUE(disk.grow());
    ASSERT_TRUE(testing::wait_until([&] { return runs.stats().store_ok; }, 30s));
    const auto flood = runs.wait(flood_id, 60s);
    ASSERT_TRUE(flood);
    EXPECT_EQ(flood->status, RunStatus::completed);
    // Starts work again.
    const auto after = runs.start(StartRequest{"installed:echo", "after", {}});
    ASSERT_TRUE(runs.wait(after.instance_id, 20s));
    EXPECT_EQ(runs.get(after.instance_id)->status, RunStatus::completed);
  }
  // Reopened: everything accepted is there, the log has no gaps, the
  // database is sound.
  RunStore store(StoreOptions{dir.path() / "data" / "runs.db", 1});
  EXPECT_EQ(store.integrity_check(), "ok");
  ASSERT_TRUE(store.get_run(echo_id));
  EXPECT_EQ(store.get_run(echo_id)->status, RunStatus::completed);
  const auto flood = store.get_run(flood_id);
  ASSERT_TRUE(flood);
  EXPECT_EQ(flood->status, RunStatus::completed);
  std::uint64_t expected = 1;
  for (;;) {
    const auto entries = store.read_logs(flood_id, expected - 1, 5000);
    if (entries.empty()) break;
    for (const LogEntry& entry : entries) ASSERT_EQ(entry.seq, expected++);
  }
  EXPECT_EQ(expected - 1, flood->log_count) << "the record counts exactly the entries on disk";
}

}  // namespace
}  // namespace nightshift
