// The `nightshift` client commands, run as the real binary against a real
// `nightshift serve` (its own data directory and workspace, port 0).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "child_process.hpp"
#include "test_support.hpp"

namespace nightshift::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto kCommandTimeout = 30s;

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CommandResult& result) {
  return os << "exit " << result.exit_code << "\n--- stdout:\n"
            << result.out << "--- stderr:\n"
            << result.err;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A TCP port on 127.0.0.1 with nothing listening on it.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(data_dir_);
    std::filesystem::create_directories(workspace_);
    start_host();
  }

  // Options the fixture's host runs with, beyond its address and directories.
  virtual std::vector<std::string> extra_serve_arguments() const { return {}; }

  void TearDown() override {
    if (!host_) return;
    host_->send_signal(SIGTERM);
    if (!host_->wait_for_exit(20s)) ADD_FAILURE() << "the host did not stop on SIGTERM";
  }

  void start_host() {
    const auto out = dir_ / "host.out";
    // The built-in agents are found next to the binary; --agents-dir names
    // them explicitly so the tests do not depend on that layout.
    std::vector<std::string> argv{NIGHTSHIFT_TEST_BINARY, "serve", "--listen", "127.0.0.1:0"};
    for (const auto& argument :
         {std::string("--data-dir"), data_dir_.string(), std::string("--workspace"),
          workspace_.string(), std::string("--agents-dir"), std::string(NIGHTSHIFT_TEST_AGENTS_DIR),
          std::string("--agents-dir"), std::string(NIGHTSHIFT_RUNS_TEST_AGENTS_DIR)}) {
      argv.push_back(argument);
    }
    for (const auto& argument : extra_serve_arguments()) argv.push_back(argument);
    host_ = std::make_unique<ChildProcess>(
        argv,
        environment_with({{"XDG_DATA_HOME", (dir_ / "xdg-data").string()},
                          {"XDG_CONFIG_HOME", (dir_ / "xdg-config").string()},
                          {"NIGHTSHIFT_TOKEN", ""},
                          {"NIGHTSHIFT_URL", ""}}),
        out, dir_ / "host.err", dir_.path());
    const std::regex listening("listening on (http://[^\\s]+)\n");
    std::smatch match;
    ASSERT_TRUE(wait_until(
        [&] {
          const auto text = read_file(out);
          return std::regex_search(text, match, listening) || host_->wait_for_exit(0ms);
        },
        20s))
        << read_file(dir_ / "host.err");
    const auto text = read_file(out);
    ASSERT_TRUE(std::regex_search(text, match, listening)) << read_file(dir_ / "host.err");
    url_ = match[1];
    token_ = trim(read_file(data_dir_ / "token"));
    ASSERT_FALSE(token_.empty());
  }

  // The environment a command runs in: the host's URL and token, no colour
  // preference, and no token file of the user's.
  std::map<std::string, std::string> client_environment(
      std::map<std::string, std::string> overrides) const {
    std::map<std::string, std::string> environment{
        {"NIGHTSHIFT_URL", url_},
        {"NIGHTSHIFT_TOKEN", token_},
        {"NO_COLOR", ""},
        {"XDG_DATA_HOME", (dir_ / "client-xdg-data").string()}};
    for (auto& [name, value] : overrides) environment[name] = value;
    return environment;
  }

  std::unique_ptr<ChildProcess> spawn(const std::vector<std::string>& args,
                                      std::map<std::string, std::string> env, int& number) {
    number = ++command_count_;
    std::vector<std::string> argv{NIGHTSHIFT_TEST_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(
        argv, environment_with(client_environment(std::move(env))),
        dir_ / ("cmd-" + std::to_string(number) + ".out"),
        dir_ / ("cmd-" + std::to_string(number) + ".err"), workspace_);
  }

  CommandResult collect(ChildProcess& child, int number) {
    CommandResult result;
    const auto code = child.wait_for_exit(kCommandTimeout);
    result.exit_code = code ? *code : -1;
    result.out = read_file(dir_ / ("cmd-" + std::to_string(number) + ".out"));
    result.err = read_file(dir_ / ("cmd-" + std::to_string(number) + ".err"));
    return result;
  }

  CommandResult cli(const std::vector<std::string>& args,
                    std::map<std::string, std::string> env = {}) {
    int number = 0;
    auto child = spawn(args, std::move(env), number);
    return collect(*child, number);
  }

  // Starts a run and returns its instanceId.
  std::string start(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"start"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto result = cli(argv);
    EXPECT_EQ(result.exit_code, 0) << result;
    return trim(result.out);
  }

  std::string status_of(const std::string& id) {
    const auto result = cli({"show", id, "--json"});
    if (result.exit_code != 0) return "show failed: " + result.err;
    return json::value_to<std::string>(json::parse(result.out).at("status"));
  }

  TempDir dir_;
  std::filesystem::path data_dir_ = dir_ / "data";
  std::filesystem::path workspace_ = dir_ / "workspace";
  std::string url_;
  std::string token_;
  std::unique_ptr<ChildProcess> host_;
  int command_count_ = 0;
};

const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");

// ---- agents -----------------------------------------------------------------

