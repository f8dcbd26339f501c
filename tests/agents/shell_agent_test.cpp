// installed:shell, run from its built plugin through the in-test harness:
// streaming, levels, exit statuses, stop of a whole process tree, output
// hygiene (UTF-8, long lines, floods) and the command's environment.
#include <gtest/gtest.h>
#include <signal.h>

#include <agent_harness.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <test_support.hpp>
#include <vector>

namespace {

using nightshift::testing::AgentHarness;
using nightshift::testing::AgentLibrary;
using nightshift::testing::AgentOutcome;
using nightshift::testing::AgentRunOptions;
using nightshift::testing::LogEntry;
using nightshift::testing::TempDir;
using nightshift::testing::wait_until;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ShellAgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { library_ = new AgentLibrary(NIGHTSHIFT_TEST_AGENT_LIBRARY); }
  static void TearDownTestSuite() {
    delete library_;
    library_ = nullptr;
  }

  AgentRunOptions options(const std::string& task,
                          const std::string& params = R"({"instructions":""})") const {
    AgentRunOptions out;
    out.task = task;
    out.params_json = params;
    out.workspace = workspace_.path();
    return out;
  }

  AgentOutcome run(const std::string& task,
                   const std::string& params = R"({"instructions":""})") const {
    AgentOutcome outcome = nightshift::testing::run_agent(*library_, options(task, params), 30s);
    EXPECT_TRUE(outcome.finished) << "the command did not end: " << task;
    EXPECT_TRUE(outcome.contract_violations.empty());
    return outcome;
  }

  static AgentLibrary* library_;
  TempDir workspace_;
};

AgentLibrary* ShellAgentTest::library_ = nullptr;

std::vector<std::string> messages_at(const std::vector<LogEntry>& logs, std::int32_t level) {
  std::vector<std::string> out;
  for (const LogEntry& entry : logs) {
    if (entry.level == level) out.push_back(entry.message);
  }
  return out;
}

std::vector<std::string> output_lines(const std::vector<LogEntry>& logs) {
  std::vector<std::string> out;
  for (const LogEntry& entry : logs) {
    if (entry.level == NIGHTSHIFT_LOG_INFO || entry.level == NIGHTSHIFT_LOG_WARN) {
      out.push_back(entry.message);
    }
  }
  return out;
}

bool has_message(const std::vector<LogEntry>& logs, const std::string& message) {
  for (const LogEntry& entry : logs) {
    if (entry.message == message) return true;
  }
  return false;
}

// The value after "pgid=" in the log, or -1.
pid_t logged_pgid(const std::vector<LogEntry>& logs) {
  for (const LogEntry& entry : logs) {
    if (entry.message.starts_with("pgid=")) return std::stoi(entry.message.substr(5));
  }
  return -1;
}

// Processes of the group that are alive (not zombies, whose reaping is up
// to init once their parent is gone).
std::vector<std::string> live_group_members(pid_t pgid) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const auto comm_end = stat.rfind(')');
    if (comm_end == std::string::npos) continue;
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + comm_end + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) {
      continue;
    }
    if (pgrp == pgid && state != 'Z' && state != 'X') out.push_back(stat);
  }
  return out;
}

bool is_valid_utf8(const std::string& text) {
  // Boost.JSON rejects a string with invalid UTF-8, so a round trip through
  // a JSON document checks it.
  boost::json::error_code ec;
  boost::json::parse("\"" + text + "\"", ec);
  return !ec;
}

boost::json::object result_of(const AgentOutcome& outcome) {
  if (!outcome.result_json) return {};
  return boost::json::parse(*outcome.result_json).as_object();
}

TEST_F(ShellAgentTest, StdoutLinesAreInfoAndStderrLinesAreWarn) {
  const AgentOutcome outcome = run("echo to-stdout; echo to-stderr >&2");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_INFO), std::vector<std::string>{"to-stdout"});
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_WARN), std::vector<std::string>{"to-stderr"});
}

TEST_F(ShellAgentTest, EachStreamKeepsItsLineOrder) {
  const AgentOutcome outcome = run("for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done");
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_INFO),
            (std::vector<std::string>{"out1", "out2", "out3", "out4", "out5"}));
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_WARN),
            (std::vector<std::string>{"err1", "err2", "err3", "err4", "err5"}));
}

