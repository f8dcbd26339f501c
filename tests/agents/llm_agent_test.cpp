// installed:llm, run from its built plugin through the in-test harness
// against the scripted model server (support/scripted_model_server.hpp):
// conversations streamed in pieces cut anywhere, parallel tool calls, every
// tool and its refusals outside the workspace, retries, broken answers, a
// stop in flight, the limits, the non-streaming mode, the key, messages and
// HTTPS.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <agent_harness.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <scripted_model_server.hpp>
#include <string>
#include <test_support.hpp>
#include <vector>

namespace {

using nightshift::testing::AgentHarness;
using nightshift::testing::AgentLibrary;
using nightshift::testing::AgentOutcome;
using nightshift::testing::AgentRunOptions;
using nightshift::testing::RecordedRequest;
using nightshift::testing::ScriptedAnswer;
using nightshift::testing::ScriptedModelServer;
using nightshift::testing::TempDir;
using nightshift::testing::wait_until;
using nightshift::testing::write_file;
namespace chunks = nightshift::testing::chunks;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* key_variable = "NIGHTSHIFT_TEST_LLM_KEY";
constexpr const char* secret_key = "sk-test-Zq8v1XkP0secret";

class LlmAgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { library_ = new AgentLibrary(NIGHTSHIFT_TEST_AGENT_LIBRARY); }
  static void TearDownTestSuite() {
    delete library_;
    library_ = nullptr;
  }

  void SetUp() override {
    ::setenv("NIGHTSHIFT_LLM_RETRY_DELAY", "0.01", 1);
    ::setenv("NIGHTSHIFT_LLM_RETRY_ATTEMPTS", "3", 1);
    ::unsetenv(key_variable);
    ::unsetenv("NIGHTSHIFT_LLM_BASE_URL");
    ::unsetenv("NIGHTSHIFT_LLM_MODEL");
  }
  void TearDown() override {
    ::unsetenv("NIGHTSHIFT_LLM_RETRY_DELAY");
    ::unsetenv("NIGHTSHIFT_LLM_RETRY_ATTEMPTS");
    ::unsetenv(key_variable);
    ::unsetenv("SSL_CERT_FILE");
  }

  // The params of a run against `server_`, with `extra` merged over them.
  std::string params(json::object extra = {}, const std::string& base_url = "") const {
    json::object out{{"instructions", "You are tested."},
                     {"baseUrl", base_url.empty() ? server_.base_url() : base_url},
                     {"model", "test-model"},
                     {"apiKeyEnv", key_variable}};
    for (auto& [name, value] : extra) out[name] = value;
    return json::serialize(out);
  }

  AgentRunOptions options(const std::string& task, const std::string& params_json) const {
    AgentRunOptions out;
    out.task = task;
    out.params_json = params_json;
    out.workspace = workspace_.path();
    out.sdk_1_1 = true;
    return out;
  }

  AgentOutcome run(const std::string& task, const std::string& params_json) const {
    AgentOutcome outcome =
        nightshift::testing::run_agent(*library_, options(task, params_json), 60s);
    EXPECT_TRUE(outcome.finished) << "the run did not end";
    EXPECT_TRUE(outcome.contract_violations.empty());
    return outcome;
  }

  static json::object result_of(const AgentOutcome& outcome) {
    EXPECT_TRUE(outcome.result_json.has_value());
    if (!outcome.result_json) return {};
    return json::parse(*outcome.result_json).as_object();
  }

  static std::string all_logs(const AgentOutcome& outcome) {
    std::string text;
    for (const auto& entry : outcome.logs) text += entry.message + "\n";
    return text;
  }

  static bool has_log(const AgentOutcome& outcome, const std::string& message) {
    for (const auto& entry : outcome.logs) {
      if (entry.message == message) return true;
    }
    return false;
  }

  // The messages of a recorded request.
  static json::array messages(const RecordedRequest& request) {
    return request.json().at("messages").as_array();
  }

