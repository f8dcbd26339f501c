// The install tree holds the SDK and the built-in agents where agents.md
// says, and an agent built out of tree against the installed SDK
// (plugin-sdk/examples/hello, built by the sdk_out_of_tree_build fixture)
// loads and runs.
#include <gtest/gtest.h>

#include <agent_harness.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <test_support.hpp>

namespace nt = nightshift::testing;
namespace fs = std::filesystem;

namespace {
const fs::path prefix = NIGHTSHIFT_TEST_INSTALL_PREFIX;
}

TEST(InstalledSdk, HeadersAndCMakePackageAreUnderThePrefix) {
  const fs::path include_dir = prefix / NIGHTSHIFT_TEST_INSTALL_INCLUDEDIR / "nightshift";
  EXPECT_TRUE(fs::is_regular_file(include_dir / "agent.h"));
  EXPECT_TRUE(fs::is_regular_file(include_dir / "agent.hpp"));
  const fs::path package_dir = prefix / NIGHTSHIFT_TEST_INSTALL_LIBDIR / "cmake" / "NightshiftSDK";
  for (const char* file : {"NightshiftSDKConfig.cmake", "NightshiftSDKConfigVersion.cmake",
                           "NightshiftAgent.cmake", "nightshift_agent.map"}) {
    EXPECT_TRUE(fs::is_regular_file(package_dir / file)) << file;
  }
}

TEST(InstalledSdk, BuiltInAgentsAreInstalledAsAgentFolders) {
  for (const std::string name : {"echo", "sleep"}) {
    const fs::path folder = prefix / NIGHTSHIFT_TEST_AGENTS_SUBDIR / name;
    EXPECT_TRUE(fs::is_regular_file(folder / ("lib" + name + ".so"))) << folder;
    ASSERT_TRUE(fs::is_regular_file(folder / "agent.json")) << folder;
    EXPECT_EQ(boost::json::parse(nt::read_file(folder / "agent.json")).at("name"), name.c_str());
  }
}

TEST(OutOfTreeAgent, ExampleBuiltAgainstTheInstalledSdkLoadsAndRuns) {
  const fs::path library = NIGHTSHIFT_TEST_HELLO;
  ASSERT_TRUE(fs::is_regular_file(library)) << library;
  EXPECT_TRUE(fs::is_regular_file(library.parent_path() / "agent.json"));

  nt::AgentLibrary plugin(library);
  EXPECT_EQ(plugin.name(), "hello");
  EXPECT_EQ(plugin.version(), "1.0.0");

  nt::AgentRunOptions options;
  options.task = "world";
  const auto outcome = nt::run_agent(plugin, options);
  ASSERT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  ASSERT_FALSE(outcome.logs.empty());
  EXPECT_EQ(outcome.logs.front(), (nt::LogEntry{NIGHTSHIFT_LOG_INFO, "hello world"}));
  EXPECT_EQ(outcome.progress, (std::vector<double>{0.5, 1.0}));
  ASSERT_TRUE(outcome.result_json.has_value());
  EXPECT_EQ(boost::json::parse(*outcome.result_json), boost::json::parse(R"({"greeted":"world"})"));
}
