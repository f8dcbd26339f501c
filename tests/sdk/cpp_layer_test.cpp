// The SDK's C++ layer (nightshift/agent.hpp), through a probe agent whose task
// names the behaviour under test, run by the in-test host.
#include <gtest/gtest.h>

#include <agent_harness.hpp>
#include <boost/json.hpp>
#include <set>
#include <string>
#include <test_support.hpp>

namespace nt = nightshift::testing;
using namespace std::chrono_literals;

namespace {

// Runs the probe at `library` with `task` to completion.
nt::AgentOutcome run_probe(const char* library, const std::string& task) {
  nt::AgentLibrary plugin(library);
  nt::AgentRunOptions options;
  options.task = task;
  nt::AgentOutcome outcome = nt::run_agent(plugin, options);
  EXPECT_TRUE(outcome.finished) << task;
  EXPECT_TRUE(outcome.contract_violations.empty()) << outcome.contract_violations.front();
  return outcome;
}

std::vector<std::string> messages(const std::vector<nt::LogEntry>& logs) {
  std::vector<std::string> out;
  for (const auto& entry : logs) out.push_back(entry.message);
  return out;
}

// The probe is built twice: against the shared C++ runtime and with its own
// static copy. Every behaviour holds for both.
class CppLayer : public ::testing::TestWithParam<const char*> {
 protected:
  const char* probe() const { return GetParam(); }
};

}  // namespace

TEST(CppLayerDescriptor, OneArgumentMacroTakesNameVersionAndDescriptionFromTheManifest) {
  nt::AgentLibrary plugin(NIGHTSHIFT_TEST_PROBE);
  EXPECT_EQ(plugin.name(), "sdk-probe");
  EXPECT_EQ(plugin.version(), "2.3.4");
  // The manifest's description holds quotes, a semicolon and a backslash.
  EXPECT_EQ(plugin.description(), R"(Exercises the C++ layer; "quoted"; semi; back\slash.)");
  EXPECT_EQ(plugin.entry().abi_major, NIGHTSHIFT_ABI_MAJOR);
  EXPECT_EQ(plugin.entry().abi_minor, NIGHTSHIFT_ABI_MINOR);
}

TEST(CppLayerDescriptor, FourArgumentMacroUsesTheNamesGiven) {
  nt::AgentLibrary plugin(NIGHTSHIFT_TEST_EXPLICIT);
  EXPECT_EQ(plugin.name(), "sdk-explicit");
  EXPECT_EQ(plugin.version(), "0.9.1");
  EXPECT_EQ(plugin.description(), "Names itself in the macro.");
  const auto outcome = nt::run_agent(plugin, {});
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(outcome.result_json, R"({"explicit": true})");
}

TEST_P(CppLayer, ContextExposesInstanceWorkspaceParamsAndTask) {
  nt::AgentLibrary plugin(probe());
  nt::AgentRunOptions options;
  options.task = "context";
  options.instance_id = "0f6f5d9e-2f0c-4d3b-9a57-1b2c3d4e5f60";
  options.workspace = "/some/workspace";
  options.params_json = R"({"instructions":"be brief","x":1})";
  const auto outcome = nt::run_agent(plugin, options);

  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(messages(outcome.logs),
            (std::vector<std::string>{"0f6f5d9e-2f0c-4d3b-9a57-1b2c3d4e5f60", "/some/workspace",
                                      R"({"instructions":"be brief","x":1})", "context"}));
}

TEST_P(CppLayer, LogPassesEachLevelAndMessageInOrder) {
  const auto outcome = run_probe(probe(), "levels");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  const std::vector<nt::LogEntry> expected{
      {NIGHTSHIFT_LOG_INFO, "via log()"}, {NIGHTSHIFT_LOG_TRACE, "t"}, {NIGHTSHIFT_LOG_DEBUG, "d"},
      {NIGHTSHIFT_LOG_INFO, "i"},         {NIGHTSHIFT_LOG_WARN, "w"},  {NIGHTSHIFT_LOG_ERROR, "e"}};
  EXPECT_EQ(outcome.logs, expected);
}

TEST_P(CppLayer, ProgressPassesEachFraction) {
  const auto outcome = run_probe(probe(), "progress");
  EXPECT_EQ(outcome.progress, (std::vector<double>{0.0, 0.25, 0.5, 1.0}));
}