TEST_F(ShellAgentTest, LinePrintedBeforeSleepArrivesWhileCommandStillRuns) {
  AgentHarness harness(*library_, options("echo first; echo second >&2; sleep 30; echo never"));
  harness.start();
  ASSERT_TRUE(wait_until([&] {
    const auto logs = harness.logs();
    return has_message(logs, "first") && has_message(logs, "second");
  }));
  EXPECT_FALSE(harness.outcome().finished) << "the entries must arrive before the command ends";
  harness.stop();
  ASSERT_TRUE(harness.wait(10s));
  const AgentOutcome outcome = harness.outcome();
  EXPECT_FALSE(has_message(outcome.logs, "never"));
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << "a stopped run is not a failure";
  EXPECT_EQ(result_of(outcome).at("signal"), "SIGTERM");
}

TEST_F(ShellAgentTest, ExitZeroCompletesWithExitCodeResult) {
  const AgentOutcome outcome = run("true");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_FALSE(outcome.error.has_value());
  EXPECT_EQ(result_of(outcome).at("exitCode"), 0);
}

TEST_F(ShellAgentTest, NonZeroExitFailsWithExitStatus) {
  const AgentOutcome outcome = run("echo about to fail; exit 3");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "exit status 3");
  EXPECT_EQ(result_of(outcome).at("exitCode"), 3);
  EXPECT_TRUE(has_message(outcome.logs, "about to fail"));
}

TEST_F(ShellAgentTest, DeathBySignalFailsWithSignalName) {
  const AgentOutcome outcome = run("kill -KILL $$");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "killed by signal SIGKILL");
  EXPECT_TRUE(result_of(outcome).at("exitCode").is_null());
}

TEST_F(ShellAgentTest, StopKillsWholeProcessTreeIncludingChildrenThatIgnoreSigterm) {
  // The shell (the group's leader) dies of SIGTERM; its child shell and that
  // one's sleep ignore SIGTERM, so only the SIGKILL after the grace ends them.
  const std::string task =
      "echo pgid=$$; "
      "sh -c 'trap \"\" TERM; sleep 60 & echo grandchild-started; wait' & "
      "trap '' TERM; sleep 60 & wait";
  AgentHarness harness(*library_, options(task, R"({"instructions":"","graceSeconds":0.3})"));
  harness.start();
  ASSERT_TRUE(wait_until([&] { return has_message(harness.logs(), "grandchild-started"); }));
  const pid_t pgid = logged_pgid(harness.logs());
  ASSERT_GT(pgid, 1);
  EXPECT_GE(live_group_members(pgid).size(), 3u);

  harness.stop();
  ASSERT_TRUE(harness.wait(20s));
  EXPECT_EQ(harness.outcome().return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_TRUE(live_group_members(pgid).empty())
      << "run() returned while a process of the group was alive";
  // The killed grandchildren are zombies until init reaps them (in some
  // containers init does that only now and then), so the group disappears
  // from kill()'s view a little later.
  EXPECT_TRUE(wait_until([&] { return ::kill(-pgid, 0) != 0 && errno == ESRCH; }, 30s))
      << "a process of the group " << pgid << " is still there";
}

TEST_F(ShellAgentTest, ProcessesLeftRunningWhenCommandExitsAreTerminated) {
  const AgentOutcome outcome = run("echo pgid=$$; sleep 60 & exit 0");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  const pid_t pgid = logged_pgid(outcome.logs);
  ASSERT_GT(pgid, 1);
  EXPECT_TRUE(live_group_members(pgid).empty());
}

TEST_F(ShellAgentTest, BytesThatAreNotUtf8AreReplaced) {
  const AgentOutcome outcome =
      run(R"(printf 'a\377b\n'; printf 'caf\303\251\n'; printf 'cut \342\202')");
  EXPECT_EQ(output_lines(outcome.logs),
            (std::vector<std::string>{"a\xEF\xBF\xBD"
                                      "b",
                                      "caf\xC3\xA9", "cut \xEF\xBF\xBD"}));
  for (const std::string& line : output_lines(outcome.logs)) EXPECT_TRUE(is_valid_utf8(line));
}

TEST_F(ShellAgentTest, LongLinesAreSplitAtMaxLineLength) {
  const AgentOutcome outcome =
      run("echo 0123456789abcdefghijXYZ", R"({"instructions":"","maxLineLength":10})");
  EXPECT_EQ(output_lines(outcome.logs),
            (std::vector<std::string>{"0123456789", "abcdefghij", "XYZ"}));
}

TEST_F(ShellAgentTest, LongLineSplitsNeverCutAUtf8Character) {
  // Nine ASCII bytes, then two-byte characters: byte 10 is inside one.
  const AgentOutcome outcome = run(R"(printf 'aaaaaaaaa\303\251\303\251\303\251\303\251\n')",
                                   R"({"instructions":"","maxLineLength":10})");
  const std::vector<std::string> lines = output_lines(outcome.logs);
  ASSERT_GE(lines.size(), 2u);
  std::string joined;
  for (const std::string& line : lines) {
    EXPECT_LE(line.size(), 10u);
    EXPECT_TRUE(is_valid_utf8(line)) << line;
    joined += line;
  }
  EXPECT_EQ(joined, "aaaaaaaaa\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
}

TEST_F(ShellAgentTest, FinalLinesWithoutNewlineAreLogged) {
  const AgentOutcome outcome = run("printf 'out-partial'; printf 'err-partial' >&2");
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_INFO),
            std::vector<std::string>{"out-partial"});
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_WARN),
            std::vector<std::string>{"err-partial"});
}