  // The content of the tool message answering `call_id` in a request.
  static std::string tool_result(const RecordedRequest& request, const std::string& call_id) {
    for (const json::value& message : messages(request)) {
      const json::object& object = message.as_object();
      if (object.at("role") == "tool" && object.at("tool_call_id").as_string() == call_id) {
        return std::string(object.at("content").as_string());
      }
    }
    ADD_FAILURE() << "no tool result for " << call_id;
    return {};
  }

  static ScriptedAnswer final_answer(const std::string& text = "All done.") {
    return ScriptedAnswer::sse({chunks::text(text), chunks::finish("stop"), chunks::usage(10, 5)});
  }

  // An answer calling each of `calls` (whole, one chunk each, indexes 0..n).
  static ScriptedAnswer calling(const std::vector<chunks::Call>& calls, std::size_t split = 0) {
    std::vector<std::string> stream;
    for (std::size_t i = 0; i < calls.size(); ++i) {
      stream.push_back(
          chunks::tool_call(static_cast<int>(i), calls[i].id, calls[i].name, calls[i].arguments));
    }
    stream.push_back(chunks::finish("tool_calls"));
    stream.push_back(chunks::usage(10, 5));
    return ScriptedAnswer::sse(stream, split);
  }

  static AgentLibrary* library_;
  TempDir workspace_;
  ScriptedModelServer server_;
};

AgentLibrary* LlmAgentTest::library_ = nullptr;

TEST_F(LlmAgentTest, ConversationWithToolArgumentsSplitAcrossChunks) {
  write_file(workspace_ / "a.txt", "alpha\nbeta\n");
  server_.push(ScriptedAnswer::sse(
      {chunks::text("Let me "), chunks::text("look.\nFirst"), chunks::text(" the file."),
       chunks::tool_call(0, "call_1", "read_file", "{\"pa"), chunks::tool_call(0, "", "", "th\": "),
       chunks::tool_call(0, "", "", "\"a.txt\"}"), chunks::finish("tool_calls", 100, 20),
       chunks::usage(100, 20)},
      7));
  server_.push(ScriptedAnswer::sse({chunks::text("The file "), chunks::text("says alpha."),
                                    chunks::finish("stop"), chunks::usage(150, 10)},
                                   3, true, "\r\n"));

  const AgentOutcome outcome = run("What does a.txt say?", params());
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const json::object result = result_of(outcome);
  EXPECT_EQ(result.at("summary"), "The file says alpha.");
  EXPECT_EQ(result.at("finishReason"), "stop");
  EXPECT_EQ(result.at("turns"), 2);
  EXPECT_EQ(result.at("usage").at("promptTokens"), 250);
  EXPECT_EQ(result.at("usage").at("completionTokens"), 30);
  EXPECT_TRUE(result.at("filesChanged").as_array().empty());
  // Usage is reported once per answer, though the first one came twice.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> usage{{100, 20}, {150, 10}};
  EXPECT_EQ(outcome.usage_reports, usage);
  EXPECT_EQ(outcome.progress, (std::vector<double>{1.0 / 30, 2.0 / 30}));

  EXPECT_TRUE(has_log(outcome, "Let me look.")) << all_logs(outcome);
  EXPECT_TRUE(has_log(outcome, "First the file.")) << all_logs(outcome);
  EXPECT_TRUE(has_log(outcome, R"(tool read_file {"path": "a.txt"})")) << all_logs(outcome);
  EXPECT_TRUE(has_log(outcome, "The file says alpha.")) << all_logs(outcome);

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(server_.connections(), 1u) << "the connection was not kept for the second turn";
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/chat/completions");
  EXPECT_EQ(requests[0].header("content-type"), "application/json");
  const json::object first = requests[0].json().as_object();
  EXPECT_EQ(first.at("model"), "test-model");
  EXPECT_EQ(first.at("stream"), true);
  EXPECT_EQ(first.at("stream_options").at("include_usage"), true);
  std::vector<std::string> tool_names;
  for (const json::value& tool : first.at("tools").as_array()) {
    tool_names.emplace_back(tool.at("function").at("name").as_string());
  }
  EXPECT_EQ(tool_names, (std::vector<std::string>{"list_files", "read_file", "search"}));
  const json::array opening = messages(requests[0]);
  ASSERT_EQ(opening.size(), 2u);
  EXPECT_EQ(opening[0].at("role"), "system");
  EXPECT_NE(std::string(opening[0].at("content").as_string()).find("You are tested."),
            std::string::npos);
  EXPECT_EQ(opening[1].at("role"), "user");
  EXPECT_EQ(opening[1].at("content"), "What does a.txt say?");

  const json::array second = messages(requests[1]);
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[2].at("role"), "assistant");
  EXPECT_EQ(second[2].at("tool_calls").at(0).at("id"), "call_1");
  EXPECT_EQ(second[2].at("tool_calls").at(0).at("function").at("arguments"),
            "{\"path\": \"a.txt\"}");
  EXPECT_EQ(tool_result(requests[1], "call_1"), "alpha\nbeta\n");
}

