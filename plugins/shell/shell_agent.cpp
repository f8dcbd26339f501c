// installed:shell: runs the task as `/bin/sh -c <task>` in its own process
// group, in the workspace, streaming every stdout line as an `info` entry and
// every stderr line as a `warn` entry as soon as it is printed. A stop sends
// SIGTERM to the whole group, then SIGKILL after a grace period, and run()
// returns only once no live process of the group is left. Processes the
// command leaves running in its group when it exits are terminated the same
// way, so a run never leaves anything behind.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/json/src.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nightshift/agent.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "line_splitter.hpp"
#include "process.hpp"

namespace nightshift::shell {
namespace {

using Clock = std::chrono::steady_clock;
namespace json = boost::json;

// How often the loop wakes to look at cancelled() and the child's state when
// there is no output: a stop is seen within this long.
constexpr int poll_interval_ms = 20;
constexpr std::size_t read_chunk_bytes = 64 * 1024;
constexpr int max_reads_per_drain = 16;
constexpr int max_final_drain_rounds = 64;

using plugin_common::FileDescriptor;
using plugin_common::group_has_live_process;
using plugin_common::LineSplitter;
using plugin_common::make_pipe;
using plugin_common::Pipe;
using plugin_common::signal_name;
using plugin_common::spawn_shell;

[[noreturn]] void fail_with_errno(const std::string& what, int error) {
  throw AgentFailure(what + ": " + std::generic_category().message(error));
}

// ---- params ----

struct ShellParams {
  std::string command;
  std::chrono::milliseconds grace{5000};
  std::size_t max_line_bytes = 4096;
};

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::optional<double> number_param(const json::object& params, std::string_view name) {
  const json::value* value = params.if_contains(name);
  if (value == nullptr || value->is_null()) return std::nullopt;
  if (!value->is_number()) throw AgentFailure("param " + std::string(name) + " must be a number");
  return value->to_number<double>();
}

ShellParams parse_params(std::string_view params_json, std::string_view task) {
  json::error_code parse_error;
  const json::value parsed = json::parse(params_json, parse_error);
  if (parse_error || !parsed.is_object()) throw AgentFailure("the params are not a JSON object");
  const json::object& params = parsed.get_object();

  ShellParams out;
  if (!is_blank(task)) {
    out.command = std::string(task);
  } else if (const json::value* command = params.if_contains("command");
             command != nullptr && command->is_string()) {
    out.command = std::string(command->get_string());
  }
  if (is_blank(out.command)) {
    throw AgentFailure(
        "no command to run: the task is empty (give the shell command as the task, or set the "
        "`command` param)");
  }
  if (const auto grace = number_param(params, "graceSeconds")) {
    if (!std::isfinite(*grace) || *grace < 0) {
      throw AgentFailure("param graceSeconds must be a number of seconds, 0 or more");
    }
    out.grace = std::chrono::milliseconds(static_cast<std::int64_t>(*grace * 1000));
  }
  if (const auto max_line = number_param(params, "maxLineLength")) {
    if (!(*max_line >= 4) || *max_line > 1e9 || std::floor(*max_line) != *max_line) {
      throw AgentFailure("param maxLineLength must be a whole number of bytes, 4 or more");
    }
    out.max_line_bytes = static_cast<std::size_t>(*max_line);
  }
  return out;
}

// One of the child's output streams and the level its lines are logged at.
class OutputStream {
 public:
  OutputStream(FileDescriptor fd, Level level, std::size_t max_line_bytes)
      : fd_(std::move(fd)), level_(level), splitter_(max_line_bytes) {}

  bool is_open() const noexcept { return fd_.is_open(); }
  int fd() const noexcept { return fd_.get(); }

  // Reads and logs what is available now, up to a bound so that a command
  // that writes without pause cannot keep the loop from seeing a stop;
  // closes the stream at EOF.
  void drain(const RunContext& ctx) {
    std::array<char, read_chunk_bytes> buffer{};
    for (int reads = 0; fd_.is_open() && reads < max_reads_per_drain; ++reads) {
      const ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
      if (n > 0) {
        splitter_.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)),
                       [&](std::string_view line) { ctx.log(level_, line); });
      } else if (n == 0) {
        close(ctx);
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      } else {
        ctx.warn(std::string("reading the command's output failed: ") + std::strerror(errno));
        close(ctx);
      }
    }
  }

  // Logs a last line without newline and stops reading.
  void close(const RunContext& ctx) {
    splitter_.finish([&](std::string_view line) { ctx.log(level_, line); });
    fd_.reset();
  }

 private:
  FileDescriptor fd_;
  Level level_;
  LineSplitter splitter_;
};

