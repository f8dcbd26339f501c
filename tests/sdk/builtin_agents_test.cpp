// The built-in echo and sleep agents behave as agents.md's table says.
#include <gtest/gtest.h>

#include <agent_harness.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <test_support.hpp>

namespace nt = nightshift::testing;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> messages(const std::vector<nt::LogEntry>& logs) {
  std::vector<std::string> out;
  for (const auto& entry : logs) out.push_back(entry.message);
  return out;
}

bool all_info(const std::vector<nt::LogEntry>& logs) {
  for (const auto& entry : logs) {
    if (entry.level != NIGHTSHIFT_LOG_INFO) return false;
  }
  return true;
}

nt::AgentOutcome run(const char* library, std::string task, std::string params_json) {
  nt::AgentLibrary plugin(library);
  nt::AgentRunOptions options;
  options.task = std::move(task);
  options.params_json = std::move(params_json);
  return nt::run_agent(plugin, options);
}

json::object manifest_beside(const char* library) {
  const auto manifest = std::filesystem::path(library).parent_path() / "agent.json";
  return json::parse(nt::read_file(manifest)).as_object();
}

}  // namespace

// ---- echo ----

TEST(EchoAgent, LogsEachLineOfTheTaskThenTheParamsAndReturnsBoth) {
  const std::string params = R"({"instructions":"","colour":"blue","n":2})";
  const auto outcome = run(NIGHTSHIFT_TEST_ECHO, "first line\nsecond line\r\nthird", params);

  ASSERT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  ASSERT_EQ(outcome.logs.size(), 4u);
  EXPECT_TRUE(all_info(outcome.logs));
  EXPECT_EQ(outcome.logs[0].message, "first line");
  EXPECT_EQ(outcome.logs[1].message, "second line");
  EXPECT_EQ(outcome.logs[2].message, "third");
  EXPECT_EQ(json::parse(outcome.logs[3].message), json::parse(params));

  ASSERT_TRUE(outcome.result_json.has_value());
  const json::value expected = {{"task", "first line\nsecond line\r\nthird"},
                                {"params", json::parse(params)}};
  EXPECT_EQ(json::parse(*outcome.result_json), expected);
}

TEST(EchoAgent, WithoutATaskLogsNoTaskAndReturnsNullTask) {
  const auto outcome = run(NIGHTSHIFT_TEST_ECHO, "", R"({"instructions":"x"})");

  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  ASSERT_EQ(outcome.logs.size(), 2u);
  EXPECT_TRUE(all_info(outcome.logs));
  EXPECT_EQ(outcome.logs[0].message, "(no task)");
  EXPECT_EQ(json::parse(outcome.logs[1].message), json::parse(R"({"instructions":"x"})"));
  ASSERT_TRUE(outcome.result_json.has_value());
  EXPECT_EQ(json::parse(*outcome.result_json),
            json::parse(R"({"task":null,"params":{"instructions":"x"}})"));
}

TEST(EchoAgent, ParamsThatAreNotAnObjectFailTheRun) {
  const auto outcome = run(NIGHTSHIFT_TEST_ECHO, "t", "[1,2]");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "echo: the params are not a JSON object");
}

TEST(EchoAgent, ManifestBesideTheLibraryAgreesWithItsDescriptor) {
  nt::AgentLibrary plugin(NIGHTSHIFT_TEST_ECHO);
  const json::object manifest = manifest_beside(NIGHTSHIFT_TEST_ECHO);
  EXPECT_EQ(manifest.at("name").as_string(), plugin.name());
  EXPECT_EQ(manifest.at("version").as_string(), plugin.version());
  EXPECT_EQ(manifest.at("description").as_string(), plugin.description());
  EXPECT_EQ(manifest.at("library").as_string(), "libecho.so");
}

// ---- sleep ----

TEST(SleepAgent, ShortFractionalSleepTicksOnceAndReturnsSlept) {
  const auto outcome = run(NIGHTSHIFT_TEST_SLEEP, "", R"({"instructions":"","seconds":0.3})");

  ASSERT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(outcome.logs, (std::vector<nt::LogEntry>{{NIGHTSHIFT_LOG_INFO, "tick 1/1"}}));
  EXPECT_EQ(outcome.progress, (std::vector<double>{1.0}));
  ASSERT_TRUE(outcome.result_json.has_value());
  EXPECT_EQ(json::parse(*outcome.result_json), json::parse(R"({"slept":0.3})"));
}

TEST(SleepAgent, FractionalSecondsEndWithOneShorterTick) {
  const auto outcome = run(NIGHTSHIFT_TEST_SLEEP, "", R"({"instructions":"","seconds":1.2})");

  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(messages(outcome.logs), (std::vector<std::string>{"tick 1/2", "tick 2/2"}));
  EXPECT_EQ(outcome.progress, (std::vector<double>{0.5, 1.0}));
  EXPECT_EQ(json::parse(*outcome.result_json), json::parse(R"({"slept":1.2})"));
}

