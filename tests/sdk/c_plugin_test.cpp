// A plugin written in plain C against agent.h, loaded and run through the
// in-test host.
#include <gtest/gtest.h>

#include <agent_harness.hpp>
#include <boost/json.hpp>

namespace nt = nightshift::testing;
using namespace std::chrono_literals;

TEST(CPlugin, DescriptorIsReadThroughTheEntryFunction) {
  nt::AgentLibrary library(NIGHTSHIFT_TEST_C_AGENT);
  EXPECT_EQ(library.name(), "c-agent");
  EXPECT_EQ(library.version(), "1.0.0");
  EXPECT_EQ(library.description(), "A test agent written in C.");
  EXPECT_EQ(library.entry().abi_major, NIGHTSHIFT_ABI_MAJOR);
  EXPECT_EQ(library.entry().abi_minor, NIGHTSHIFT_ABI_MINOR);
}

TEST(CPlugin, RunsAndReportsLogsProgressAndResult) {
  nt::AgentLibrary library(NIGHTSHIFT_TEST_C_AGENT);
  nt::AgentRunOptions options;
  options.task = "hello from C";
  options.params_json = R"({"instructions":"","n":3})";
  options.workspace = "/ws";
  const auto outcome = nt::run_agent(library, options);

  ASSERT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_FALSE(outcome.error.has_value());
  const std::vector<nt::LogEntry> expected_logs{
      {NIGHTSHIFT_LOG_INFO, "hello from C"},
      {NIGHTSHIFT_LOG_DEBUG, R"({"instructions":"","n":3})"}};
  EXPECT_EQ(outcome.logs, expected_logs);
  EXPECT_EQ(outcome.progress, (std::vector<double>{0.5, 1.0}));
  ASSERT_TRUE(outcome.result_json.has_value());
  EXPECT_EQ(boost::json::parse(*outcome.result_json),
            boost::json::parse(R"({"language":"c","taskBytes":12,"workspaceBytes":3})"));
  EXPECT_TRUE(outcome.contract_violations.empty());
}

TEST(CPlugin, FailureCarriesTheErrorItSet) {
  nt::AgentLibrary library(NIGHTSHIFT_TEST_C_AGENT);
  nt::AgentRunOptions options;
  options.task = "fail";
  const auto outcome = nt::run_agent(library, options);

  ASSERT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "c agent failed on purpose");
  EXPECT_FALSE(outcome.result_json.has_value());
}

TEST(CPlugin, StopWakesItsSleepAndItReturns) {
  nt::AgentLibrary library(NIGHTSHIFT_TEST_C_AGENT);
  nt::AgentRunOptions options;
  options.task = "wait";
  nt::AgentHarness harness(library, options);
  harness.start();
  EXPECT_FALSE(harness.wait(20ms));  // it sleeps for a minute unless stopped
  harness.stop();
  ASSERT_TRUE(harness.wait(5s));

  const auto outcome = harness.outcome();
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(outcome.logs, (std::vector<nt::LogEntry>{{NIGHTSHIFT_LOG_INFO, "stopped"}}));
}