TEST_P(CppLayer, LogAndProgressAreSafeFromThreadsTheAgentStarts) {
  const auto outcome = run_probe(probe(), "threads");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  ASSERT_EQ(outcome.logs.size(), 4u * 50u);
  const auto logged = messages(outcome.logs);
  const std::set<std::string> distinct(logged.begin(), logged.end());
  EXPECT_EQ(distinct.size(), 4u * 50u);
  EXPECT_EQ(outcome.progress.size(), 4u * 50u);
}

TEST_P(CppLayer, SleepForReturnsTrueWhenTheFullTimeElapsed) {
  const auto outcome = run_probe(probe(), "sleep-short");
  EXPECT_EQ(messages(outcome.logs), (std::vector<std::string>{"slept", "not cancelled"}));
}

TEST_P(CppLayer, StopWakesSleepForAndMakesCancelledTrue) {
  nt::AgentLibrary plugin(probe());
  nt::AgentRunOptions options;
  options.task = "wait-for-stop";
  nt::AgentHarness harness(plugin, options);
  harness.start();
  ASSERT_TRUE(nt::wait_until([&] { return !harness.logs().empty(); }));
  harness.stop();
  ASSERT_TRUE(harness.wait(5s));  // it would otherwise sleep for an hour

  const auto outcome = harness.outcome();
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(messages(outcome.logs),
            (std::vector<std::string>{"waiting", "woken", "cancelled", "woken again"}));
}

TEST_P(CppLayer, CancelledBecomesTrueOnStop) {
  nt::AgentLibrary plugin(probe());
  nt::AgentRunOptions options;
  options.task = "poll-cancelled";
  nt::AgentHarness harness(plugin, options);
  harness.start();
  ASSERT_TRUE(nt::wait_until([&] { return !harness.logs().empty(); }));
  harness.stop();
  ASSERT_TRUE(harness.wait(5s));
  EXPECT_EQ(messages(harness.outcome().logs),
            (std::vector<std::string>{"polling", "saw cancelled"}));
}

TEST_P(CppLayer, SetResultJsonHandsTheTextToTheHost) {
  const auto outcome = run_probe(probe(), "result");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  ASSERT_TRUE(outcome.result_json.has_value());
  EXPECT_EQ(boost::json::parse(*outcome.result_json),
            boost::json::parse(R"({"ok":true,"n":[1,2]})"));
}

TEST_P(CppLayer, InvalidResultJsonFailsTheRunSayingSo) {
  const auto outcome = run_probe(probe(), "invalid-result");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_FALSE(outcome.result_json.has_value());
  ASSERT_TRUE(outcome.error.has_value());
  EXPECT_EQ(*outcome.error, R"(set_result_json: the result is not valid JSON: {"ok": tru)");
}

TEST_P(CppLayer, FailFailsTheRunWithItsMessage) {
  const auto outcome = run_probe(probe(), "fail");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "failed through fail()");
}

TEST_P(CppLayer, StdExceptionFailsTheRunWithItsWhat) {
  const auto outcome = run_probe(probe(), "throw-std");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "a std::runtime_error from the agent");
}

TEST_P(CppLayer, ThrownCStringFailsTheRunWithThatText) {
  const auto outcome = run_probe(probe(), "throw-c-string");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "a C string from the agent");
}

TEST_P(CppLayer, NonStdExceptionFailsTheRunWithAClearError) {
  const auto outcome = run_probe(probe(), "throw-other");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "the agent threw an exception that is not a std::exception");
}

INSTANTIATE_TEST_SUITE_P(SharedRuntime, CppLayer, ::testing::Values(NIGHTSHIFT_TEST_PROBE),
                         nightshift::testing::PluginParamName());

#ifdef NIGHTSHIFT_TEST_STATIC_PROBE
INSTANTIATE_TEST_SUITE_P(StaticLibstdcxx, CppLayer, ::testing::Values(NIGHTSHIFT_TEST_STATIC_PROBE),
                         nightshift::testing::PluginParamName());
#else
// Sanitizer builds cannot link -static-libstdc++; the static probe is not
// built there.
TEST(CppLayerStaticLibstdcxx, PluginWithItsOwnCppRuntimeLoadsAndRuns) {
  GTEST_SKIP() << "not built under a sanitizer (NIGHTSHIFT_SANITIZER)";
}
#endif
