// `nightshift serve` as a process: the two start-up lines, the token file,
// and a graceful exit on SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

#include "api_test_host.hpp"

namespace nightshift::api_test {
namespace {

struct ServeProcess {
  pid_t pid = -1;
  int stdout_fd = -1;

  ~ServeProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (stdout_fd >= 0) ::close(stdout_fd);
  }

  // Reads one line of the child's stdout, waiting at most `timeout`.
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      char c = 0;
      const ssize_t n = ::read(stdout_fd, &c, 1);
      if (n == 1) {
        if (c == '\n') return line;
        line += c;
      } else if (n == 0) {
        return std::nullopt;
      } else if (errno == EAGAIN) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      } else {
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  // Waits for the exit; returns the exit status, or -1 on timeout or signal.
  int wait_exit(std::chrono::milliseconds timeout) {
    int status = 0;
    const bool exited = testing::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                                            timeout, std::chrono::milliseconds(10));
    if (!exited) return -1;
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
};

ServeProcess spawn(const std::vector<std::string>& args, const std::filesystem::path& home) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  ServeProcess process;
  process.pid = ::fork();
  if (process.pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test instead of outliving it
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::setenv("HOME", home.c_str(), 1);
    ::setenv("XDG_DATA_HOME", (home / "data").c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (home / "config").c_str(), 1);
    ::unsetenv("NIGHTSHIFT_TOKEN");
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(NIGHTSHIFT_EXECUTABLE));
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(NIGHTSHIFT_EXECUTABLE, argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  process.stdout_fd = pipe_fds[0];
  ::fcntl(process.stdout_fd, F_SETFL, O_NONBLOCK);
  return process;
}

TEST(ServeProcess, PrintsBothLinesWritesAPrivateTokenFileAndExitsZeroOnSigterm) {
  testing::TempDir home;
  const auto data_dir = home / "host-data";
  ServeProcess serve = spawn({"serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir.string(),
                              "--workspace", home.path().string(), "--stop-grace", "1"},
                             home.path());
  const auto listening = serve.read_line();
  ASSERT_TRUE(listening);
  std::smatch match;
  ASSERT_TRUE(
      std::regex_match(*listening, match, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))")))
      << *listening;
  const auto port = static_cast<std::uint16_t>(std::stoi(match[1]));
  ASSERT_NE(port, 0);

  const auto panel = serve.read_line();
  ASSERT_TRUE(panel);
  const std::string token = testing::read_file(data_dir / "token");
  ASSERT_FALSE(token.empty());
  const std::string trimmed = token.substr(0, token.find('\n'));
  EXPECT_TRUE(std::regex_match(trimmed, std::regex("[0-9a-f]{64}"))) << trimmed;
  EXPECT_EQ(*panel, "panel: http://127.0.0.1:" + std::to_string(port) + "/?token=" + trimmed);
  struct stat info {};
  ASSERT_EQ(::stat((data_dir / "token").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  // It serves the built-in agents, found next to the executable.
  HttpClient client(port);
  const Response agents = client.get("/agents", {{"Authorization", "Bearer " + trimmed}});
  ASSERT_EQ(agents.result_int(), 200);
  EXPECT_NE(agents.body().find("installed:sleep"), std::string::npos);
  const Response started = client.send(http::verb::post, "/background-agents/start",
                                       start_body("installed:sleep", {{"seconds", 30}}),
                                       {{"Authorization", "Bearer " + trimmed}});
  ASSERT_EQ(started.result_int(), 201);

  ::kill(serve.pid, SIGTERM);
  EXPECT_EQ(serve.wait_exit(std::chrono::seconds(20)), 0);
}

TEST(ServeProcess, VersionFlagPrintsTheVersion) {
  testing::TempDir home;
  ServeProcess version = spawn({"--version"}, home.path());
  const auto line = version.read_line();
  ASSERT_TRUE(line);
  EXPECT_NE(line->find(NIGHTSHIFT_VERSION), std::string::npos);
  EXPECT_EQ(version.wait_exit(std::chrono::seconds(10)), 0);
}

TEST(ServeProcess, TokenFromTheCommandLineWinsAndNoFileIsWritten) {
  testing::TempDir home;
  const auto data_dir = home / "host-data";
  ServeProcess serve = spawn({"serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir.string(),
                              "--token", "given-token", "--workspace", home.path().string()},
                             home.path());
  ASSERT_TRUE(serve.read_line());
  const auto panel = serve.read_line();
  ASSERT_TRUE(panel);
  EXPECT_NE(panel->find("?token=given-token"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(data_dir / "token"));
  ::kill(serve.pid, SIGINT);
  EXPECT_EQ(serve.wait_exit(std::chrono::seconds(20)), 0);
}

}  // namespace
}  // namespace nightshift::api_test
