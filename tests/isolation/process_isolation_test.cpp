// Process isolation end to end: the engine runs real plugins in real
// nightshift-worker processes. For each way an agent can misbehave: the
// run's end state and error, that other runs carry on, and that no process
// of the run is left (checked in /proc).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine_fixture.hpp"
#include "isolation/process_run.hpp"
#include "test_support.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using testing::Engine;
using testing::TempDir;
using testing::wait_until;

const std::string kMisbehave = "installed:iso-misbehave";

std::vector<std::filesystem::path> agent_dirs() {
  return {NIGHTSHIFT_BUILD_AGENTS_DIR, NIGHTSHIFT_ISO_TEST_AGENTS_DIR,
          NIGHTSHIFT_SDK_TEST_AGENTS_DIR, NIGHTSHIFT_RUNS_TEST_AGENTS_DIR};
}

// A process that exists and is not a zombie waiting to be reaped.
bool process_alive(pid_t pid) {
  const std::string text = testing::read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// The processes whose parent is `parent`.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string text = testing::read_proc_file(entry.path() / "stat");
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(text.substr(paren + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

class ProcessIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override { engine = std::make_unique<Engine>(dir.path(), agent_dirs()); }
  void TearDown() override {
    engine.reset();
    // Nothing the host started outlives it.
    EXPECT_TRUE(wait_until([] { return children_of(::getpid()).empty(); }, 10s))
        << "the test process still has child processes";
  }

  static RunManagerOptions options() {
    RunManagerOptions o;
    o.stop_grace = 500ms;
    o.kill_grace = 500ms;
    return o;
  }
  void open(RunManagerOptions o = options()) { engine->open(std::move(o)); }
  RunManager& manager() { return engine->manager(); }

  nightshift::Run start(const std::string& agent, boost::json::object params = {},
                        AgentLimits limits = {}) {
    StartRequest request{agent, std::nullopt, std::move(params)};
    request.limits = limits;
    return manager().start(request);
  }
  nightshift::Run misbehave(const std::string& mode, boost::json::object more = {},
                            AgentLimits limits = {}) {
    more["mode"] = mode;
    return start(kMisbehave, std::move(more), limits);
  }
  nightshift::Run finish(const nightshift::Run& run, std::chrono::seconds timeout = 60s) {
    auto done = manager().wait(run.instance_id, timeout);
    EXPECT_TRUE(done && is_terminal(done->status)) << "the run did not end";
    return done.value_or(run);
  }
  std::vector<LogEntry> logs(const nightshift::Run& run) {
    return manager().logs(run.instance_id, 0, 5000).entries;
  }
  // The entries of the run (committed so far) whose message starts with `prefix`.
  std::vector<std::string> lines(const nightshift::Run& run, const std::string& prefix) {
    std::vector<std::string> out;
    for (const LogEntry& e : logs(run)) {
      if (e.message.starts_with(prefix)) out.push_back(e.message.substr(prefix.size()));
    }
    return out;
  }
  // Waits for the first entry starting with `prefix` and returns what follows it.
  std::string await_line(const nightshift::Run& run, const std::string& prefix) {
    std::string found;
    wait_until(
        [&] {
          auto got = lines(run, prefix);
          if (!got.empty()) found = got.front();
          return !got.empty();
        },
        30s);
    return found;
  }
  pid_t agent_pid(const nightshift::Run& run) { return std::stoi(await_line(run, "pid ")); }

  TempDir dir;
  std::unique_ptr<Engine> engine;
};

// Under ASan or TSan the test agents carry the sanitizer's runtime, which
// changes what these tests watch: it catches SIGSEGV and exits with its own
// status (1 or 66) instead of dying of the signal, and it cannot map its
// shadow memory under RLIMIT_AS. Those tests run in the normal builds.
#ifdef NIGHTSHIFT_TEST_UNDER_SANITIZER
#define SKIP_UNDER_SANITIZER(why) GTEST_SKIP() << "not under a sanitizer: " << (why)
#else
#define SKIP_UNDER_SANITIZER(why) static_cast<void>(why)
#endif

TEST_F(ProcessIsolationTest, ASegfaultFailsOnlyItsRunAndTheOthersCarryOn) {
  SKIP_UNDER_SANITIZER("its runtime catches SIGSEGV");
  open();
  const nightshift::Run sleeper = start("installed:sleep", {{"seconds", 1}});
  const nightshift::Run crasher = misbehave("segfault");
  const pid_t pid = agent_pid(crasher);
  const nightshift::Run crashed = finish(crasher);
  EXPECT_EQ(crashed.status, RunStatus::failed);
  EXPECT_EQ(crashed.error, "agent crashed: SIGSEGV (signal 11)");
  EXPECT_EQ(crashed.isolation, Isolation::process);
  EXPECT_FALSE(process_alive(pid));
  // The host says so in the log too.
  const std::vector<LogEntry> entries = logs(crasher);
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back().source, LogSource::host);
  EXPECT_EQ(entries.back().level, LogLevel::error);
  EXPECT_EQ(entries.back().message, "agent crashed: SIGSEGV (signal 11)");
  const nightshift::Run slept = finish(sleeper);
  EXPECT_EQ(slept.status, RunStatus::completed);
  EXPECT_EQ(slept.isolation, Isolation::thread);
  // And the host takes new runs.
  EXPECT_EQ(finish(misbehave("ok")).status, RunStatus::completed);
}

TEST_F(ProcessIsolationTest, AnAbortIsACrash) {
  open();
  const nightshift::Run run = finish(misbehave("abort"));
  EXPECT_EQ(run.status, RunStatus::failed);
  EXPECT_EQ(run.error, "agent crashed: SIGABRT (signal 6)");
}

TEST_F(ProcessIsolationTest, AnExitWithoutReportingSaysItsStatus) {
  open();
  const nightshift::Run run = finish(misbehave("exit", {{"code", 3}}));
  EXPECT_EQ(run.status, RunStatus::failed);
  EXPECT_EQ(run.error, "agent process exited with status 3");
}

TEST_F(ProcessIsolationTest, AMalformedFrameFromTheWorkerFailsTheRunAndEndsItsProcess) {
  open();
  const nightshift::Run run = misbehave("garbage");
  const pid_t pid = agent_pid(run);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::failed);
  ASSERT_TRUE(done.error.has_value());
  EXPECT_TRUE(done.error->starts_with("the agent process broke the worker protocol (a frame of "))
      << *done.error;
  EXPECT_NE(done.error->find("is over the limit"), std::string::npos) << *done.error;
  EXPECT_FALSE(process_alive(pid));
}

