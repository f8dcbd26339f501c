// The process spawner (zygote) of process isolation: the Spawner on its own
// (a keeper it forks, its wait status, a spawner that cannot start), and the
// engine running process runs through it (many runs through one spawner, a
// keeper killed under its run, the spawner killed between runs and during
// one). Processes are checked in /proc.
#include "isolation/spawner.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine_fixture.hpp"
#include "test_support.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using isolation::Fd;
using isolation::Spawner;
using testing::Engine;
using testing::TempDir;
using testing::wait_until;

const std::string kMisbehave = "installed:iso-misbehave";

std::vector<std::filesystem::path> agent_dirs() {
  return {NIGHTSHIFT_BUILD_AGENTS_DIR, NIGHTSHIFT_ISO_TEST_AGENTS_DIR};
}

// The state letter and parent of a process; state 0 when it does not exist.
std::pair<char, pid_t> stat_of(pid_t pid) {
  const std::string text = testing::read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return {0, 0};
  std::istringstream rest(text.substr(paren + 2));
  char state = 0;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return {state, ppid};
}

bool process_alive(pid_t pid) {
  const char state = stat_of(pid).first;
  return state != 0 && state != 'Z';
}

std::string cmdline_of(pid_t pid) {
  std::string text = testing::read_proc_file("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

// The live spawner processes whose parent is this test.
std::vector<pid_t> spawners() {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stoi(name));
    if (stat_of(pid).second != ::getpid() || !process_alive(pid)) continue;
    if (cmdline_of(pid).find(" --spawner") != std::string::npos) out.push_back(pid);
  }
  return out;
}

// ---- the Spawner on its own ----

// A keeper whose host closes the socket before the start says so on its
// output and exits 2; the spawner hands that status back.
TEST(SpawnerTest, AKeeperItForksRunsInItsWorkspaceAndItsStatusComesBack) {
  TempDir dir;
  Spawner spawner;
  int run[2], out[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, run), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  Fd host_end(run[0]), keeper_end(run[1]), output(out[0]), keeper_output(out[1]);
  auto keeper = spawner.spawn(NIGHTSHIFT_TEST_WORKER, keeper_end.get(), keeper_output.get(),
                              dir.path().string(), {"NIGHTSHIFT_SPAWNER_TEST=1"});
  ASSERT_TRUE(keeper.has_value());
  EXPECT_GT(keeper->pid, 0);
  EXPECT_EQ(stat_of(keeper->pid).second, spawner.process_id()) << "the spawner is its parent";
  keeper_end.reset();
  keeper_output.reset();
  // Its own group, and the workspace as its directory (once the child has
  // set them up: the spawner answers right after the fork).
  const std::string cwd_link = "/proc/" + std::to_string(keeper->pid) + "/cwd";
  EXPECT_TRUE(wait_until(
      [&] {
        std::error_code ignored;
        return ::getpgid(keeper->pid) == keeper->pid &&
               std::filesystem::read_symlink(cwd_link, ignored) == dir.path();
      },
      10s));
  host_end.reset();  // no start frame: the keeper gives up
  const std::optional<int> status = Spawner::wait_status(*keeper, 30s);
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(output.get(), buf, sizeof buf)) > 0;) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_NE(text.find("the host closed the socket before sending the start"), std::string::npos)
      << text;
}

TEST(SpawnerTest, ASpawnerThatCannotRunSaysSoAndLeavesNoProcess) {
  TempDir dir;
  for (const char* worker : {"/nonexistent/nightshift-worker", "/bin/false"}) {
    Spawner spawner;
    for (int i = 0; i < 4; ++i) {
      int run[2], out[2];
      ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, run), 0);
      ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
      Fd a(run[0]), b(run[1]), c(out[0]), d(out[1]);
      EXPECT_FALSE(spawner.spawn(worker, b.get(), d.get(), dir.path().string(), {}).has_value())
          << worker;
    }
    EXPECT_EQ(spawner.process_id(), -1) << worker;
  }
  EXPECT_TRUE(spawners().empty());
}

// ---- the engine through the spawner ----

class SpawnerEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine = std::make_unique<Engine>(dir.path(), agent_dirs());
    RunManagerOptions o;
    o.stop_grace = 500ms;
    o.kill_grace = 500ms;
    engine->open(std::move(o));
  }
  void TearDown() override {
    engine.reset();
    EXPECT_TRUE(wait_until([] { return spawners().empty(); }, 10s))
        << "the spawner outlived its host";
  }
  RunManager& manager() { return engine->manager(); }
  nightshift::Run misbehave(const std::string& mode) {
    boost::json::object params{{"mode", mode}};
    return manager().start(StartRequest{kMisbehave, std::nullopt, std::move(params)});
  }
  nightshift::Run finish(const nightshift::Run& run) {
    auto done = manager().wait(run.instance_id, 60s);
    EXPECT_TRUE(done && is_terminal(done->status)) << "the run did not end";
    return done.value_or(run);
  }
  // The agent process's pid, from its first entry.
  pid_t agent_pid(const nightshift::Run& run) {
    pid_t pid = 0;
    wait_until(
        [&] {
          for (const LogEntry& e : manager().logs(run.instance_id, 0, 100).entries) {
            if (e.message.starts_with("pid ")) pid = std::stoi(e.message.substr(4));
          }
          return pid != 0;
        },
        30s);
    return pid;
  }

  TempDir dir;
  std::unique_ptr<Engine> engine;
};

TEST_F(SpawnerEngineTest, ManyRunsGoThroughOneSpawner) {
  std::vector<nightshift::Run> runs;
  for (int i = 0; i < 40; ++i) runs.push_back(misbehave("ok"));
  const nightshift::Run sleeper = misbehave("sleep");
  const pid_t agent = agent_pid(sleeper);
  ASSERT_GT(agent, 0);
  const std::vector<pid_t> now = spawners();
  ASSERT_EQ(now.size(), 1u);
  // agent -> keeper -> spawner -> this test.
  const pid_t keeper = stat_of(agent).second;
  EXPECT_EQ(stat_of(keeper).second, now.front());
  EXPECT_NE(cmdline_of(keeper).find("nightshift-worker --keeper"), std::string::npos)
      << cmdline_of(keeper);
  for (const auto& run : runs) {
    const nightshift::Run done = finish(run);
    EXPECT_EQ(done.status, RunStatus::completed) << done.error.value_or("");
    EXPECT_EQ(done.isolation, Isolation::process);
  }
  manager().stop(sleeper.instance_id);
  EXPECT_EQ(finish(sleeper).status, RunStatus::cancelled);
  EXPECT_EQ(spawners(), now) << "still the one spawner";
}

// The keeper's wait status comes from the spawner, which reaped it.
TEST_F(SpawnerEngineTest, AKeeperKilledUnderItsRunFailsItWithTheSignal) {
  const nightshift::Run run = misbehave("sleep");
  const pid_t agent = agent_pid(run);
  ASSERT_GT(agent, 0);
  const pid_t keeper = stat_of(agent).second;
  ASSERT_EQ(::kill(keeper, SIGKILL), 0);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::failed);
  EXPECT_EQ(done.error, "agent crashed: SIGKILL (signal 9)");
  EXPECT_TRUE(wait_until([&] { return !process_alive(agent); }, 10s));
  EXPECT_EQ(finish(misbehave("ok")).status, RunStatus::completed);
}

TEST_F(SpawnerEngineTest, ASpawnerKilledBetweenRunsIsReplacedByTheNextRun) {
  EXPECT_EQ(finish(misbehave("ok")).status, RunStatus::completed);
  const std::vector<pid_t> first = spawners();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(::kill(first.front(), SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return !process_alive(first.front()); }, 10s));
  for (int i = 0; i < 3; ++i) {
    const nightshift::Run done = finish(misbehave("ok"));
    EXPECT_EQ(done.status, RunStatus::completed) << done.error.value_or("");
  }
  const std::vector<pid_t> second = spawners();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second.front(), first.front());
  // The dead one was reaped.
  EXPECT_NE(stat_of(first.front()).first, 'Z');
}

// A spawner that dies under a run takes the run's processes with it (each
// keeper's parent-death signal); the run ends instead of hanging.
TEST_F(SpawnerEngineTest, ASpawnerKilledDuringARunEndsTheRunAndItsProcesses) {
  const nightshift::Run run = misbehave("spin");
  const pid_t agent = agent_pid(run);
  ASSERT_GT(agent, 0);
  const pid_t keeper = stat_of(agent).second;
  const std::vector<pid_t> now = spawners();
  ASSERT_EQ(now.size(), 1u);
  ASSERT_EQ(::kill(now.front(), SIGKILL), 0);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::failed);
  EXPECT_TRUE(wait_until([&] { return !process_alive(agent) && !process_alive(keeper); }, 10s));
  EXPECT_EQ(finish(misbehave("ok")).status, RunStatus::completed);
}

}  // namespace
}  // namespace nightshift
