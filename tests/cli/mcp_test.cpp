// `nightshift mcp` driven as an MCP client drives it: the real binary as a
// child process, JSON-RPC lines over its stdin and stdout, against a real
// `nightshift serve` (port 0, its own data directory).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <set>

#include "child_process.hpp"
#include "host_process.hpp"
#include "test_support.hpp"

namespace nightshift::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto kAnswerTimeout = 30s;

// A child whose stdin and stdout are pipes held by the test (stderr goes to
// a file): the shape of an MCP client's server process.
class PipedProcess {
 public:
  PipedProcess(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
               const fs::path& stderr_file) {
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    for (const auto& entry : environment) env.push_back(const_cast<char*>(entry.c_str()));
    env.push_back(nullptr);
    int to_child[2];
    int from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (err < 0) throw std::runtime_error("cannot open " + stderr_file.string());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test instead of outliving it
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      ::dup2(err, STDERR_FILENO);
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    ::close(err);
    if (pid_ < 0) throw std::runtime_error("fork failed");
    stdin_ = to_child[1];
    stdout_ = from_child[0];
  }

  ~PipedProcess() {
    close_stdin();
    if (stdout_ >= 0) ::close(stdout_);
    if (!exit_code_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  PipedProcess(const PipedProcess&) = delete;
  PipedProcess& operator=(const PipedProcess&) = delete;

  void write_line(const std::string& line) {
    const std::string text = line + "\n";
    std::size_t written = 0;
    while (written < text.size()) {
      const auto n = ::write(stdin_, text.data() + written, text.size() - written);
      if (n <= 0) throw std::runtime_error("the server's stdin is closed");
      written += static_cast<std::size_t>(n);
    }
  }

  // The next line the child writes, or nullopt at the deadline or its EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (const auto end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return std::nullopt;
      pollfd ready{stdout_, POLLIN, 0};
      if (::poll(&ready, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[65536];
      const auto n = ::read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void close_stdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }

  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    wait_until(
        [&] {
          int status = 0;
          if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          }
          return exit_code_.has_value();
        },
        timeout, 5ms);
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffer_;
  std::optional<int> exit_code_;
};

class McpServer : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = std::make_unique<HostProcess>(NIGHTSHIFT_TEST_BINARY, NIGHTSHIFT_TEST_AGENTS_DIR,
                                          dir_ / "host", dir_ / "workspace");
    server_ = start_server(host_->token());
  }

  std::unique_ptr<PipedProcess> start_server(const std::string& token) {
    return std::make_unique<PipedProcess>(
        std::vector<std::string>{NIGHTSHIFT_TEST_BINARY, "mcp"},
        environment_with({{"NIGHTSHIFT_URL", host_->url()},
                          {"NIGHTSHIFT_TOKEN", token},
                          {"XDG_DATA_HOME", (dir_ / "client-xdg").string()}}),
        dir_ / ("mcp-" + std::to_string(++servers_) + ".err"));
  }

  std::string server_log() const {
    return read_file(dir_ / ("mcp-" + std::to_string(servers_) + ".err"));
  }

  // The next message from the server, parsed; a failure when none comes.
  json::object next_message(PipedProcess& server) {
    const auto line = server.read_line(kAnswerTimeout);
    if (!line) {
      ADD_FAILURE() << "no answer from the server; its stderr:\n" << server_log();
      return {};
    }
    boost::system::error_code error;
    auto value = json::parse(*line, error);
    if (error || !value.is_object()) {
      ADD_FAILURE() << "the server wrote a line that is not a JSON object: " << *line;
      return {};
    }
    return std::move(value.as_object());
  }

  // Sends a request and returns the answer (which must carry its id).
  json::object request(std::string_view method, json::object params = {}) {
    return request_on(*server_, method, std::move(params));
  }
  json::object request_on(PipedProcess& server, std::string_view method, json::object params) {
    const std::int64_t id = ++request_id_;
    server.write_line(json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}));
    json::object answer = next_message(server);
    EXPECT_EQ(answer["jsonrpc"], "2.0");
    EXPECT_EQ(answer["id"], id) << json::serialize(answer);
    return answer;
  }

  // tools/call; returns the result object (content and isError).
  json::object call_tool(std::string_view name, json::object arguments) {
    auto answer =
        request("tools/call", json::object{{"name", name}, {"arguments", std::move(arguments)}});
    if (!answer.contains("result")) {
      ADD_FAILURE() << "tools/call answered no result: " << json::serialize(answer);
      return {};
    }
    return answer["result"].as_object();
  }

  // The one text content of a tool result.
  static std::string text_of(const json::object& result) {
    const auto& content = result.at("content").as_array();
    EXPECT_EQ(content.size(), 1u);
    EXPECT_EQ(content.at(0).at("type"), "text");
    return std::string(content.at(0).at("text").as_string());
  }

  // A tool result that is not an error, its text parsed as JSON.
  static json::value json_of(const json::object& result) {
    EXPECT_EQ(result.at("isError"), false) << json::serialize(result);
    return json::parse(text_of(result));
  }

  TempDir dir_;
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<PipedProcess> server_;
  int servers_ = 0;
  std::int64_t request_id_ = 0;
};