TEST_F(LlmAgentTest, ParallelToolCallsAreToldApartByIndexAndId) {
  write_file(workspace_ / "a.txt", "from a\n");
  write_file(workspace_ / "b.txt", "from b\n");
  // Ollama's way: every call whole, every one with index 0.
  server_.push(
      ScriptedAnswer::sse({chunks::tool_call(0, "call_a", "read_file", R"({"path":"a.txt"})"),
                           chunks::tool_call(0, "call_b", "read_file", R"({"path":"b.txt"})"),
                           chunks::finish("tool_calls"), chunks::usage(10, 5)},
                          5));
  // OpenAI's way: indexes 0 and 1, their argument fragments interleaved.
  server_.push(ScriptedAnswer::sse(
      {chunks::tool_call(0, "x1", "read_file", ""), chunks::tool_call(1, "x2", "search", "{\"pat"),
       chunks::tool_call(0, "", "", "{\"path\": \"b"),
       chunks::tool_call(1, "", "", "tern\": \"from\"}"), chunks::tool_call(0, "", "", ".txt\"}"),
       chunks::finish("tool_calls"), chunks::usage(10, 5)},
      11));
  server_.push(final_answer());

  const AgentOutcome outcome = run("Compare a and b.", params());
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(tool_result(requests[1], "call_a"), "from a\n");
  EXPECT_EQ(tool_result(requests[1], "call_b"), "from b\n");
  EXPECT_EQ(messages(requests[1])[2].at("tool_calls").as_array().size(), 2u);
  EXPECT_EQ(tool_result(requests[2], "x1"), "from b\n");
  const std::string found = tool_result(requests[2], "x2");
  EXPECT_NE(found.find("a.txt:1: from a"), std::string::npos) << found;
  EXPECT_NE(found.find("b.txt:1: from b"), std::string::npos) << found;
  EXPECT_EQ(result_of(outcome).at("turns"), 3);
}

