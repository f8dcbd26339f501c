// The composition root: it builds every part over a private data directory,
// and a second Host over the same directory sees what the first recorded.
#include "host.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "engine_fixture.hpp"
#include "store/run_store.hpp"
#include "test_support.hpp"

namespace nightshift {
namespace {

TEST(HostTest, DataDirectoryIsOnlyForTheOwnerWhateverTheUmask) {
  testing::TempDir dir;
  const mode_t previous = ::umask(022);
  {
    Host host(testing::engine_options(dir.path() / "data", testing::runs_test_agent_dirs()));
    struct stat info {};
    ASSERT_EQ(::stat((dir.path() / "data").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0700u);
  }
  ::umask(previous);
}

TEST(HostTest, BuildsEveryPartAndASecondHostSeesWhatTheFirstRecorded) {
  testing::TempDir dir;
  std::string id;
  {
    Host host(testing::engine_options(dir.path(), testing::runs_test_agent_dirs()));
    EXPECT_FALSE(host.catalog().agents().empty());
    id = host.runs().start(StartRequest{"installed:echo", "hello", {}}).instance_id;
    const auto done = host.runs().wait(id, std::chrono::seconds(20));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, RunStatus::completed);
  }
  Host again(testing::engine_options(dir.path(), testing::runs_test_agent_dirs()));
  const auto run = again.runs().get(id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, RunStatus::completed);
  EXPECT_GT(run->log_count, 0u);
}

TEST(HostTest, RefusesToStartWithoutADataDirectory) {
  EXPECT_THROW(Host(HostOptions{}), std::invalid_argument);
}

}  // namespace
}  // namespace nightshift
