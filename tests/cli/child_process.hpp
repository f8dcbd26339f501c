// A child process for the CLI tests: runs a program with its standard output
// and error going to files (so a chatty child never blocks on a full pipe),
// and waits for it with a deadline.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace nightshift::testing {

// The current environment with `changes` applied; an empty value removes
// the variable.
inline std::vector<std::string> environment_with(
    const std::map<std::string, std::string>& changes) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry; ++entry) {
    const std::string text(*entry);
    const auto name = text.substr(0, text.find('='));
    if (!changes.count(name)) result.push_back(text);
  }
  for (const auto& [name, value] : changes) {
    if (!value.empty()) result.push_back(name + "=" + value);
  }
  return result;
}

class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
               const std::filesystem::path& stdout_file, const std::filesystem::path& stderr_file,
               const std::filesystem::path& working_dir) {
    // Everything the child needs is prepared before fork(): after it, only
    // async-signal-safe calls.
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    for (const auto& entry : environment) env.push_back(const_cast<char*>(entry.c_str()));
    env.push_back(nullptr);
    const int out = ::open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || err < 0 || in < 0) throw std::runtime_error("cannot open the child's files");
    pid_ = ::fork();
    if (pid_ == 0) {
      // A test process that dies (a crash, a timeout's kill) takes the child
      // with it instead of leaving a host running.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(in, STDIN_FILENO);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(err, STDERR_FILENO);
      if (::chdir(working_dir.c_str()) != 0) ::_exit(126);
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
    ::close(out);
    ::close(err);
    ::close(in);
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }

  ~ChildProcess() {
    if (!exit_code_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void send_signal(int signal_number) {
    if (!exit_code_) ::kill(pid_, signal_number);
  }

  // The exit code (128 + N when killed by signal N), or nullopt when the
  // child is still running at the deadline.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exit_code_) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else if (std::chrono::steady_clock::now() >= deadline) {
        return std::nullopt;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

struct TerminalResult {
  std::optional<int> exit_code;  // nullopt: still running at the deadline (then killed)
  std::string output;            // stdout and stderr as the terminal saw them
};

// Runs a program with a pseudo-terminal as its stdin, stdout and stderr, the
// way a person at a terminal would, and returns what it printed.
inline TerminalResult run_in_terminal(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& environment,
                                      const std::filesystem::path& working_dir,
                                      std::chrono::milliseconds timeout) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (const auto& entry : environment) env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);
  int terminal = -1;
  const pid_t pid = ::forkpty(&terminal, nullptr, nullptr, nullptr);
  if (pid < 0) throw std::runtime_error("forkpty failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test, as above
    if (::chdir(working_dir.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  TerminalResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  // Reading ends with EIO once the child and its descendants closed the terminal.
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd ready{terminal, POLLIN, 0};
    if (::poll(&ready, 1, 50) <= 0) continue;
    const auto count = ::read(terminal, buffer, sizeof buffer);
    if (count <= 0) break;
    result.output.append(buffer, static_cast<std::size_t>(count));
  }
  // The terminal closes a moment before the child can be reaped.
  int status = 0;
  pid_t reaped = 0;
  while ((reaped = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (reaped == pid) {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(terminal);
  return result;
}

}  // namespace nightshift::testing