TEST_F(LlmAgentTest, EveryToolWorksInsideTheWorkspaceAndRefusesPathsLeavingIt) {
  TempDir outside;
  write_file(outside / "secret.txt", "do not read\n");
  write_file(workspace_ / ".gitignore", "build/\n*.log\n");
  write_file(workspace_ / "src/main.cpp", "int main() {\n  // TODO: work\n  return 0;\n}\n");
  write_file(workspace_ / "notes.log", "TODO ignored\n");
  write_file(workspace_ / "build/out.txt", "TODO ignored too\n");
  write_file(workspace_ / "README.md", "an old readme\ntwice twice\n");
  fs::create_directory_symlink(outside.path(), workspace_ / "link");
  const std::string inside_absolute = (workspace_ / "README.md").string();
  const std::string outside_absolute = (outside / "secret.txt").string();

  server_.push(calling(
      {{"c1", "list_files", "{}"},
       {"c2", "read_file", R"({"path": "src/main.cpp", "start_line": 2, "end_line": 3})"},
       {"c3", "search", R"({"pattern": "TODO"})"},
       {"c4", "write_file", R"({"path": "new/dir/x.txt", "content": "hello"})"},
       {"c5", "edit_file", R"({"path": "README.md", "old_text": "old", "new_text": "new"})"},
       {"c6", "edit_file", R"({"path": "README.md", "old_text": "absent", "new_text": "x"})"},
       {"c7", "edit_file", R"({"path": "README.md", "old_text": "twice", "new_text": "x"})"},
       {"c8", "run_command", R"({"command": "echo out; echo err >&2; exit 3"})"},
       {"c9", "read_file",
        R"({"path": "../)" + outside.path().filename().string() + R"(/secret.txt"})"},
       {"c10", "read_file", json::serialize(json::object{{"path", outside_absolute}})},
       {"c11", "read_file", R"({"path": "link/secret.txt"})"},
       {"c12", "write_file", R"({"path": "link/planted.txt", "content": "x"})"},
       {"c13", "read_file", json::serialize(json::object{{"path", inside_absolute}})},
       {"c14", "delete_everything", "{}"},
       {"c15", "read_file", "{not json"},
       {"c16", "search", R"({"pattern": "TODO", "path": "../"})"},
       {"c17", "list_files", R"({"path": "link"})"}},
      13));
  server_.push(final_answer());

  const std::string all_tools =
      R"(["list_files","read_file","search","write_file","edit_file","run_command"])";
  const AgentOutcome outcome =
      run("Use every tool.", params(json::object{{"tools", json::parse(all_tools)}}));
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  const RecordedRequest& r = requests[1];

  const std::string listing = tool_result(r, "c1");
  EXPECT_NE(listing.find("src/main.cpp\n"), std::string::npos) << listing;
  EXPECT_NE(listing.find("README.md\n"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("notes.log"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("build/"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("secret"), std::string::npos) << listing;

  EXPECT_EQ(tool_result(r, "c2"), "  // TODO: work\n  return 0;\n\n[lines 2-3 of 4]");
  EXPECT_EQ(tool_result(r, "c3"), "src/main.cpp:2:   // TODO: work\n");
  EXPECT_EQ(nightshift::testing::read_file(workspace_ / "new/dir/x.txt"), "hello");
  EXPECT_EQ(nightshift::testing::read_file(workspace_ / "README.md"),
            "an new readme\ntwice twice\n");
  EXPECT_NE(tool_result(r, "c6").find("not found"), std::string::npos);
  EXPECT_NE(tool_result(r, "c7").find("occurs 2 times"), std::string::npos);
  const std::string command = tool_result(r, "c8");
  EXPECT_TRUE(command.starts_with("exit status 3\n")) << command;
  EXPECT_NE(command.find("out\n"), std::string::npos) << command;
  EXPECT_NE(command.find("err\n"), std::string::npos) << command;
  for (const char* refused : {"c9", "c10", "c11", "c12", "c16", "c17"}) {
    const std::string text = tool_result(r, refused);
    EXPECT_TRUE(text.starts_with("error: refused:")) << refused << ": " << text;
    EXPECT_NE(text.find("outside the workspace"), std::string::npos) << refused << ": " << text;
    EXPECT_EQ(text.find("do not read"), std::string::npos) << refused;
  }
  EXPECT_FALSE(fs::exists(outside / "planted.txt"));
  EXPECT_TRUE(tool_result(r, "c13").starts_with("an new readme")) << tool_result(r, "c13");
  EXPECT_NE(tool_result(r, "c14").find("no tool `delete_everything`"), std::string::npos);
  EXPECT_NE(tool_result(r, "c15").find("not a JSON object"), std::string::npos);

  const json::object result = result_of(outcome);
  EXPECT_EQ(json::serialize(result.at("filesChanged")), R"(["README.md","new/dir/x.txt"])");
  EXPECT_TRUE(has_log(outcome, R"(tool write_file {"path": "new/dir/x.txt", "content": "hello"})"))
      << all_logs(outcome);
  EXPECT_TRUE(has_log(outcome, "read_file -> lines 2-3 of 4 of src/main.cpp")) << all_logs(outcome);
}

TEST_F(LlmAgentTest, ToolsAreReadOnlyByDefault) {
  server_.push(calling({{"w", "write_file", R"({"path": "x.txt", "content": "x"})"},
                        {"r", "run_command", R"({"command": "touch y.txt"})"}}));
  server_.push(final_answer());
  const AgentOutcome outcome = run("Try to write.", params());
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(tool_result(requests[1], "w").find("no tool `write_file`"), std::string::npos);
  EXPECT_NE(tool_result(requests[1], "r").find("no tool `run_command`"), std::string::npos);
  EXPECT_FALSE(fs::exists(workspace_ / "x.txt"));
  EXPECT_FALSE(fs::exists(workspace_ / "y.txt"));
}

TEST_F(LlmAgentTest, UnknownToolInParamsFailsWithTheList) {
  const AgentOutcome outcome =
      run("x", params(json::object{{"tools", json::array{"read_file", "rm_rf"}}}));
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(outcome.error.value_or("").find("\"rm_rf\" is not a tool"), std::string::npos)
      << outcome.error.value_or("");
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(LlmAgentTest, StopKillsARunningCommandsProcessGroup) {
  server_.push(calling({{"c", "run_command",
                         R"({"command": "sh -c 'echo $$ > child.pid; exec sleep 60' & wait"})"}}));
  AgentHarness harness(
      *library_, options("Sleep.", params(json::object{{"tools", json::array{"run_command"}}})));
  harness.start();
  ASSERT_TRUE(wait_until([&] { return fs::exists(workspace_ / "child.pid"); }, 20s));
  std::string pid_text;
  ASSERT_TRUE(wait_until(
      [&] {
        pid_text = nightshift::testing::read_file(workspace_ / "child.pid");
        return !pid_text.empty() && pid_text.back() == '\n';
      },
      20s));
  const pid_t child = std::stoi(pid_text);
  harness.stop();
  ASSERT_TRUE(harness.wait(30s)) << "the run did not end after a stop";
  const AgentOutcome outcome = harness.outcome();
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  EXPECT_EQ(result_of(outcome).at("finishReason"), "cancelled");
  EXPECT_TRUE(wait_until([&] { return ::kill(child, 0) != 0 && errno == ESRCH; }, 10s))
      << "the command's child survived the stop";
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(LlmAgentTest, ACommandIsKilledAfterItsTimeout) {
  server_.push(calling(
      {{"t", "run_command", R"({"command": "echo started; sleep 60", "timeout_seconds": 1})"}}));
  server_.push(final_answer());
  const AgentOutcome outcome =
      run("Wait.", params(json::object{{"tools", json::array{"run_command"}}}));
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  const std::string text = tool_result(requests[1], "t");
  EXPECT_TRUE(text.starts_with("timed out after 1 s (killed by SIGTERM)\nstarted\n")) << text;
}

TEST_F(LlmAgentTest, AConnectionTheServerClosedWhileIdleIsReplacedQuietly) {
  server_.push(calling({{"c", "list_files", "{}"}}).then_close());
  server_.push(final_answer("Reconnected."));
  const AgentOutcome outcome = run("Hello.", params());
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  EXPECT_EQ(result_of(outcome).at("summary"), "Reconnected.");
  EXPECT_EQ(server_.request_count(), 2u);
  EXPECT_EQ(server_.connections(), 2u);
  for (const auto& entry : outcome.logs)
    EXPECT_NE(entry.level, NIGHTSHIFT_LOG_WARN) << entry.message;
}

TEST_F(LlmAgentTest, RetryAfterIsHonouredThenTheAnswerIsTaken) {
  server_.push(ScriptedAnswer::json(R"({"error": {"message": "slow down"}})", 429)
                   .with_header("Retry-After", "1"));
  server_.push(final_answer("Fine."));
  const AgentOutcome outcome = run("Hello.", params());
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  EXPECT_EQ(result_of(outcome).at("summary"), "Fine.");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  // The retry waited the second the server asked for, not the 10 ms backoff.
  EXPECT_GE(requests[1].received - requests[0].answered, 900ms);
  EXPECT_NE(all_logs(outcome).find("HTTP 429: slow down; trying again in 1.0 s (attempt 2 of 3)"),
            std::string::npos)
      << all_logs(outcome);
}

TEST_F(LlmAgentTest, ServerErrorsAreRetriedUntilTheAttemptsRunOut) {
  for (int i = 0; i < 3; ++i) server_.push(ScriptedAnswer::text("overloaded", 503));
  const AgentOutcome outcome = run("Hello.", params());
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  const std::string error = outcome.error.value_or("");
  EXPECT_NE(error.find("answered HTTP 503: overloaded"), std::string::npos) << error;
  EXPECT_NE(error.find("gave up after 3 attempts"), std::string::npos) << error;
  EXPECT_EQ(server_.request_count(), 3u);
  EXPECT_EQ(server_.unscripted(), 0u);
}

TEST_F(LlmAgentTest, ClientErrorsAreNotRetried) {
  server_.push(
      ScriptedAnswer::json(R"({"error": {"message": "model 'test-model' not found"}})", 404));
  const AgentOutcome outcome = run("Hello.", params());
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(outcome.error.value_or("").find("HTTP 404: model 'test-model' not found"),
            std::string::npos)
      << outcome.error.value_or("");
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(LlmAgentTest, AStreamCutMidwayIsAskedAgain) {
  server_.push(ScriptedAnswer::sse({chunks::text("Half an ans"), chunks::text("wer"),
                                    chunks::finish("stop"), chunks::usage(10, 5)},
                                   20)
                   .cut_after_pieces(2));
  // Complete HTTP, but the events stop before the answer is finished.
  server_.push(ScriptedAnswer::sse({chunks::text("Half again")}, 0, false));
  server_.push(final_answer("Whole."));
  const AgentOutcome outcome = run("Hello.", params());
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  EXPECT_EQ(result_of(outcome).at("summary"), "Whole.");
  EXPECT_EQ(result_of(outcome).at("turns"), 1);
  EXPECT_EQ(server_.request_count(), 3u);
  const std::string logs = all_logs(outcome);
  EXPECT_NE(logs.find("dropped mid-answer"), std::string::npos) << logs;
  EXPECT_NE(logs.find("the stream ended before the answer was complete"), std::string::npos)
      << logs;
}

TEST_F(LlmAgentTest, AnAnswerThatIsNotJsonFailsTheRun) {
  server_.push(ScriptedAnswer::text("<html>a proxy's page</html>", 200, "text/html"));
  const AgentOutcome outcome = run("Hello.", params());
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(outcome.error.value_or("").find("is not a JSON object: <html>a proxy's page</html>"),
            std::string::npos)
      << outcome.error.value_or("");
}

TEST_F(LlmAgentTest, AStreamChunkThatIsNotJsonFailsTheRun) {
  server_.push(ScriptedAnswer::sse_text("data: {\"choices\": [\ndata: oops\n\n", 4));
  const AgentOutcome outcome = run("Hello.", params());
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(outcome.error.value_or("").find("stream chunk is not a JSON object"), std::string::npos)
      << outcome.error.value_or("");
}

TEST_F(LlmAgentTest, AnUnreachableServerFailsAfterTheRetries) {
  unsigned short closed_port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_port = acceptor.local_endpoint().port();
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port) + "/v1";
  const AgentOutcome outcome = run("Hello.", params({}, url));
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  const std::string error = outcome.error.value_or("");
  EXPECT_NE(error.find("cannot reach the model server at " + url), std::string::npos) << error;
  EXPECT_NE(error.find("Connection refused"), std::string::npos) << error;
  EXPECT_NE(error.find("gave up after 3 attempts"), std::string::npos) << error;
}

TEST_F(LlmAgentTest, AStopAbortsASlowAnswerInFlight) {
  server_.push(final_answer().with_delay(120s));
  AgentHarness harness(*library_, options("Take your time.", params()));
  harness.start();
  ASSERT_TRUE(wait_until([&] { return server_.request_count() == 1; }, 20s));
  harness.stop();
  ASSERT_TRUE(harness.wait(30s)) << "the stop did not abort the request";
  const AgentOutcome outcome = harness.outcome();
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const json::object result = result_of(outcome);
  EXPECT_EQ(result.at("finishReason"), "cancelled");
  EXPECT_EQ(result.at("turns"), 0);
}

TEST_F(LlmAgentTest, MaxTurnsEndsTheRunFailed) {
  server_.set_responder([](const RecordedRequest&) {
    return LlmAgentTest::calling({{"again", "list_files", "{}"}});
  });
  const AgentOutcome outcome = run("Loop.", params(json::object{{"maxTurns", 2}}));
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(outcome.error.value_or("").find("reached its turn limit of 2"), std::string::npos)
      << outcome.error.value_or("");
  const json::object result = result_of(outcome);
  EXPECT_EQ(result.at("finishReason"), "max_turns");
  EXPECT_EQ(result.at("turns"), 2);
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(LlmAgentTest, MaxTokensEndsTheRunFailed) {
  server_.push(
      ScriptedAnswer::sse({chunks::text("Thinking."), chunks::tool_call(0, "t", "list_files", "{}"),
                           chunks::finish("tool_calls"), chunks::usage(80, 30)}));
  const AgentOutcome outcome = run("Spend.", params(json::object{{"maxTokens", 100}}));
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(outcome.error.value_or("").find("exceeded its token budget of 100"), std::string::npos)
      << outcome.error.value_or("");
  const json::object result = result_of(outcome);
  EXPECT_EQ(result.at("finishReason"), "max_tokens");
  EXPECT_EQ(result.at("summary"), "Thinking.");
  EXPECT_EQ(result.at("usage").at("promptTokens"), 80);
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(LlmAgentTest, NonStreamingAnswers) {
  write_file(workspace_ / "a.txt", "alpha\n");
  server_.push(ScriptedAnswer::json(chunks::answer(
      "Reading.", {{"n1", "read_file", R"({"path": "a.txt"})"}}, "tool_calls", 40, 8)));
  server_.push(
      ScriptedAnswer::json(chunks::answer("It says alpha.\nThat is all.", {}, "stop", 60, 9)));
  const AgentOutcome outcome = run("Read a.txt.", params(json::object{{"stream", false}}));
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].json().at("stream"), false);
  EXPECT_FALSE(requests[0].json().as_object().contains("stream_options"));
  EXPECT_EQ(tool_result(requests[1], "n1"), "alpha\n");
  const json::object result = result_of(outcome);
  EXPECT_EQ(result.at("summary"), "It says alpha.\nThat is all.");
  EXPECT_EQ(result.at("usage").at("promptTokens"), 100);
  EXPECT_EQ(result.at("usage").at("completionTokens"), 17);
  EXPECT_TRUE(has_log(outcome, "It says alpha.")) << all_logs(outcome);
  EXPECT_TRUE(has_log(outcome, "That is all.")) << all_logs(outcome);
}

TEST_F(LlmAgentTest, TheKeyGoesOnlyIntoTheAuthorizationHeader) {
  ::setenv(key_variable, secret_key, 1);
  server_.push(
      calling({{"k", "list_files", "{}"},
               {"e", "run_command", R"({"command": "echo \"key=[$NIGHTSHIFT_TEST_LLM_KEY]\""})"}}));
  // A model that writes the key anyway (it cannot know it; this one is told).
  server_.push(final_answer(std::string("Done. The key is ") + secret_key + "\nBye."));
  const AgentOutcome outcome =
      run("Hello.", params(json::object{{"tools", json::array{"list_files", "run_command"}}}));
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  for (const RecordedRequest& request : requests) {
    EXPECT_EQ(request.header("authorization"), std::string("Bearer ") + secret_key);
    EXPECT_EQ(request.body.find(secret_key), std::string::npos);
  }
  // Commands do not get it in their environment.
  EXPECT_EQ(tool_result(requests[1], "e"), "exit status 0\nkey=[]\n");
  EXPECT_EQ(all_logs(outcome).find(secret_key), std::string::npos) << all_logs(outcome);
  EXPECT_EQ(outcome.result_json.value_or("").find(secret_key), std::string::npos);
  EXPECT_EQ(result_of(outcome).at("summary"), "Done. The key is [redacted]\nBye.");

  // A server that quotes the key it refuses: the run's error does not.
  server_.push(ScriptedAnswer::json(
      std::string(R"({"error": {"message": "Incorrect API key provided: )") + secret_key + "\"}}",
      401));
  const AgentOutcome refused = run("Hello.", params());
  EXPECT_EQ(refused.return_code, NIGHTSHIFT_RUN_FAILED);
  const std::string error = refused.error.value_or("");
  EXPECT_EQ(error.find(secret_key), std::string::npos) << error;
  EXPECT_NE(error.find("HTTP 401"), std::string::npos) << error;
  EXPECT_NE(error.find(std::string("$") + key_variable), std::string::npos) << error;
  EXPECT_EQ(all_logs(refused).find(secret_key), std::string::npos);
}

TEST_F(LlmAgentTest, NoKeyMeansNoAuthorizationHeader) {
  server_.push(final_answer());
  const AgentOutcome outcome = run("Hello.", params());
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].headers.count("authorization"), 0u);
}

TEST_F(LlmAgentTest, AKeyInApiKeyEnvIsRefusedWithoutBeingEchoed) {
  const AgentOutcome outcome =
      run("Hello.", params(json::object{{"apiKeyEnv", "sk-live-abc.def"}}));
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(outcome.error.value_or("").find("never the key itself"), std::string::npos);
  EXPECT_EQ(outcome.error.value_or("").find("sk-live"), std::string::npos);
}

TEST_F(LlmAgentTest, MessagesJoinTheConversationBeforeTheNextCall) {
  write_file(workspace_ / "a.txt", "alpha\n");
  AgentHarness harness(*library_, options("Read a.txt.", params()));
  // The second message is sent while the first answer is on its way.
  ScriptedAnswer reading = calling({{"m1", "read_file", R"({"path": "a.txt"})"}});
  reading.before_answer = [&] { harness.send_message("And goodbye."); };
  server_.push(std::move(reading));
  server_.push(final_answer("Answered both."));
  harness.send_message("Also say hello.");
  harness.start();
  ASSERT_TRUE(harness.wait(30s));
  const AgentOutcome outcome = harness.outcome();
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  EXPECT_EQ(outcome.messages_taken, 2u);
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  const json::array first = messages(requests[0]);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[2].at("role"), "user");
  EXPECT_EQ(first[2].at("content"), "Also say hello.");
  const json::array second = messages(requests[1]);
  EXPECT_EQ(second.back().at("role"), "user");
  EXPECT_EQ(second.back().at("content"), "And goodbye.");
}

TEST_F(LlmAgentTest, WorksOnAHostWithoutSdk11) {
  server_.push(final_answer());
  AgentRunOptions old_host = options("Hello.", params());
  old_host.sdk_1_1 = false;
  const AgentOutcome outcome = nightshift::testing::run_agent(*library_, old_host, 60s);
  ASSERT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  EXPECT_EQ(result_of(outcome).at("usage").at("promptTokens"), 10);
}

TEST_F(LlmAgentTest, HttpsWithAVerifiedCertificate) {
  const auto certificate = nightshift::testing::TestCertificate::make();
  ScriptedModelServer https(certificate);
  https.push(final_answer("Over TLS."));

  // Not trusted (the system's CA certificates only): refused, not retried.
  const AgentOutcome refused = run("Hello.", params({}, https.base_url()));
  EXPECT_EQ(refused.return_code, NIGHTSHIFT_RUN_FAILED);
  EXPECT_NE(refused.error.value_or("").find("certificate"), std::string::npos)
      << refused.error.value_or("");

  // Trusted through OpenSSL's SSL_CERT_FILE: the answer comes.
  write_file(workspace_ / "ca.pem", certificate.certificate_pem);
  ::setenv("SSL_CERT_FILE", (workspace_ / "ca.pem").c_str(), 1);
  const AgentOutcome outcome = run("Hello.", params({}, https.base_url()));
  ASSERT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK) << outcome.error.value_or("");
  EXPECT_EQ(result_of(outcome).at("summary"), "Over TLS.");
}

}  // namespace