TEST_F(ProcessIsolationTest, ASpinnerThatIgnoresStopIsKilledAfterTheGrace) {
  open();
  const nightshift::Run run = misbehave("spin");
  const pid_t pid = agent_pid(run);
  await_line(run, "spinning");
  EXPECT_EQ(manager().stop(run.instance_id).status, RunStatus::stopping);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::cancelled);
  EXPECT_EQ(done.error, "killed after 0.5 s: the agent did not stop");
  // Gone before the run was finished.
  EXPECT_FALSE(process_alive(pid));
  const std::vector<LogEntry> entries = logs(run);
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back().source, LogSource::host);
  EXPECT_EQ(entries.back().message,
            "the agent did not stop within the stop grace: its processes were sent SIGTERM, then "
            "SIGKILL");
}

TEST_F(ProcessIsolationTest, AtShutdownASpinnerIsKilledAndRecordedSo) {
  open();
  const nightshift::Run run = misbehave("spin");
  const pid_t pid = agent_pid(run);
  await_line(run, "spinning");
  engine->host->shutdown(options().stop_grace);
  const auto stored = engine->store().get_run(run.instance_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->status, RunStatus::cancelled);
  EXPECT_EQ(stored->error, "killed after 0.5 s: the agent did not stop");
  EXPECT_FALSE(process_alive(pid));
}