TEST(SleepAgent, ZeroSecondsCompletesAtOnceWithoutTicks) {
  const auto outcome = run(NIGHTSHIFT_TEST_SLEEP, "", R"({"instructions":"","seconds":0})");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_TRUE(outcome.logs.empty());
  EXPECT_EQ(json::parse(*outcome.result_json), json::parse(R"({"slept":0})"));
}

TEST(SleepAgent, DefaultsToFiveSecondsWhenSecondsIsAbsent) {
  nt::AgentLibrary plugin(NIGHTSHIFT_TEST_SLEEP);
  nt::AgentHarness harness(plugin, {});
  harness.start();
  ASSERT_TRUE(nt::wait_until([&] { return !harness.logs().empty(); }, 10s));
  harness.stop();
  ASSERT_TRUE(harness.wait(5s));
  const auto outcome = harness.outcome();
  EXPECT_EQ(outcome.logs.front().message, "tick 1/5");
  EXPECT_EQ(outcome.progress.front(), 0.2);
}

TEST(SleepAgent, StopEndsTheRunLongBeforeItsSecondsWithoutAResult) {
  nt::AgentLibrary plugin(NIGHTSHIFT_TEST_SLEEP);
  nt::AgentRunOptions options;
  options.params_json = R"({"instructions":"","seconds":600})";
  nt::AgentHarness harness(plugin, options);
  harness.start();
  EXPECT_FALSE(harness.wait(50ms));  // still sleeping
  harness.stop();
  // The agent wakes at once; the generous deadline only keeps the test
  // steady on a loaded machine (without the stop it would run 10 minutes).
  ASSERT_TRUE(harness.wait(5s));

  const auto outcome = harness.outcome();
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
  EXPECT_FALSE(outcome.result_json.has_value());
  EXPECT_FALSE(outcome.error.has_value());
  EXPECT_EQ(messages(outcome.logs), (std::vector<std::string>{"stopped after 0/600 ticks"}));
}

TEST(SleepAgent, FailWithFailsWithThatMessageAtTheEnd) {
  const auto outcome = run(NIGHTSHIFT_TEST_SLEEP, "",
                           R"({"instructions":"","seconds":0.1,"failWith":"disk on fire"})");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "disk on fire");
  EXPECT_EQ(messages(outcome.logs), (std::vector<std::string>{"tick 1/1"}));  // ran to the end
  EXPECT_FALSE(outcome.result_json.has_value());
}

// The params are parsed in a small buffer on the stack first: params far
// past it (a long message, many extra params, nesting) parse the same.
TEST(SleepAgent, ParamsLargerThanItsParseBufferParseTheSame) {
  const std::string message(5000, 'x');
  json::object params{{"instructions", ""}, {"seconds", 0.05}, {"failWith", message}};
  json::value nested = json::array{};
  for (int depth = 0; depth < 30; ++depth)
    nested = json::array{nested};  // within the default limit of 32
  params["deep"] = nested;
  for (int i = 0; i < 100; ++i) params["extra" + std::to_string(i)] = std::string(40, 'y');
  const auto outcome = run(NIGHTSHIFT_TEST_SLEEP, "", json::serialize(params));
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, message);
  EXPECT_EQ(messages(outcome.logs), (std::vector<std::string>{"tick 1/1"}));

  const auto bad = run(NIGHTSHIFT_TEST_SLEEP, "", R"({"seconds": 1, "failWith": )");
  EXPECT_EQ(bad.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(bad.error, "sleep: the params are not a JSON object");
}

TEST(SleepAgent, EmptyFailWithCompletes) {
  const auto outcome =
      run(NIGHTSHIFT_TEST_SLEEP, "", R"({"instructions":"","seconds":0,"failWith":""})");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
}

TEST(SleepAgent, SecondsThatAreNotANonNegativeNumberFailTheRun) {
  auto outcome = run(NIGHTSHIFT_TEST_SLEEP, "", R"({"instructions":"","seconds":"soon"})");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "sleep: seconds must be a number");

  outcome = run(NIGHTSHIFT_TEST_SLEEP, "", R"({"instructions":"","seconds":-1})");
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_EQ(outcome.error, "sleep: seconds must be between 0 and 31536000");
}

TEST(SleepAgent, ManifestDeclaresItsParamsWithDefaultsAndDescriptions) {
  nt::AgentLibrary plugin(NIGHTSHIFT_TEST_SLEEP);
  const json::object manifest = manifest_beside(NIGHTSHIFT_TEST_SLEEP);
  EXPECT_EQ(manifest.at("name").as_string(), plugin.name());
  EXPECT_EQ(manifest.at("description").as_string(), plugin.description());
  const json::object& params = manifest.at("params").as_object();
  EXPECT_EQ(params.at("seconds").at("type"), "number");
  EXPECT_EQ(params.at("seconds").at("default"), 5);
  EXPECT_EQ(params.at("failWith").at("type"), "string");
  for (const auto& [name, schema] : params) {
    EXPECT_TRUE(schema.as_object().contains("description")) << name;
    EXPECT_TRUE(schema.as_object().contains("default")) << name;
  }
}
