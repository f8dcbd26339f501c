// A host killed with SIGKILL while its runs log as fast as they can: the next
// host finds every run accounted for (failed, interrupted), every committed
// log intact (seq 1..n, nothing missing), and a sound database.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "engine_fixture.hpp"
#include "test_support.hpp"

extern char** environ;

namespace nightshift {
namespace {

using namespace std::chrono_literals;

// The driver's process, with its standard output on a pipe.
class DriverProcess {
 public:
  explicit DriverProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    if (rc != 0) {
      ::close(out_);
      throw std::runtime_error("posix_spawn failed: " + std::to_string(rc));
    }
  }
  ~DriverProcess() {
    kill_hard();
    ::close(out_);
  }

  // The next line of output, or "" when none came before `timeout`.
  std::string read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{out_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      char c = 0;
      if (::read(out_, &c, 1) != 1) return "";
      if (c == '\n') return line;
      line += c;
    }
    return "";
  }

  // SIGKILL and reap; returns the wait status.
  int kill_hard() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
};

TEST(RunsCrashTest, HostKilledMidRunLeavesEveryRunInterruptedAndEveryCommittedLogIntact) {
  testing::TempDir dir;
  constexpr int kRuns = 6;
  std::vector<std::string> args{NIGHTSHIFT_RUNS_CRASH_DRIVER, dir.path().string(),
                                std::to_string(kRuns)};
  for (const auto& agents : testing::runs_test_agent_dirs()) args.push_back(agents.string());
  {
    DriverProcess driver(args);
    ASSERT_EQ(driver.read_line(60s), "runs going: " + std::to_string(kRuns));
    const int status = driver.kill_hard();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }

  testing::Engine engine(dir.path(), testing::runs_test_agent_dirs());
  engine.open(RunManagerOptions{});
  RunManager& manager = engine.manager();
  EXPECT_TRUE(manager.active().empty());
  const HistoryPage history = manager.history(HistoryQuery{500, {}, {}, {}});
  ASSERT_EQ(history.runs.size(), static_cast<std::size_t>(kRuns));
  for (const nightshift::Run& run : history.runs) {
    EXPECT_EQ(run.status, RunStatus::failed);
    EXPECT_EQ(run.error, std::optional<std::string>(
                             "interrupted: the host stopped while this run was active"));
    std::uint64_t expected_seq = 1;
    for (;;) {
      const auto entries = engine.store().read_logs(run.instance_id, expected_seq - 1, 5000);
      if (entries.empty()) break;
      for (const LogEntry& entry : entries) {
        ASSERT_EQ(entry.seq, expected_seq) << "gap in the log of " << run.instance_id;
        ASSERT_EQ(entry.message.rfind("entry " + std::to_string(expected_seq) + " ", 0), 0u);
        ++expected_seq;
      }
    }
    EXPECT_GT(expected_seq, 1u) << "no committed entries for " << run.instance_id;
    EXPECT_TRUE(manager.logs(run.instance_id, expected_seq - 1, 10).complete);
  }
  EXPECT_EQ(engine.store().integrity_check(), "ok");
}

}  // namespace
}  // namespace nightshift