TEST_F(McpServer, InitializeAnswersItsProtocolVersionServerInfoAndToolsCapability) {
  auto answer = request("initialize", {{"protocolVersion", "2025-06-18"},
                                       {"capabilities", json::object{}},
                                       {"clientInfo", {{"name", "test"}, {"version", "1"}}}});
  const auto& result = answer["result"].as_object();
  EXPECT_EQ(result.at("protocolVersion"), "2025-06-18");
  EXPECT_EQ(result.at("serverInfo").at("name"), "nightshift");
  EXPECT_EQ(result.at("serverInfo").at("version"), NIGHTSHIFT_TEST_VERSION);
  EXPECT_TRUE(result.at("capabilities").at("tools").is_object());

  // The initialized notification gets no answer: the next line is the ping's.
  server_->write_line(R"({"jsonrpc": "2.0", "method": "notifications/initialized"})");
  EXPECT_EQ(request("ping")["result"], json::object{});
}

TEST_F(McpServer, AnUnknownProtocolVersionIsAnsweredWithTheServersOwn) {
  auto answer = request("initialize", {{"protocolVersion", "1999-01-01"}});
  EXPECT_EQ(answer["result"].at("protocolVersion"), "2025-06-18");
}

TEST_F(McpServer, ToolsListNamesTheEightToolsEachWithAnObjectSchema) {
  auto answer = request("tools/list");
  const auto& tools = answer["result"].at("tools").as_array();
  std::set<std::string> names;
  for (const auto& tool : tools) {
    names.insert(std::string(tool.at("name").as_string()));
    EXPECT_FALSE(tool.at("description").as_string().empty());
    const auto& schema = tool.at("inputSchema").as_object();
    EXPECT_EQ(schema.at("type"), "object") << tool.at("name");
    EXPECT_TRUE(schema.at("properties").is_object()) << tool.at("name");
  }
  EXPECT_EQ(names, (std::set<std::string>{"list_agents", "start_run", "list_runs", "get_run",
                                          "get_logs", "stop_run", "send_message", "wait_run"}));
  for (const auto& tool : tools) {
    if (tool.at("name") != "start_run") continue;
    const auto& schema = tool.at("inputSchema").as_object();
    EXPECT_EQ(schema.at("required"), json::array{"agentId"});
    for (const char* property : {"agentId", "task", "params"}) {
      EXPECT_TRUE(schema.at("properties").as_object().contains(property)) << property;
    }
  }
}

TEST_F(McpServer, StartsAnEchoRunWaitsForItAndReadsItsLog) {
  const auto started = json_of(call_tool("start_run", {{"agentId", "installed:echo"},
                                                       {"task", "first line\nsecond line"},
                                                       {"params", json::object{}}}));
  const std::string id(started.at("instanceId").as_string());
  EXPECT_EQ(started.at("agentId"), "installed:echo");

  const auto waited = json_of(call_tool("wait_run", {{"instanceId", id}, {"timeoutSeconds", 30}}));
  EXPECT_EQ(waited.at("status"), "completed") << json::serialize(waited);
  EXPECT_EQ(waited.at("result").at("task"), "first line\nsecond line");

  const auto logs = json_of(call_tool("get_logs", {{"instanceId", id}}));
  const auto& entries = logs.at("entries").as_array();
  ASSERT_GE(entries.size(), 2u) << json::serialize(logs);
  EXPECT_EQ(entries.at(0).at("message"), "first line");
  EXPECT_EQ(entries.at(1).at("message"), "second line");
  const auto later = json_of(call_tool("get_logs", {{"instanceId", id}, {"after", 1}}));
  EXPECT_EQ(later.at("entries").at(0).at("message"), "second line");

  const auto run = json_of(call_tool("get_run", {{"instanceId", id}}));
  EXPECT_EQ(run.at("status"), "completed");
  const auto completed = json_of(call_tool("list_runs", {{"status", "completed"}, {"limit", 10}}));
  ASSERT_EQ(completed.at("history").as_array().size(), 1u);
  EXPECT_EQ(completed.at("history").at(0).at("instanceId"), id.c_str());
}

