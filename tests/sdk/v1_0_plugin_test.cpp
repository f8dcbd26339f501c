// A plugin built against the ABI 1.0 header (frozen in tests/sdk/v1_0/) in
// this 1.1 host: the loader accepts its 32-byte entry table, reads nothing
// past it (no init, no extensions), and the plugin runs with the host's 1.1
// run struct, of which it uses only the 1.0 members.
#include <gtest/gtest.h>

#include <agent_harness.hpp>
#include <boost/json.hpp>
#include <test_support.hpp>

#include "loader/plugin_loader.hpp"

namespace nt = nightshift::testing;
using namespace std::chrono_literals;

TEST(V1_0Plugin, LoadsInThisHostWithItsAbi1_0Table) {
  nt::TempDir temp;
  nightshift::PluginLoader loader(temp / "scratch");
  auto plugin = loader.load(NIGHTSHIFT_TEST_V1_0_AGENT, "sdk-v1-0");
  EXPECT_EQ(plugin->name(), "sdk-v1-0");
  EXPECT_EQ(plugin->version(), "1.0.0");
  EXPECT_EQ(plugin->abi_minor(), 0u);
  EXPECT_EQ(plugin->entry().struct_size, 32u);
  EXPECT_EQ(plugin->extension("org.nightshift.anything"), nullptr);
}

TEST(V1_0Plugin, RunsWithTheHostsAbi1_1RunStruct) {
  nt::AgentLibrary library(NIGHTSHIFT_TEST_V1_0_AGENT);
  nt::AgentRunOptions options;
  options.task = "old but fine";
  const auto outcome = nt::run_agent(library, options);
  ASSERT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(outcome.logs, (std::vector<nt::LogEntry>{{NIGHTSHIFT_LOG_INFO, "old but fine"}}));
  EXPECT_EQ(outcome.progress, std::vector<double>{1.0});
  ASSERT_TRUE(outcome.result_json.has_value());
  EXPECT_EQ(boost::json::parse(*outcome.result_json),
            boost::json::parse(R"({"abiMinor": 0, "runStructSize": )" +
                               std::to_string(sizeof(nightshift_run)) + "}"));
  EXPECT_TRUE(outcome.contract_violations.empty());
}

TEST(V1_0Plugin, StopsWhenAsked) {
  nt::AgentLibrary library(NIGHTSHIFT_TEST_V1_0_AGENT);
  nt::AgentRunOptions options;
  options.task = "wait";
  nt::AgentHarness harness(library, options);
  harness.start();
  EXPECT_FALSE(harness.wait(20ms));
  harness.stop();
  ASSERT_TRUE(harness.wait(10s));
  EXPECT_EQ(harness.outcome().logs, (std::vector<nt::LogEntry>{{NIGHTSHIFT_LOG_INFO, "stopped"}}));
}