TEST_F(ShellAgentTest, FloodOfOutputOnBothStreamsIsStreamedCompletely) {
  constexpr int lines = 40000;
  const AgentOutcome outcome =
      run("seq 1 " + std::to_string(lines) + " >&2 & seq 1 " + std::to_string(lines) + "; wait");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  std::vector<std::string> expected;
  for (int i = 1; i <= lines; ++i) expected.push_back(std::to_string(i));
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_INFO), expected);
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_WARN), expected);
}

TEST_F(ShellAgentTest, StopEndsCommandThatWritesWithoutPause) {
  AgentHarness harness(*library_, options("yes flooding"));
  harness.start();
  ASSERT_TRUE(wait_until([&] { return harness.logs().size() >= 1000; }));
  harness.stop();
  ASSERT_TRUE(harness.wait(10s)) << "a stop must be seen while output keeps coming";
  const AgentOutcome outcome = harness.outcome();
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(result_of(outcome).at("signal"), "SIGTERM");
}

TEST_F(ShellAgentTest, CommandSeesInstanceIdInEnvironment) {
  AgentRunOptions run_options = options("echo \"id=$NIGHTSHIFT_INSTANCE_ID\"");
  run_options.instance_id = "6f1c2d3e-0000-4000-8000-00000000abcd";
  const AgentOutcome outcome = nightshift::testing::run_agent(*library_, run_options, 30s);
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_INFO),
            std::vector<std::string>{"id=6f1c2d3e-0000-4000-8000-00000000abcd"});
}

TEST_F(ShellAgentTest, CommandRunsInTheWorkspace) {
  const AgentOutcome outcome = run("pwd -P");
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_INFO),
            std::vector<std::string>{fs::canonical(workspace_.path()).string()});
}

TEST_F(ShellAgentTest, CommandReadsEndOfFileFromStdin) {
  const AgentOutcome outcome = run("cat; echo stdin-closed");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_TRUE(has_message(outcome.logs, "stdin-closed"));
}

TEST_F(ShellAgentTest, EmptyTaskFailsWithClearError) {
  for (const std::string task : {"", "   \n"}) {
    const AgentOutcome outcome = run(task);
    EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
    ASSERT_TRUE(outcome.error.has_value());
    EXPECT_NE(outcome.error->find("no command to run"), std::string::npos) << *outcome.error;
  }
}

TEST_F(ShellAgentTest, CommandParamIsRunWhenTaskIsEmpty) {
  const AgentOutcome outcome = run("", R"({"instructions":"","command":"echo from-param"})");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(messages_at(outcome.logs, NIGHTSHIFT_LOG_INFO), std::vector<std::string>{"from-param"});
}

TEST_F(ShellAgentTest, MissingWorkspaceFailsWithReason) {
  AgentRunOptions run_options = options("true");
  run_options.workspace = workspace_.path() / "does-not-exist";
  const AgentOutcome outcome = nightshift::testing::run_agent(*library_, run_options, 30s);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  ASSERT_TRUE(outcome.error.has_value());
  EXPECT_NE(outcome.error->find("cannot start /bin/sh"), std::string::npos) << *outcome.error;
}

TEST_F(ShellAgentTest, InvalidParamsFailWithTheParamName) {
  const AgentOutcome outcome = run("true", R"({"instructions":"","maxLineLength":2})");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  ASSERT_TRUE(outcome.error.has_value());
  EXPECT_NE(outcome.error->find("maxLineLength"), std::string::npos) << *outcome.error;
}

}  // namespace