// The running command: its group, its output, and how it ended.
class CommandRun {
 public:
  CommandRun(const RunContext& ctx, const ShellParams& params) : ctx_(ctx), grace_(params.grace) {
    Pipe out = make_pipe();
    Pipe err = make_pipe();
    std::string workspace = ctx.workspace();
    if (workspace.empty()) workspace = ".";
    ctx.debug("running /bin/sh -c in " + workspace + ": " + params.command);
    pid_ = spawn_shell(params.command, workspace, ctx.instance_id(), out, err);
    // Our copies of the write ends must go, or the pipes never reach EOF.
    out.write_end.reset();
    err.write_end.reset();
    stdout_.emplace(std::move(out.read_end), Level::info, params.max_line_bytes);
    stderr_.emplace(std::move(err.read_end), Level::warn, params.max_line_bytes);
  }

  // Whatever happens (an exception included), nothing of the group survives.
  ~CommandRun() {
    if (leader_status_) return;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  CommandRun(const CommandRun&) = delete;
  CommandRun& operator=(const CommandRun&) = delete;

  // Streams output until the command has ended and its group is gone.
  void wait() {
    while (true) {
      poll_outputs(poll_interval_ms);
      if (!stop_requested_ && ctx_.cancelled()) {
        stop_requested_ = true;
        terminate_group("stop requested: sending SIGTERM to the command's processes");
      }
      reap_leader();
      if (terminating_ && !killed_ && Clock::now() - terminate_time_ >= grace_) kill_group();
      if (!leader_status_) continue;
      if (!group_has_live_process(pid_)) break;
      if (!terminating_) {
        terminate_group("the command exited; terminating the processes it left running");
      }
    }
    // What the group wrote before it ended is still in the pipes. Writers
    // outside the group (a process that left it) may hold them open and keep
    // writing: take what is there, within a bound, and stop reading.
    for (int round = 0; round < max_final_drain_rounds && poll_outputs(0); ++round) {
    }
    stdout_->close(ctx_);
    stderr_->close(ctx_);
  }

  bool stop_requested() const noexcept { return stop_requested_; }
  int leader_status() const noexcept { return *leader_status_; }

 private:
  // Waits up to `timeout_ms` for output and logs it; true when there was some.
  bool poll_outputs(int timeout_ms) {
    std::array<pollfd, 2> fds{};
    nfds_t count = 0;
    for (OutputStream* stream : {&*stdout_, &*stderr_}) {
      if (stream->is_open()) fds[count++] = pollfd{stream->fd(), POLLIN, 0};
    }
    const int ready = ::poll(fds.data(), count, timeout_ms);
    if (ready < 0 && errno != EINTR) fail_with_errno("poll", errno);
    if (ready <= 0) return false;
    for (OutputStream* stream : {&*stdout_, &*stderr_}) {
      if (stream->is_open()) stream->drain(ctx_);
    }
    return true;
  }

  void reap_leader() {
    if (leader_status_) return;
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) leader_status_ = status;
  }

  void terminate_group(const std::string& why) {
    ctx_.debug(why);
    terminating_ = true;
    terminate_time_ = Clock::now();
    ::kill(-pid_, SIGTERM);
  }

  // SIGKILL cannot be ignored; it is sent once, as a process the group forks
  // after it is killed together with its parent.
  void kill_group() {
    ctx_.warn("the command's processes outlived the grace period after SIGTERM: sending SIGKILL");
    killed_ = true;
    ::kill(-pid_, SIGKILL);
  }

  const RunContext& ctx_;
  std::chrono::milliseconds grace_;
  pid_t pid_ = -1;  // the shell's pid, which is also the group's id
  std::optional<OutputStream> stdout_;
  std::optional<OutputStream> stderr_;
  std::optional<int> leader_status_;  // set once the shell is reaped
  bool stop_requested_ = false;
  bool terminating_ = false;
  bool killed_ = false;
  Clock::time_point terminate_time_;
};

std::string result_json(int status) {
  json::object result;
  if (WIFEXITED(status)) {
    result["exitCode"] = WEXITSTATUS(status);
  } else {
    result["exitCode"] = nullptr;
    result["signal"] = signal_name(WTERMSIG(status));
  }
  return json::serialize(result);
}

class ShellAgent : public Agent {
 public:
  void run(RunContext& ctx) override {
    const ShellParams params = parse_params(ctx.params_json(), ctx.task_view());
    CommandRun command(ctx, params);
    command.wait();
    const int status = command.leader_status();
    ctx.set_result_json(result_json(status));
    if (command.stop_requested()) {
      ctx.info("stopped");
      return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    if (WIFEXITED(status)) ctx.fail("exit status " + std::to_string(WEXITSTATUS(status)));
    ctx.fail("killed by signal " + signal_name(WTERMSIG(status)));
  }
};

}  // namespace
}  // namespace nightshift::shell

NIGHTSHIFT_AGENT(nightshift::shell::ShellAgent)