TEST_F(ProcessIsolationTest, AKilledSpinnerTakesEveryChildWithItWhateverItsGroup) {
  open();
  const nightshift::Run run = misbehave("spin-children", {{"children", 3}});
  await_line(run, "spinning");
  std::vector<pid_t> pids{agent_pid(run)};
  for (const std::string& child : lines(run, "child ")) {
    const pid_t pid = std::stoi(child);
    pids.push_back(pid);
    // Each child's own child, in a session of its own.
    EXPECT_TRUE(wait_until([&] { return !children_of(pid).empty(); }, 10s));
    for (pid_t grandchild : children_of(pid)) pids.push_back(grandchild);
  }
  ASSERT_EQ(pids.size(), 7u);
  for (pid_t pid : pids) EXPECT_TRUE(process_alive(pid)) << pid;
  manager().stop(run.instance_id);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::cancelled);
  for (pid_t pid : pids) EXPECT_FALSE(process_alive(pid)) << pid << " outlived its run";
}

TEST_F(ProcessIsolationTest, ChildrenLeftBehindByARunThatCompletedAreEnded) {
  open();
  // The shell agent puts its command in a group of its own; a background
  // job it leaves is still the run's.
  StartRequest request{"installed:shell", std::string("sleep 1000 & echo bg $!"), {}};
  const nightshift::Run shell = manager().start(request);
  const std::string bg = await_line(shell, "bg ");
  const nightshift::Run done = finish(shell);
  EXPECT_EQ(done.status, RunStatus::completed);
  ASSERT_FALSE(bg.empty());
  EXPECT_FALSE(process_alive(std::stoi(bg)));
}

TEST_F(ProcessIsolationTest, AMemoryLimitEndsALeakWithItsOwnError) {
  SKIP_UNDER_SANITIZER("its shadow memory does not fit RLIMIT_AS");
  open();
  AgentLimits limits;
  limits.memory_mib = 256;
  const nightshift::Run run = finish(misbehave("leak", {}, limits));
  EXPECT_EQ(run.status, RunStatus::failed);
  EXPECT_EQ(run.error, "exceeded its memory limit of 256 MiB");
}

TEST_F(ProcessIsolationTest, ACpuLimitEndsABurnWithItsOwnError) {
  open();
  AgentLimits limits;
  limits.cpu_seconds = 1;
  const nightshift::Run run = finish(misbehave("burn", {}, limits));
  EXPECT_EQ(run.status, RunStatus::failed);
  EXPECT_EQ(run.error, "exceeded its CPU time limit of 1 s");
}

TEST_F(ProcessIsolationTest, ATimeLimitKillsASpinner) {
  open();
  AgentLimits limits;
  limits.timeout_seconds = 1;
  const nightshift::Run run = misbehave("spin", {}, limits);
  const pid_t pid = agent_pid(run);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::failed);
  EXPECT_EQ(done.error, "timed out after 1 s");
  EXPECT_FALSE(process_alive(pid));
}