TEST_F(McpServer, WaitRunGivesUpAtItsTimeoutAndStopRunStops) {
  const auto started = json_of(
      call_tool("start_run", {{"agentId", "installed:sleep"}, {"params", {{"seconds", 60}}}}));
  const std::string id(started.at("instanceId").as_string());
  const auto waited = json_of(call_tool("wait_run", {{"instanceId", id}, {"timeoutSeconds", 0.2}}));
  EXPECT_NE(waited.at("status"), "completed");
  EXPECT_NE(waited.at("status"), "cancelled");

  ASSERT_TRUE(wait_until(
      [&] {
        return json_of(call_tool("get_run", {{"instanceId", id}})).at("status") == "running";
      },
      20s, 50ms));
  // An active status narrows the active list (the API's status filter
  // takes only terminal ones).
  const auto running = json_of(call_tool("list_runs", {{"status", "running"}}));
  ASSERT_EQ(running.at("active").as_array().size(), 1u) << json::serialize(running);
  EXPECT_EQ(running.at("active").at(0).at("instanceId"), id.c_str());
  EXPECT_TRUE(running.at("history").as_array().empty());

  json_of(call_tool("stop_run", {{"instanceId", id}}));
  const auto ended = json_of(call_tool("wait_run", {{"instanceId", id}, {"timeoutSeconds", 30}}));
  EXPECT_EQ(ended.at("status"), "cancelled");
}

TEST_F(McpServer, ApiErrorsAreToolErrorsWithTheApisMessage) {
  const auto unknown_agent = call_tool("start_run", {{"agentId", "installed:no-such-agent"}});
  EXPECT_EQ(unknown_agent.at("isError"), true);
  const std::string text = text_of(unknown_agent);
  EXPECT_NE(text.find("agent_not_found"), std::string::npos) << text;
  EXPECT_NE(text.find("404"), std::string::npos) << text;

  const auto unknown_run =
      call_tool("get_run", {{"instanceId", "00000000-0000-4000-8000-000000000000"}});
  EXPECT_EQ(unknown_run.at("isError"), true);
  EXPECT_NE(text_of(unknown_run).find("run_not_found"), std::string::npos);

  // A message to a run that has ended is refused by the host (409, or 404
  // on a host without messages): either way an error result.
  const auto echo = json_of(call_tool("start_run", {{"agentId", "installed:echo"}}));
  const std::string id(echo.at("instanceId").as_string());
  json_of(call_tool("wait_run", {{"instanceId", id}}));
  const auto message = call_tool("send_message", {{"instanceId", id}, {"text", "too late"}});
  EXPECT_EQ(message.at("isError"), true) << json::serialize(message);
}

TEST_F(McpServer, BadArgumentsAndUnknownToolsAreToolErrors) {
  const auto missing = call_tool("get_run", {});
  EXPECT_EQ(missing.at("isError"), true);
  EXPECT_NE(text_of(missing).find("'instanceId' is required"), std::string::npos);

  const auto extra = call_tool("list_agents", {{"verbose", true}});
  EXPECT_EQ(extra.at("isError"), true);
  EXPECT_NE(text_of(extra).find("unknown argument 'verbose'"), std::string::npos);

  const auto unknown = call_tool("make_coffee", {});
  EXPECT_EQ(unknown.at("isError"), true);
  EXPECT_NE(text_of(unknown).find("unknown tool 'make_coffee'"), std::string::npos);
}

TEST_F(McpServer, ListAgentsIsTheHostsCatalog) {
  const auto agents = json_of(call_tool("list_agents", {}));
  std::set<std::string> ids;
  for (const auto& agent : agents.at("agents").as_array()) {
    ids.insert(std::string(agent.at("id").as_string()));
  }
  EXPECT_TRUE(ids.contains("installed:echo"));
  EXPECT_TRUE(ids.contains("installed:sleep"));
}

TEST_F(McpServer, AMalformedLineGetsAParseErrorAndTheServerGoesOn) {
  server_->write_line("{this is not json");
  auto error = next_message(*server_);
  EXPECT_EQ(error["jsonrpc"], "2.0");
  EXPECT_TRUE(error["id"].is_null());
  EXPECT_EQ(error["error"].at("code"), -32700);

  server_->write_line("[1, 2]");
  EXPECT_EQ(next_message(*server_)["error"].at("code"), -32600);

  EXPECT_EQ(request("ping")["result"], json::object{});
}

TEST_F(McpServer, AnUnknownMethodIsMethodNotFound) {
  auto answer = request("resources/list");
  EXPECT_EQ(answer["error"].at("code"), -32601);
  EXPECT_NE(answer["error"].at("message").as_string().find("resources/list"), std::string::npos);
}

TEST_F(McpServer, AWrongTokenIsAToolErrorThatSaysSo) {
  auto server = start_server("not-the-token");
  const std::int64_t id = ++request_id_;
  server->write_line(json::serialize(
      json::object{{"jsonrpc", "2.0"},
                   {"id", id},
                   {"method", "tools/call"},
                   {"params", {{"name", "list_agents"}, {"arguments", json::object{}}}}}));
  auto answer = next_message(*server);
  EXPECT_EQ(answer["id"], id);
  const auto& result = answer["result"].as_object();
  EXPECT_EQ(result.at("isError"), true);
  EXPECT_NE(text_of(result).find("401"), std::string::npos) << text_of(result);
}

TEST_F(McpServer, ExitsWhenItsInputEnds) {
  EXPECT_EQ(request("ping")["result"], json::object{});
  server_->close_stdin();
  EXPECT_EQ(server_->wait_for_exit(20s), 0);
}

}  // namespace
}  // namespace nightshift::testing