TEST_F(CliTest, AgentsListsBuiltInAgentsGroupedAndUnavailableOnesWithTheirReason) {
  write_file(workspace_ / ".nightshift" / "remix" / "orphan.md",
             "---\nbase: installed:no-such-agent\n---\n");
  const auto result = cli({"agents", "--rescan"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("Installed agents"), std::string::npos) << result;
  EXPECT_NE(result.out.find("installed:echo"), std::string::npos) << result;
  EXPECT_NE(result.out.find("installed:sleep"), std::string::npos) << result;
  EXPECT_NE(result.out.find("Remixes"), std::string::npos) << result;
  const auto orphan_line = result.out.find("remix:orphan");
  ASSERT_NE(orphan_line, std::string::npos) << result;
  const auto line =
      result.out.substr(orphan_line, result.out.find('\n', orphan_line) - orphan_line);
  EXPECT_NE(line.find("unavailable: "), std::string::npos) << line;
  EXPECT_EQ(result.out.find('\033'), std::string::npos) << "no colour when not on a terminal";
  // Each agent's isolation: echo runs in a thread, shell in a process of its own.
  EXPECT_NE(result.out.find("ISOLATION"), std::string::npos) << result;
  const auto row = [&](const std::string& id) {
    const auto at = result.out.find(id);
    return at == std::string::npos ? std::string()
                                   : result.out.substr(at, result.out.find('\n', at) - at);
  };
  EXPECT_NE(row("installed:echo ").find(" thread "), std::string::npos) << row("installed:echo ");
  EXPECT_NE(row("installed:shell ").find(" process "), std::string::npos)
      << row("installed:shell ");
}

TEST_F(CliTest, AgentsJsonIsTheApiCatalog) {
  const auto result = cli({"agents", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const auto catalog = json::parse(result.out);
  bool found_echo = false;
  for (const auto& agent : catalog.at("agents").as_array()) {
    if (agent.at("id") == "installed:echo") {
      found_echo = true;
      EXPECT_EQ(agent.at("available"), true);
      EXPECT_EQ(agent.at("source"), "installed");
    }
  }
  EXPECT_TRUE(found_echo) << result.out;
}

// ---- start ------------------------------------------------------------------

TEST_F(CliTest, StartPrintsTheInstanceIdOfARunTheHostKnows) {
  const auto id = start({"installed:echo", "--task", "hello"});
  EXPECT_TRUE(std::regex_match(id, kUuid)) << id;
  EXPECT_EQ(cli({"wait", id}).exit_code, 0);
  const auto shown = cli({"show", id});
  ASSERT_EQ(shown.exit_code, 0) << shown;
  EXPECT_NE(shown.out.find("installed:echo"), std::string::npos) << shown;
  EXPECT_NE(shown.out.find("completed"), std::string::npos) << shown;
  EXPECT_NE(shown.out.find("hello"), std::string::npos) << shown;
}

TEST_F(CliTest, StartJsonPrintsTheRunWithParamsParsedAsJsonOrString) {
  const auto result = cli({"start", "repo-scan", "--json", "--param", "topFiles=5", "--param",
                           "useGitignore=false", "--param", R"(markers=["TODO","XXX"])", "--param",
                           "instructions=plain text", "--param", "0=not json"});
  // "0=not json" would be a param named 0: the host rejects it, naming it.
  EXPECT_EQ(result.exit_code, 7) << result;
  EXPECT_NE(result.err.find("'0'"), std::string::npos) << result;

  const auto started =
      cli({"start", "repo-scan", "--json", "--param", "topFiles=5", "--param", "useGitignore=false",
           "--param", R"(markers=["TODO","XXX"])", "--param", "instructions=plain text"});
  ASSERT_EQ(started.exit_code, 0) << started;
  const auto run = json::parse(started.out).as_object();
  EXPECT_EQ(run.at("agentId"), "installed:repo-scan");
  EXPECT_TRUE(std::regex_match(json::value_to<std::string>(run.at("instanceId")), kUuid));
  const auto& params = run.at("params").as_object();
  EXPECT_EQ(params.at("topFiles"), 5) << json::serialize(params);
  EXPECT_EQ(params.at("useGitignore"), false);
  EXPECT_EQ(params.at("markers").as_array().size(), 2u);
  EXPECT_EQ(params.at("instructions"), "plain text");
  cli({"wait", json::value_to<std::string>(run.at("instanceId"))});
}

TEST_F(CliTest, StartTakesTheTaskFromAFile) {
  write_file(workspace_ / "task.txt", "from a file\n");
  const auto id = start({"echo", "--task-file", (workspace_ / "task.txt").string()});
  ASSERT_EQ(cli({"wait", id}).exit_code, 0);
  const auto logs = cli({"logs", id});
  EXPECT_NE(logs.out.find("from a file"), std::string::npos) << logs;
}

TEST_F(CliTest, StartFollowStreamsTheEchoLogAndExitsZero) {
  const auto result = cli({"start", "echo", "--task", "line one\nline two", "--follow"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const auto lines = lines_of(result.out);
  ASSERT_GE(lines.size(), 3u) << result;
  EXPECT_TRUE(std::regex_match(lines[0], kUuid)) << result;
  const auto one = result.out.find("line one");
  const auto two = result.out.find("line two");
  ASSERT_NE(one, std::string::npos) << result;
  ASSERT_NE(two, std::string::npos) << result;
  EXPECT_LT(one, two);
}

TEST_F(CliTest, StartFollowOfASleepEndsWithTheRunAndItsOutcome) {
  const auto completed = cli({"start", "sleep", "--param", "seconds=0.5", "--follow"});
  EXPECT_EQ(completed.exit_code, 0) << completed;
  const auto failed =
      cli({"start", "sleep", "--param", "seconds=0.3", "-p", "failWith=boom", "--follow"});
  EXPECT_EQ(failed.exit_code, 20) << failed;
  EXPECT_NE(failed.err.find("boom"), std::string::npos) << failed;
}

TEST_F(CliTest, StartFollowJsonPrintsTheRunEntriesAndFinalRunAsJsonLines) {
  const auto result = cli({"start", "echo", "--task", "x", "--follow", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const auto lines = lines_of(result.out);
  ASSERT_GE(lines.size(), 3u) << result;
  EXPECT_EQ(json::parse(lines.front()).at("agentId"), "installed:echo");
  EXPECT_EQ(json::parse(lines[1]).at("seq"), 1);
  EXPECT_EQ(json::parse(lines.back()).at("status"), "completed");
}

TEST_F(CliTest, FollowOnATerminalDrawsAProgressBarAndColoursUnlessNoColor) {
  const std::vector<std::string> argv{NIGHTSHIFT_TEST_BINARY, "start",   "sleep", "--param",
                                      "seconds=1.2",          "--follow"};
  const auto coloured =
      run_in_terminal(argv, environment_with(client_environment({})), workspace_, kCommandTimeout);
  EXPECT_EQ(coloured.exit_code, 0) << coloured.output;
  EXPECT_NE(coloured.output.find("%"), std::string::npos) << coloured.output;
  EXPECT_NE(coloured.output.find("[#"), std::string::npos) << coloured.output;
  EXPECT_NE(coloured.output.find("\033[2m"), std::string::npos) << coloured.output;

  const auto plain = run_in_terminal(
      argv, environment_with(client_environment({{"NO_COLOR", "1"}})), workspace_, kCommandTimeout);
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find("tick"), std::string::npos) << plain.output;
  EXPECT_FALSE(std::regex_search(plain.output, std::regex("\033\\[[0-9;]*m"))) << plain.output;
}

// ---- wait -------------------------------------------------------------------

TEST_F(CliTest, WaitExitsZeroWhenTheRunCompleted) {
  const auto id = start({"sleep", "--param", "seconds=0.3"});
  const auto result = cli({"wait", id});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("completed"), std::string::npos) << result;
}

TEST_F(CliTest, WaitExits20WhenTheRunFailed) {
  const auto id =
      start({"sleep", "--param", "seconds=0.3", "--param", "failWith=broken on purpose"});
  const auto result = cli({"wait", id});
  EXPECT_EQ(result.exit_code, 20) << result;
  EXPECT_NE(result.err.find("broken on purpose"), std::string::npos) << result;
}

TEST_F(CliTest, WaitExits21WhenAnotherProcessStopsTheRun) {
  const auto id = start({"sleep", "--param", "seconds=60"});
  int number = 0;
  auto waiter = spawn({"wait", id}, {}, number);
  ASSERT_TRUE(wait_until([&] { return status_of(id) == "running"; })) << status_of(id);
  const auto stopped = cli({"stop", id});
  EXPECT_EQ(stopped.exit_code, 0) << stopped;
  const auto result = collect(*waiter, number);
  EXPECT_EQ(result.exit_code, 21) << result;
}

TEST_F(CliTest, WaitHelpDocumentsTheOutcomeExitCodes) {
  const auto result = cli({"wait", "--help"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("20  wait, --follow: the run failed"), std::string::npos) << result;
  EXPECT_NE(result.out.find("21  wait, --follow: the run was cancelled"), std::string::npos);
  EXPECT_NE(result.out.find("3  no Nightshift host"), std::string::npos);
}

// ---- ps ---------------------------------------------------------------------

TEST_F(CliTest, PsListsActiveRunsAndAllAddsTheHistory) {
  const auto finished = start({"echo", "--task", "done already"});
  ASSERT_EQ(cli({"wait", finished}).exit_code, 0);
  const auto active = start({"sleep", "--param", "seconds=60", "--task", "a long nap"});

  const auto ps = cli({"ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps;
  EXPECT_NE(ps.out.find("ID"), std::string::npos);
  EXPECT_NE(ps.out.find("DURATION"), std::string::npos);
  EXPECT_NE(ps.out.find("ISOLATION"), std::string::npos);
  EXPECT_NE(ps.out.find(active.substr(0, 8)), std::string::npos) << ps;
  EXPECT_NE(ps.out.find("a long nap"), std::string::npos) << ps;
  EXPECT_EQ(ps.out.find("done already"), std::string::npos) << ps;

  const auto all = cli({"ps", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all;
  EXPECT_NE(all.out.find("a long nap"), std::string::npos) << all;
  EXPECT_NE(all.out.find("done already"), std::string::npos) << all;
  EXPECT_NE(all.out.find("completed"), std::string::npos) << all;
  cli({"stop", active});
}

TEST_F(CliTest, PsJsonFiltersByStatusAndAgent) {
  const auto echo_run = start({"echo"});
  const auto failing = start({"sleep", "--param", "seconds=0.1", "--param", "failWith=x"});
  cli({"wait", echo_run});
  cli({"wait", failing});

  const auto failed = cli({"ps", "--status", "failed", "--json"});
  ASSERT_EQ(failed.exit_code, 0) << failed;
  const auto failed_lists = json::parse(failed.out);
  ASSERT_EQ(failed_lists.at("history").as_array().size(), 1u) << failed.out;
  EXPECT_EQ(failed_lists.at("history").at(0).at("instanceId"), failing.c_str());

  const auto by_agent = cli({"ps", "--all", "--agent", "echo", "--json"});
  ASSERT_EQ(by_agent.exit_code, 0) << by_agent;
  const auto agent_lists = json::parse(by_agent.out);
  ASSERT_EQ(agent_lists.at("history").as_array().size(), 1u) << by_agent.out;
  EXPECT_EQ(agent_lists.at("history").at(0).at("instanceId"), echo_run.c_str());
  EXPECT_TRUE(agent_lists.at("active").as_array().empty());
}

TEST_F(CliTest, PsAllFollowsTheHistoryPageByPage) {
  std::set<std::string> started;
  for (int i = 0; i < 5; ++i) {
    const auto id = start({"echo"});
    cli({"wait", id});
    started.insert(id);
  }
  const auto result = cli({"ps", "--all", "--page-size", "2", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  std::set<std::string> listed;
  const auto lists = json::parse(result.out);
  for (const auto& run : lists.at("history").as_array()) {
    listed.insert(json::value_to<std::string>(run.at("instanceId")));
  }
  EXPECT_EQ(listed, started) << result.out;
  const auto text = cli({"ps", "--all", "--page-size", "2"});
  EXPECT_EQ(lines_of(text.out).size(), 6u) << text;
}

TEST_F(CliTest, PsSaysSoWhenNothingRuns) {
  const auto result = cli({"ps"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(trim(result.out), "no active runs");
}

// ---- show, logs, stop, rm -------------------------------------------------------

TEST_F(CliTest, ShowJsonIsTheRunObject) {
  const auto id = start({"echo", "--task", "shown"});
  cli({"wait", id});
  const auto result = cli({"show", id, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const auto run = json::parse(result.out);
  EXPECT_EQ(run.at("instanceId"), id.c_str());
  EXPECT_EQ(run.at("task"), "shown");
  EXPECT_EQ(run.at("status"), "completed");
}

TEST_F(CliTest, LogsPrintsTheEntriesAndJsonPrintsOneObjectPerLine) {
  const auto id = start({"echo", "--task", "first\nsecond"});
  cli({"wait", id});
  const auto text = cli({"logs", id});
  ASSERT_EQ(text.exit_code, 0) << text;
  EXPECT_NE(text.out.find("info  first"), std::string::npos) << text;
  EXPECT_NE(text.out.find("info  second"), std::string::npos) << text;

  const auto json_lines = cli({"logs", id, "--json"});
  ASSERT_EQ(json_lines.exit_code, 0) << json_lines;
  const auto lines = lines_of(json_lines.out);
  ASSERT_GE(lines.size(), 2u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(json::parse(lines[i]).at("seq"), static_cast<std::int64_t>(i + 1)) << lines[i];
  }
  EXPECT_EQ(json::parse(lines[0]).at("message"), "first");
}

TEST_F(CliTest, LogsFollowStreamsUntilTheRunEnds) {
  const auto id = start({"sleep", "--param", "seconds=1.2"});
  const auto result = cli({"logs", id, "--follow"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("tick"), std::string::npos) << result;
  EXPECT_EQ(status_of(id), "completed");
}

TEST_F(CliTest, FollowAndWaitOfARunThatHasAlreadyEndedReturnAtOnce) {
  const auto id = start({"sleep", "--param", "seconds=0.1", "--param", "failWith=early"});
  ASSERT_EQ(cli({"wait", id}).exit_code, 20);
  const auto logs = cli({"logs", id, "--follow"});
  EXPECT_EQ(logs.exit_code, 20) << logs;
  EXPECT_NE(logs.out.find("tick"), std::string::npos) << logs;
  const auto again = cli({"wait", id, "--json"});
  EXPECT_EQ(again.exit_code, 20) << again;
  EXPECT_EQ(json::parse(again.out).at("error"), "early") << again;
}

TEST_F(CliTest, StopAsksTheRunToStop) {
  const auto id = start({"sleep", "--param", "seconds=60"});
  const auto result = cli({"stop", id});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(result.out.find("stopping") != std::string::npos ||
              result.out.find("cancelled") != std::string::npos)
      << result;
  EXPECT_EQ(cli({"wait", id}).exit_code, 21);
}

TEST_F(CliTest, SendGivesARunningAgentAMessageAndShowPrintsItsUsage) {
  const auto id = start({"runs-listener"});
  ASSERT_TRUE(wait_until(
      [&] {
        return cli({"show", id}).out.find("running") != std::string::npos;
      },
      20s));
  const auto sent = cli({"send", id.substr(0, 8), "look at the tests"});
  ASSERT_EQ(sent.exit_code, 0) << sent;
  EXPECT_NE(sent.out.find("message recorded as log entry"), std::string::npos) << sent;
  ASSERT_EQ(cli({"send", id, "done"}).exit_code, 0);
  EXPECT_EQ(cli({"wait", id}).exit_code, 0);
  const auto logs = cli({"logs", id});
  EXPECT_NE(logs.out.find("heard: look at the tests"), std::string::npos) << logs;
  const auto shown = cli({"show", id});
  EXPECT_NE(shown.out.find("22 (20 prompt, 2 completion)"), std::string::npos) << shown;
}

TEST_F(CliTest, SendToAnAgentWithoutMessagesExits7AndToAnEndedRunExits9) {
  const auto sleeping = start({"sleep", "--param", "seconds=60"});
  const auto refused = cli({"send", sleeping, "hello"});
  EXPECT_EQ(refused.exit_code, 7) << refused;
  EXPECT_NE(refused.err.find("does not take messages"), std::string::npos) << refused;
  cli({"stop", sleeping});
  cli({"wait", sleeping});
  EXPECT_EQ(cli({"send", sleeping, "hello"}).exit_code, 9);
}

TEST_F(CliTest, RmRemovesAFinishedRun) {
  const auto id = start({"echo"});
  cli({"wait", id});
  const auto result = cli({"rm", id});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(cli({"show", id}).exit_code, 5);
}

// ---- id prefixes --------------------------------------------------------------

TEST_F(CliTest, AUniqueIdPrefixNamesTheRun) {
  const auto id = start({"echo", "--task", "by prefix"});
  cli({"wait", id});
  // The shortest prefix that no other run shares is the whole point; with
  // one run, a few characters do.
  const auto result = cli({"show", id.substr(0, 6), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(json::parse(result.out).at("instanceId"), id.c_str());
}

TEST_F(CliTest, AnAmbiguousIdPrefixIsAnErrorListingTheCandidates) {
  // Among 17 ids two share their first character (16 hex digits); start runs
  // until two share a prefix.
  std::vector<std::string> ids;
  std::string shared;
  std::pair<std::string, std::string> pair;
  while (shared.empty() && ids.size() < 17) {
    const auto id = start({"echo"});
    for (const auto& other : ids) {
      std::size_t common = 0;
      while (common < id.size() && id[common] == other[common]) ++common;
      if (common > shared.size()) {
        shared = id.substr(0, common);
        pair = {id, other};
      }
    }
    ids.push_back(id);
  }
  ASSERT_FALSE(shared.empty());
  const auto result = cli({"show", shared});
  EXPECT_EQ(result.exit_code, 5) << result;
  EXPECT_NE(result.err.find("ambiguous"), std::string::npos) << result;
  EXPECT_NE(result.err.find(pair.first), std::string::npos) << result;
  EXPECT_NE(result.err.find(pair.second), std::string::npos) << result;
}

// ---- errors and their exit codes ----------------------------------------------------

TEST_F(CliTest, NoHostAtTheUrlExits3AndSaysHowToStartOne) {
  const auto url = "http://127.0.0.1:" + std::to_string(closed_port());
  const auto result = cli({"ps", "--url", url});
  EXPECT_EQ(result.exit_code, 3) << result;
  EXPECT_NE(result.err.find("no Nightshift host at " + url), std::string::npos) << result;
  EXPECT_NE(result.err.find("nightshift serve"), std::string::npos) << result;
}

TEST_F(CliTest, AWrongTokenExits4) {
  const auto result = cli({"ps"}, {{"NIGHTSHIFT_TOKEN", "not-the-token"}});
  EXPECT_EQ(result.exit_code, 4) << result;
  EXPECT_NE(result.err.find("401"), std::string::npos) << result;
  const auto flag = cli({"agents", "--token", "also-wrong"});
  EXPECT_EQ(flag.exit_code, 4) << flag;
}

TEST_F(CliTest, TheTokenComesFromTheDataDirectoryWhenNotGiven) {
  const auto with_flag = cli({"ps", "--data-dir", data_dir_.string()}, {{"NIGHTSHIFT_TOKEN", ""}});
  EXPECT_EQ(with_flag.exit_code, 0) << with_flag;
  // The default data directory is $XDG_DATA_HOME/nightshift.
  const auto xdg = dir_ / "xdg-for-client";
  write_file(xdg / "nightshift" / "token", token_ + "\n");
  const auto from_xdg = cli({"ps"}, {{"NIGHTSHIFT_TOKEN", ""}, {"XDG_DATA_HOME", xdg.string()}});
  EXPECT_EQ(from_xdg.exit_code, 0) << from_xdg;
  const auto none = cli({"ps"}, {{"NIGHTSHIFT_TOKEN", ""}});
  EXPECT_EQ(none.exit_code, 4) << none;
}

TEST_F(CliTest, AnUnknownRunExits5) {
  const auto full = cli({"show", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(full.exit_code, 5) << full;
  const auto prefix = cli({"logs", "abcdef"});
  EXPECT_EQ(prefix.exit_code, 5) << prefix;
  EXPECT_NE(prefix.err.find("no run with id 'abcdef'"), std::string::npos) << prefix;
  const auto not_an_id = cli({"wait", "not-an-id"});
  EXPECT_EQ(not_an_id.exit_code, 5) << not_an_id;
}

TEST_F(CliTest, AnUnknownOrAmbiguousAgentExits6) {
  const auto unknown = cli({"start", "no-such-agent"});
  EXPECT_EQ(unknown.exit_code, 6) << unknown;
  EXPECT_NE(unknown.err.find("no-such-agent"), std::string::npos) << unknown;
  const auto unknown_id = cli({"start", "installed:no-such-agent"});
  EXPECT_EQ(unknown_id.exit_code, 6) << unknown_id;

  // A remix named like an installed agent makes the bare name ambiguous.
  write_file(workspace_ / ".nightshift" / "remix" / "echo.md", "---\nbase: installed:echo\n---\n");
  ASSERT_EQ(cli({"agents", "--rescan"}).exit_code, 0);
  const auto ambiguous = cli({"start", "echo"});
  EXPECT_EQ(ambiguous.exit_code, 6) << ambiguous;
  EXPECT_NE(ambiguous.err.find("installed:echo"), std::string::npos) << ambiguous;
  EXPECT_NE(ambiguous.err.find("remix:echo"), std::string::npos) << ambiguous;
}

TEST_F(CliTest, InvalidParamsExit7WithTheHostsMessageNamingTheParam) {
  const auto result = cli({"start", "sleep", "--param", "bogusParam=1"});
  EXPECT_EQ(result.exit_code, 7) << result;
  EXPECT_NE(result.err.find("bogusParam"), std::string::npos) << result;
  const auto malformed = cli({"start", "sleep", "--param", "no-equals-sign"});
  EXPECT_EQ(malformed.exit_code, 2) << malformed;
}

TEST_F(CliTest, ACommandLineTheParserRefusesExits2AndSaysWhy) {
  const auto unknown_option = cli({"schedule", "add", "echo", "@daily", "--cron", "@daily"});
  EXPECT_EQ(unknown_option.exit_code, 2) << unknown_option;
  EXPECT_NE(unknown_option.err.find("--cron"), std::string::npos) << unknown_option;
  const auto missing_argument = cli({"schedule", "add", "echo"});
  EXPECT_EQ(missing_argument.exit_code, 2) << missing_argument;
  EXPECT_NE(missing_argument.err.find("CRON"), std::string::npos) << missing_argument;
  const auto help = cli({"start", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help;
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos) << help;
}

TEST_F(CliTest, StopOfAFinishedRunAndRmOfAnActiveRunExit9) {
  const auto finished = start({"echo"});
  cli({"wait", finished});
  const auto stop = cli({"stop", finished});
  EXPECT_EQ(stop.exit_code, 9) << stop;
  const auto active = start({"sleep", "--param", "seconds=60"});
  const auto rm = cli({"rm", active});
  EXPECT_EQ(rm.exit_code, 9) << rm;
  cli({"stop", active});
}

// A host with one worker slot and no queue, so a second start finds it full.
class CliAtCapacityTest : public CliTest {
 protected:
  std::vector<std::string> extra_serve_arguments() const override {
    return {"--max-concurrent", "1", "--max-queued", "0"};
  }
};

TEST_F(CliAtCapacityTest, AStartWhenTheHostIsFullExits8) {
  const auto busy = start({"sleep", "--param", "seconds=60"});
  const auto result = cli({"start", "echo"});
  EXPECT_EQ(result.exit_code, 8) << result;
  EXPECT_NE(result.err.find("at_capacity"), std::string::npos) << result;
  cli({"stop", busy});
}

// A host that lets one message wait unread per run.
class CliUnreadBoundTest : public CliTest {
 protected:
  std::vector<std::string> extra_serve_arguments() const override {
    return {"--max-unread-messages", "1"};
  }
};

TEST_F(CliUnreadBoundTest, ASendPastTheRunsUnreadMessagesExits8) {
  // The agent sleeps before it reads: the first message stays unread.
  const auto id = start({"runs-listener", "--param", "sleepFirstMs=600000"});
  ASSERT_EQ(cli({"send", id, "first"}).exit_code, 0);
  const auto refused = cli({"send", id, "second"});
  EXPECT_EQ(refused.exit_code, 8) << refused;
  EXPECT_NE(refused.err.find("has not read"), std::string::npos) << refused;
  cli({"stop", id});
}

// A host whose runs in threads get 4 MiB stacks.
// The runs-stack agent logs "stack <N> KiB", the stack its thread has: the
// size asked for, and under a page more (the top of a worker's stack mapping
// holds what its thread was started with, above the stack proper).
void expect_stack_of(const CommandResult& result, int kib) {
  const auto at = result.out.find("stack ");
  ASSERT_NE(at, std::string::npos) << result;
  const int got = std::atoi(result.out.c_str() + at + 6);
  EXPECT_GE(got, kib) << result;
  EXPECT_LT(got, kib + 4) << result;
}

class CliThreadStackTest : public CliTest {
 protected:
  std::vector<std::string> extra_serve_arguments() const override {
    return {"--thread-stack-kib", "4096"};
  }
};

TEST_F(CliThreadStackTest, ARunInAThreadGetsTheStackServeWasGiven) {
  // 2 MiB deep: twice what a run's thread gets by default.
  const auto result = cli({"start", "runs-stack", "--param", "useKib=2048", "--follow"});
  ASSERT_EQ(result.exit_code, 0) << result;
  expect_stack_of(result, 4096);
}

TEST_F(CliTest, ARunInAThreadGetsA1MiBStackByDefault) {
  const auto result = cli({"start", "runs-stack", "--follow"});
  ASSERT_EQ(result.exit_code, 0) << result;
  expect_stack_of(result, 1024);
}

TEST_F(CliTest, ServeRefusesAThreadStackOutsideItsRange) {
  for (const char* kib : {"16", "2097152"}) {
    const auto result = cli({"serve", "--listen", "127.0.0.1:0", "--data-dir",
                             (dir_ / "other-data").string(), "--thread-stack-kib", kib});
    EXPECT_NE(result.exit_code, 0) << result;
    EXPECT_NE(result.err.find("--thread-stack-kib"), std::string::npos) << result;
    EXPECT_NE(result.err.find("not in range 64 to 1048576"), std::string::npos) << result;
  }
}

// ---- remix new ------------------------------------------------------------------

TEST_F(CliTest, RemixNewWritesARemixTheHostRuns) {
  write_file(dir_ / "instructions.md", "Be brief.\n");
  const auto result =
      cli({"remix", "new", "quick-nap", "--base", "sleep", "--param", "seconds=0.2",
           "--instructions-file", (dir_ / "instructions.md").string(), "--description",
           "A nap with \"quotes\"", "--workspace", workspace_.string()});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.err, "") << "the host found the remix usable";
  const auto file = workspace_ / ".nightshift" / "remix" / "quick-nap.md";
  const auto text = read_file(file);
  EXPECT_EQ(text.rfind("---\n", 0), 0u) << text;
  EXPECT_NE(text.find("base: \"installed:sleep\""), std::string::npos) << text;
  EXPECT_NE(text.find("  seconds: 0.2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("---\nBe brief.\n"), std::string::npos) << text;

  // remix new had the host rescan, so the remix is listed and startable now.
  const auto agents = json::parse(cli({"agents", "--json"}).out);
  bool listed = false;
  for (const auto& agent : agents.at("agents").as_array()) {
    if (agent.at("id") != "remix:quick-nap") continue;
    listed = true;
    EXPECT_EQ(agent.at("available"), true) << json::serialize(agent);
    EXPECT_EQ(agent.at("baseAgentId"), "installed:sleep");
    EXPECT_EQ(agent.at("description"), "A nap with \"quotes\"");
  }
  ASSERT_TRUE(listed) << json::serialize(agents);

  const auto run = cli({"start", "quick-nap", "--json", "--follow"});
  ASSERT_EQ(run.exit_code, 0) << run;
  const auto params = json::parse(lines_of(run.out).front()).at("params");
  EXPECT_EQ(params.at("seconds"), 0.2) << json::serialize(params);
  EXPECT_NE(json::value_to<std::string>(params.at("instructions")).find("Be brief."),
            std::string::npos)
      << json::serialize(params);
}

TEST_F(CliTest, RemixNewWritesDottedParamsAsNestedObjectsAndWarnsWhenTheHostRejectsThem) {
  const auto result = cli({"remix", "new", "nested", "--base", "installed:echo", "--param",
                           "outer.inner=1", "--param", "outer.word=two words"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const auto text = read_file(workspace_ / ".nightshift" / "remix" / "nested.md");
  EXPECT_NE(text.find(R"(  outer: {"inner": 1, "word": "two words"})"), std::string::npos) << text;
  // echo has no param 'outer', so the host lists the remix as unavailable.
  EXPECT_NE(result.err.find("unavailable"), std::string::npos) << result;
  EXPECT_NE(result.err.find("outer"), std::string::npos) << result;
}

TEST_F(CliTest, RemixNewRefusesToOverwriteWithoutForce) {
  const auto first =
      cli({"remix", "new", "nap", "--base", "installed:sleep", "--param", "seconds=1"});
  ASSERT_EQ(first.exit_code, 0) << first;
  const auto file = workspace_ / ".nightshift" / "remix" / "nap.md";
  const auto again =
      cli({"remix", "new", "nap", "--base", "installed:sleep", "--param", "seconds=2"});
  EXPECT_EQ(again.exit_code, 10) << again;
  EXPECT_NE(read_file(file).find("seconds: 1"), std::string::npos);
  const auto forced =
      cli({"remix", "new", "nap", "--base", "installed:sleep", "--param", "seconds=2", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced;
  EXPECT_NE(read_file(file).find("seconds: 2"), std::string::npos);
}

TEST_F(CliTest, RemixNewRejectsAnInvalidName) {
  const std::vector<std::string> invalid_names{"Upper", ".dot-first", "has space",
                                               std::string(65, 'a')};
  for (const auto& name : invalid_names) {
    const auto result = cli({"remix", "new", name, "--base", "installed:echo"});
    EXPECT_EQ(result.exit_code, 2) << name << "\n" << result;
  }
  EXPECT_FALSE(std::filesystem::exists(workspace_ / ".nightshift" / "remix"));
}

// ---- automation: rerun, schedule, webhook -------------------------------------

TEST_F(CliTest, RerunStartsAFinishedRunAgain) {
  const auto id = start({"echo", "--task", "once more"});
  cli({"wait", id});
  const auto result = cli({"rerun", id.substr(0, 8)});
  ASSERT_EQ(result.exit_code, 0) << result;
  const auto again = trim(result.out);
  EXPECT_TRUE(std::regex_match(again, kUuid)) << again;
  const auto shown = json::parse(cli({"show", again, "--json"}).out);
  EXPECT_EQ(shown.at("rerunOf"), id.c_str());
  EXPECT_EQ(shown.at("task"), "once more");
  // Said in words too; a run started by hand has no origin line.
  const std::string words = cli({"show", again}).out;
  const auto origin = words.find("Origin:");
  ASSERT_NE(origin, std::string::npos) << words;
  const std::string line = words.substr(origin, words.find('\n', origin) - origin);
  EXPECT_NE(line.find("re-run of " + id), std::string::npos) << line;
  EXPECT_EQ(cli({"show", id}).out.find("Origin:"), std::string::npos);
}

TEST_F(CliTest, ScheduleAddListDisableTriggerAndRemove) {
  const auto added = cli({"schedule", "add", "echo", "30 2 * * *", "--timezone", "Europe/Berlin",
                          "--task", "nightly", "--json"});
  ASSERT_EQ(added.exit_code, 0) << added;
  const auto schedule = json::parse(added.out);
  const std::string id = json::value_to<std::string>(schedule.at("id"));
  EXPECT_EQ(schedule.at("agentId"), "installed:echo");
  EXPECT_TRUE(schedule.at("nextRunAt").is_string());

  const auto listed = cli({"schedule", "ls"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  EXPECT_NE(listed.out.find("30 2 * * *"), std::string::npos) << listed;
  EXPECT_NE(listed.out.find("Europe/Berlin"), std::string::npos) << listed;
  EXPECT_NE(listed.out.find(id.substr(0, 8)), std::string::npos) << listed;

  const auto disabled = cli({"schedule", "disable", id.substr(0, 8), "--json"});
  ASSERT_EQ(disabled.exit_code, 0) << disabled;
  EXPECT_EQ(json::parse(disabled.out).at("enabled"), false);

  const auto triggered = cli({"schedule", "trigger", id});
  ASSERT_EQ(triggered.exit_code, 0) << triggered;
  const auto run = json::parse(cli({"show", trim(triggered.out), "--json"}).out);
  EXPECT_EQ(run.at("scheduleId"), id.c_str());

  EXPECT_EQ(cli({"schedule", "rm", id}).exit_code, 0);
  EXPECT_NE(cli({"schedule", "rm", id}).exit_code, 0);
  const auto bad = cli({"schedule", "add", "echo", "61 * * * *"});
  EXPECT_EQ(bad.exit_code, 7) << bad;
  EXPECT_NE(bad.err.find("minute"), std::string::npos) << bad;
}

TEST_F(CliTest, WebhookAddTakesTheSecretFromAFileAndListsDeliveries) {
  write_file(dir_ / "secret", "from-a-file\n");
  const auto added =
      cli({"webhook", "add", "http://127.0.0.1:9/hook", "--event", "run.finished", "--event",
           "run.failed", "--secret-file", (dir_ / "secret").string(), "--json"});
  ASSERT_EQ(added.exit_code, 0) << added;
  EXPECT_EQ(added.out.find("from-a-file"), std::string::npos);
  const std::string id = json::value_to<std::string>(json::parse(added.out).at("id"));
  const auto listed = cli({"webhook", "ls"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  EXPECT_NE(listed.out.find("run.finished,run.failed"), std::string::npos) << listed;
  EXPECT_EQ(listed.out.find("from-a-file"), std::string::npos);

  const auto run = start({"echo"});
  cli({"wait", run});
  ASSERT_TRUE(wait_until(
      [&] {
        const auto deliveries = cli({"webhook", "deliveries", id, "--json"});
        return deliveries.exit_code == 0 &&
               !json::parse(deliveries.out).at("deliveries").as_array().empty();
      },
      20s));
  const auto table = cli({"webhook", "deliveries", id.substr(0, 8)});
  EXPECT_NE(table.out.find("run.finished"), std::string::npos) << table;
  EXPECT_EQ(cli({"webhook", "rm", id}).exit_code, 0);
  EXPECT_NE(cli({"webhook", "deliveries", id}).exit_code, 0);
}

}  // namespace
}  // namespace nightshift::testing