TEST_F(ProcessIsolationTest, TheAgentSeesNoTokenTheWorkspaceAndOnlyItsOwnDescriptors) {
  ::setenv("NIGHTSHIFT_TOKEN", "the-secret-token", 1);
  ::setenv("NIGHTSHIFT_ISO_TEST_VISIBLE", "yes", 1);
  open();
  const nightshift::Run run = finish(misbehave("env"));
  ::unsetenv("NIGHTSHIFT_TOKEN");
  EXPECT_EQ(run.status, RunStatus::completed);
  bool visible = false;
  for (const std::string& env : lines(run, "env ")) {
    EXPECT_EQ(env.find("the-secret-token"), std::string::npos) << env;
    if (env == "NIGHTSHIFT_ISO_TEST_VISIBLE=yes") visible = true;
  }
  EXPECT_TRUE(visible) << "the rest of the environment is passed on";
  EXPECT_EQ(lines(run, "cwd "), std::vector<std::string>{engine->workspace.string()});
  EXPECT_EQ(lines(run, "fd "), (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST_F(ProcessIsolationTest, TheWorkersOutputLandsInTheLogAsHostWarnings) {
  open();
  const nightshift::Run run = finish(misbehave("print"));
  EXPECT_EQ(run.status, RunStatus::completed);
  std::set<std::string> host_lines;
  for (const LogEntry& e : logs(run)) {
    if (e.source == LogSource::host) {
      EXPECT_EQ(e.level, LogLevel::warn);
      host_lines.insert(e.message);
    }
  }
  EXPECT_EQ(host_lines, (std::set<std::string>{"to stdout", "to stderr"}));
}

TEST_F(ProcessIsolationTest, MessagesReachTheAgentAndItsUsageComesBack) {
  open();
  const nightshift::Run run = misbehave("messages");
  agent_pid(run);
  manager().send_message(run.instance_id, "first");
  manager().send_message(run.instance_id, "done");
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::completed);
  EXPECT_EQ(lines(run, "got "), (std::vector<std::string>{"first", "done"}));
  ASSERT_TRUE(done.usage.has_value());
  EXPECT_EQ(done.usage->prompt_tokens, 2u);
  EXPECT_EQ(done.usage->completion_tokens, 4u);
}

TEST_F(ProcessIsolationTest, ACooperativeStopEndsCancelledWithoutAKill) {
  open();
  const nightshift::Run run = misbehave("sleep");
  agent_pid(run);
  manager().stop(run.instance_id);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::cancelled);
  EXPECT_FALSE(done.error.has_value());
}

TEST_F(ProcessIsolationTest, APluginBuiltAgainstTheV10HeaderRunsInAWorker) {
  open();
  StartRequest request{"installed:sdk-v1-0", std::string("hello"), {}};
  const nightshift::Run done = finish(manager().start(request));
  EXPECT_EQ(done.status, RunStatus::completed) << done.error.value_or("");
  EXPECT_EQ(done.isolation, Isolation::process);
  ASSERT_TRUE(done.result.is_object());
  EXPECT_EQ(done.result.at("abiMinor"), 0);
  EXPECT_EQ(lines(done, "hello").size(), 1u);
}

TEST_F(ProcessIsolationTest, ServeIsolationProcessForcesEvenThreadAgentsIntoAProcess) {
  RunManagerOptions o = options();
  o.force_process_isolation = true;
  open(o);
  const nightshift::Run run = finish(start("installed:echo"));
  EXPECT_EQ(run.status, RunStatus::completed);
  EXPECT_EQ(run.isolation, Isolation::process);
}

TEST_F(ProcessIsolationTest, LimitsOnlyAProcessCanKeepPutAThreadAgentInAProcess) {
  SKIP_UNDER_SANITIZER("its shadow memory does not fit RLIMIT_AS");
  open();
  EXPECT_EQ(finish(start("installed:echo")).isolation, Isolation::thread);
  AgentLimits limits;
  limits.memory_mib = 512;
  const nightshift::Run run = finish(start("installed:echo", {}, limits));
  EXPECT_EQ(run.status, RunStatus::completed);
  EXPECT_EQ(run.isolation, Isolation::process);
}

TEST_F(ProcessIsolationTest, TheSandboxIsReadOnlyOutsideTheWorkspaceWithAPrivateTmpAndNoNetwork) {
  if (isolation::find_sandbox_tool({}).empty()) GTEST_SKIP() << "bubblewrap is not installed";
  // A listener on the host's loopback: the sandbox's loopback is its own.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t size = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size);
  const int port = ntohs(address.sin_port);

  open();
  const std::filesystem::path outside =
      "/var/tmp/nightshift-iso-test-" + std::to_string(::getpid());
  const std::filesystem::path private_tmp = "/tmp/nightshift-iso-private-tmp";
  std::filesystem::remove(private_tmp);
  AgentLimits limits;
  limits.sandbox = true;
  limits.network = false;
  const nightshift::Run run =
      finish(misbehave("escape", {{"outside", outside.string()}, {"port", port}}, limits));
  ::close(listener);
  EXPECT_EQ(run.status, RunStatus::completed) << run.error.value_or("");
  EXPECT_EQ(lines(run, "write outside: "), std::vector<std::string>{"refused"});
  EXPECT_EQ(lines(run, "write workspace: "), std::vector<std::string>{"ok"});
  EXPECT_EQ(lines(run, "write tmp: "), std::vector<std::string>{"ok"});
  EXPECT_EQ(lines(run, "connect loopback: "), std::vector<std::string>{"Connection refused"});
  EXPECT_EQ(lines(run, "connect outside: "), std::vector<std::string>{"Network is unreachable"});
  EXPECT_FALSE(std::filesystem::exists(outside));
  EXPECT_FALSE(std::filesystem::exists(private_tmp)) << "its /tmp was the host's";
  EXPECT_TRUE(std::filesystem::exists(engine->workspace / "inside.txt"));
}

TEST_F(ProcessIsolationTest, ASandboxWithoutBubblewrapFailsClearlyInsteadOfRunningUnsandboxed) {
  RunManagerOptions o = options();
  o.sandbox_tool = dir.path() / "no-such-bwrap";
  open(o);
  AgentLimits limits;
  limits.sandbox = true;
  const nightshift::Run run = finish(misbehave("ok", {}, limits));
  EXPECT_EQ(run.status, RunStatus::failed);
  ASSERT_TRUE(run.error.has_value());
  EXPECT_NE(run.error->find("needs bubblewrap (bwrap), and it is not installed"), std::string::npos)
      << *run.error;
  EXPECT_TRUE(logs(run).empty()) << "the agent must not have run";
}

TEST_F(ProcessIsolationTest, AStartMayOnlyLowerTheLimitsItsAgentSets) {
  SKIP_UNDER_SANITIZER("its shadow memory does not fit RLIMIT_AS");
  testing::write_file(engine->workspace / ".nightshift" / "remix" / "capped.md",
                      "---\nbase: installed:iso-misbehave\nlimits:\n  timeoutSeconds: 60\n"
                      "  memoryMiB: 512\n---\n");
  open();
  AgentLimits higher;
  higher.memory_mib = 1024;
  try {
    start("remix:capped", {}, higher);
    FAIL() << "a start raised the remix's memory limit";
  } catch (const CatalogError& e) {
    EXPECT_EQ(e.code(), CatalogError::Code::invalid_params);
    EXPECT_NE(std::string(e.what()).find("memoryMiB"), std::string::npos) << e.what();
  }
  AgentLimits lower;
  lower.timeout_seconds = 30;
  lower.memory_mib = 400;
  EXPECT_EQ(finish(start("remix:capped", {}, lower)).status, RunStatus::completed);
}

// A host killed with SIGKILL leaves no agent process behind: the worker's
// keeper hears of it (PR_SET_PDEATHSIG) and ends everything below it.
TEST_F(ProcessIsolationTest, AKilledHostLeavesNoAgentProcessBehind) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t host = ::fork();
  ASSERT_GE(host, 0);
  if (host == 0) {
    ::close(report[0]);
    open();
    const nightshift::Run run = misbehave("spin-children", {{"children", 2}});
    await_line(run, "spinning");
    std::ostringstream out;
    out << agent_pid(run);
    for (const std::string& child : lines(run, "child ")) {
      out << ' ' << child;
      wait_until([&] { return !children_of(std::stoi(child)).empty(); }, 10s);
      for (pid_t grandchild : children_of(std::stoi(child))) out << ' ' << grandchild;
    }
    out << '\n';
    const std::string pids = out.str();
    [[maybe_unused]] const ssize_t n = ::write(report[1], pids.data(), pids.size());
    for (;;) ::pause();
  }
  ::close(report[1]);
  std::string text;
  char buf[256];
  for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) {
    text.append(buf, static_cast<std::size_t>(n));
    if (text.find('\n') != std::string::npos) break;
  }
  ::close(report[0]);
  ::kill(host, SIGKILL);
  ::waitpid(host, nullptr, 0);
  std::istringstream in(text);
  std::vector<pid_t> pids;
  for (pid_t pid; in >> pid;) pids.push_back(pid);
  ASSERT_EQ(pids.size(), 5u) << text;
  for (pid_t pid : pids) {
    EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }, 20s))
        << pid << " outlived the killed host";
  }
}

}  // namespace
}  // namespace nightshift
