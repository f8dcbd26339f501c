#include "isolation/process_run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include "isolation/fd.hpp"
#include "isolation/protocol.hpp"
#include "isolation/spawn_setup.hpp"
#include "isolation/spawner.hpp"

extern char** environ;

namespace nightshift::isolation {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRunOk = 0;
constexpr int kRunFailed = 1;
// A line of the worker's output longer than this is split.
constexpr std::size_t kMaxOutputLine = 4096;
// After SIGTERM to the group, how long past the kill grace the keeper gets
// to report before the host SIGKILLs the group itself.
constexpr std::chrono::milliseconds kKeeperSlack{5000};
// How long after a spawned keeper ended the spawner has to send its wait
// status (it reaps it at once).
constexpr std::chrono::milliseconds kStatusTimeout{10000};

std::system_error os_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

// The host's environment, never with the API token.
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("NIGHTSHIFT_TOKEN=")) continue;
    env.emplace_back(entry);
  }
  return env;
}

bool under(const std::filesystem::path& path, const std::filesystem::path& dir) {
  const std::string p = path.lexically_normal().string();
  const std::string d = dir.lexically_normal().string();
  return p == d ||
         (p.size() > d.size() && p.starts_with(d) && (d.ends_with('/') || p[d.size()] == '/'));
}

// The command line: the worker itself, or bwrap around it.
std::vector<std::string> command_line(const ProcessRunSpec& spec,
                                      const std::filesystem::path& bwrap) {
  const std::string worker = spec.worker.string();
  if (bwrap.empty()) return {worker};
  std::vector<std::string> args{bwrap.string(), "--die-with-parent"};
  if (!spec.limits.network) args.push_back("--unshare-net");
  if (spec.limits.sandbox) {
    args.insert(args.end(), {"--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/tmp"});
    // What the private /tmp hides and the run needs (tests keep all of it
    // under /tmp): the worker, the plugin's folder, the workspace.
    const std::filesystem::path plugin_dir = std::filesystem::path(spec.plugin_path).parent_path();
    const std::filesystem::path worker_dir = spec.worker.parent_path();
    for (const auto& dir : {worker_dir, plugin_dir}) {
      if (under(dir, "/tmp")) args.insert(args.end(), {"--ro-bind", dir.string(), dir.string()});
    }
    args.insert(args.end(), {"--bind", spec.workspace, spec.workspace});
  } else {
    args.insert(args.end(), {"--dev-bind", "/", "/"});
  }
  args.insert(args.end(), {"--chdir", spec.workspace, "--", worker});
  return args;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string seconds_text(std::uint64_t seconds) {
  return std::to_string(seconds);
}

// Collects the worker's stdout and stderr into lines for the run's log.
class OutputLines {
 public:
  explicit OutputLines(ProcessRunSink& sink) : sink_(sink) {}
  void feed(std::string_view bytes) {
    for (char c : bytes) {
      if (c == '\n') {
        flush();
      } else {
        line_.push_back(c);
        if (line_.size() >= kMaxOutputLine) flush();
      }
    }
  }
  void flush() {
    if (!line_.empty()) sink_.output_line(line_);
    line_.clear();
  }

 private:
  ProcessRunSink& sink_;
  std::string line_;
};

// The supervision of one worker process, from spawn to reaping.
class Supervisor {
 public:
  Supervisor(const ProcessRunSpec& spec, ProcessRunSink& sink, std::stop_token stop)
      : spec_(spec), sink_(sink), stop_(std::move(stop)), output_(sink) {}

  ProcessOutcome run() {
    std::filesystem::path bwrap;
    if (spec_.limits.sandbox || !spec_.limits.network) {
      bwrap = find_sandbox_tool(spec_.sandbox_tool);
      if (bwrap.empty()) {
        return fail(
            "this run asks for a sandbox (limits sandbox: true or network: false), which needs "
            "bubblewrap (bwrap), and it is not installed: install the bubblewrap package, or "
            "remove those limits");
      }
    }
    if (::access(spec_.worker.c_str(), X_OK) != 0) {
      return fail("the worker executable " + spec_.worker.string() +
                  " is missing or not executable: reinstall nightshift (it ships in "
                  "<prefix>/lib/nightshift/)");
    }
    if (::access(spec_.workspace.c_str(), X_OK) != 0) {
      return fail(
          "the workspace " + spec_.workspace +
          " cannot be entered (it is the agent's working directory): " + std::strerror(errno));
    }
    spawn(bwrap);
    send(encode(start_frame()));
    supervise();
    return outcome();
  }

  ~Supervisor() {
    stop_callback_.reset();  // waits for a callback in flight: the fd it writes is closed below
    sink_.set_waker({});
    if (pid_ > 0 && !reaped_) {
      // Only on an exception from inside: never leave the group running.
      ::kill(-pid_, SIGKILL);
      if (keeper_) {
        ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
        pollfd gone{pidfd_.get(), POLLIN, 0};
        ::poll(&gone, 1, static_cast<int>(kStatusTimeout.count()));
      } else {
        ::waitpid(pid_, nullptr, 0);
      }
    }
  }

 private:
  static ProcessOutcome fail(std::string why) {
    ProcessOutcome out;
    out.rc = kRunFailed;
    out.failure = std::move(why);
    return out;
  }

  StartFrame start_frame() const {
    StartFrame f;
    f.memory_mib = spec_.limits.memory_mib;
    f.cpu_seconds = spec_.limits.cpu_seconds;
    f.kill_grace_ms = static_cast<std::uint32_t>(
        std::clamp<std::int64_t>(spec_.kill_grace.count(), 0, 24 * 3600 * 1000));
    f.plugin_path = spec_.plugin_path;
    f.plugin_name = spec_.plugin_name;
    f.instance_id = spec_.instance_id;
    f.workspace = spec_.workspace;
    f.params_json = spec_.params_json;
    f.task = spec_.task;
    return f;
  }

  void spawn(const std::filesystem::path& bwrap) {
    wake_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) throw os_error("eventfd");
    // A run with a sandbox execs bwrap: only plain runs go through the
    // spawner. When it cannot start the keeper, posix_spawn does.
    if (!bwrap.empty() || !spec_.spawner || !spawn_through_spawner()) spawn_directly(bwrap);
    const int wake = wake_.get();
    auto waker = [wake] {
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(wake, &one, sizeof one);
    };
    sink_.set_waker(waker);
    stop_callback_.emplace(stop_, waker);
  }

  // The run's socket and output pipe: the host's ends in sock_ and
  // output_fd_, the keeper's returned.
  std::pair<Fd, Fd> make_channels() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      throw os_error("socketpair");
    }
    sock_ = Fd(pair[0]);
    Fd child_sock(pair[1]);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw os_error("pipe");
    output_fd_ = Fd(out[0]);
    Fd child_out(out[1]);
    ::fcntl(sock_.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(output_fd_.get(), F_SETFL, O_NONBLOCK);
    return {std::move(child_sock), std::move(child_out)};
  }

  bool spawn_through_spawner() {
    auto [child_sock, child_out] = make_channels();
    std::optional<SpawnedKeeper> keeper = spec_.spawner->spawn(
        spec_.worker, child_sock.get(), child_out.get(), spec_.workspace, child_environment());
    if (!keeper) return false;
    pid_ = keeper->pid;
    pidfd_ = std::move(keeper->pidfd);
    keeper_ = std::move(keeper);
    return true;
  }

  void spawn_directly(const std::filesystem::path& bwrap) {
    auto [child_sock, child_out] = make_channels();
    SpawnSetup setup;
    posix_spawn_file_actions_t* actions = setup.actions();
    posix_spawn_file_actions_addopen(actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(actions, child_out.get(), 1);
    posix_spawn_file_actions_adddup2(actions, child_out.get(), 2);
    posix_spawn_file_actions_adddup2(actions, child_sock.get(), 3);
    posix_spawn_file_actions_addclosefrom_np(actions, 4);
    posix_spawn_file_actions_addchdir_np(actions, spec_.workspace.c_str());
    std::vector<std::string> args = command_line(spec_, bwrap);
    std::vector<std::string> env = child_environment();
    std::vector<char*> argv = pointers(args);
    std::vector<char*> envp = pointers(env);
    pid_t pid = 0;
    const int rc =
        ::posix_spawn(&pid, argv[0], actions, setup.attributes(), argv.data(), envp.data());
    if (rc != 0) {
      errno = rc;
      throw os_error("could not start " + std::string(argv[0]));
    }
    pid_ = pid;
    pidfd_ = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd_) throw os_error("pidfd_open");
  }

  void send(const std::string& frame) { out_ += frame; }

  // Writes what the socket takes now.
  void flush_out() {
    while (!out_.empty() && !sock_closed_) {
      const ssize_t n = ::send(sock_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) out_.clear();  // the worker is gone
        return;
      }
      out_.erase(0, static_cast<std::size_t>(n));
    }
  }

  void on_wake() {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(wake_.get(), &count, sizeof count);
    if (stop_.stop_requested() && !stop_sent_) {
      stop_sent_ = true;
      stop_at_ = Clock::now();
      send(encode_empty(FrameType::stop));
    }
    while (auto message = sink_.take_message()) {
      if (!stop_sent_) send(encode_text(FrameType::message, *message));
    }
  }

  void supervise() {
    if (stop_.stop_requested()) on_wake();
    while (!exited_) {
      flush_out();
      std::array<pollfd, 4> fds{};
      fds[0] = {pidfd_.get(), POLLIN, 0};
      fds[1] = {wake_.get(), POLLIN, 0};
      fds[2] = {sock_closed_ ? -1 : sock_.get(),
                static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0};
      fds[3] = {output_fd_ ? output_fd_.get() : -1, POLLIN, 0};
      const int rc = ::poll(fds.data(), fds.size(), poll_timeout_ms());
      if (rc < 0 && errno != EINTR) throw os_error("poll");
      if (fds[1].revents != 0) on_wake();
      if (fds[2].revents != 0) read_socket();
      if (fds[3].revents != 0) read_output();
      if (fds[0].revents != 0) exited_ = true;
      escalate();
    }
    // The process is gone: what it wrote is all there is.
    read_socket();
    read_output();
    output_.flush();
    reap();
  }

  // The keeper has ended: its wait status, from the spawner that reaped it
  // or from waitpid.
  void reap() {
    if (keeper_) {
      reaped_ = true;
      status_ = Spawner::wait_status(*keeper_, kStatusTimeout);
      return;
    }
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    status_ = status;
  }

  int poll_timeout_ms() const {
    std::optional<Clock::time_point> next;
    if (stop_sent_ && !term_sent_) next = stop_at_ + spec_.stop_grace;
    if (term_sent_ && !kill_sent_) next = term_at_ + spec_.kill_grace + kKeeperSlack;
    if (sock_closed_ && !kill_sent_) {
      const auto at = sock_closed_at_ + kKeeperSlack;
      next = next ? std::min(*next, at) : at;
    }
    if (!next) return -1;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now()).count();
    return static_cast<int>(std::clamp<std::int64_t>(left + 1, 0, 60000));
  }

  // The stop grace is over: SIGTERM to the group (the keeper passes it on,
  // then SIGKILLs the agent's group); a keeper that does not report after
  // that, or a process that outlives its socket, is SIGKILLed here.
  void escalate() {
    const auto now = Clock::now();
    if (stop_sent_ && !term_sent_ && now >= stop_at_ + spec_.stop_grace) {
      killed_ = true;
      terminate(SIGTERM);
    }
    if ((term_sent_ && !kill_sent_ && now >= term_at_ + spec_.kill_grace + kKeeperSlack) ||
        (sock_closed_ && !kill_sent_ && now >= sock_closed_at_ + kKeeperSlack)) {
      kill_sent_ = true;
      ::kill(-pid_, SIGKILL);
    }
  }

  void terminate(int signal) {
    if (term_sent_) return;
    term_sent_ = true;
    term_at_ = Clock::now();
    ::kill(-pid_, signal);
  }

  void read_socket() {
    if (sock_closed_) return;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(sock_.get(), buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        close_socket();
        return;
      }
      if (n == 0) {
        if (!protocol_error_) {
          try {
            decoder_.finish();
          } catch (const ProtocolError& e) {
            protocol_error_ = e.what();
          }
        }
        close_socket();
        return;
      }
      if (protocol_error_) continue;  // drained, so that the keeper can still write
      try {
        decoder_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        while (auto frame = decoder_.next()) handle(*frame);
      } catch (const ProtocolError& e) {
        protocol_error_ = e.what();
        // The keeper kills the agent at once on SIGINT.
        terminate(SIGINT);
      }
    }
  }

  void close_socket() {
    sock_closed_ = true;
    sock_closed_at_ = Clock::now();
    out_.clear();
  }

  void read_output() {
    if (!output_fd_) return;
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(output_fd_.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        output_fd_.reset();
        return;
      }
      output_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

  void handle(const Frame& frame) {
    if (!is_worker_to_host(frame.type)) {
      throw ProtocolError("the worker sent a frame only the host may send");
    }
    if (exit_) throw ProtocolError("the worker sent a frame after its exit report");
    if (!hello_ && frame.type != FrameType::hello) {
      throw ProtocolError("the worker's first frame was not a hello");
    }
    if (done_ && frame.type != FrameType::exit) {
      throw ProtocolError("the agent process sent a frame after its run returned");
    }
    switch (frame.type) {
      case FrameType::hello: {
        if (hello_) throw ProtocolError("the worker said hello twice");
        const HelloFrame hello = decode_hello(frame.payload);
        if (hello.version != kProtocolVersion) {
          throw ProtocolError("the worker speaks protocol version " +
                              std::to_string(hello.version) + ", the host " +
                              std::to_string(kProtocolVersion));
        }
        hello_ = true;
        break;
      }
      case FrameType::log: {
        const LogFrame log = decode_log(frame.payload);
        sink_.log(log.level, log.text);
        break;
      }
      case FrameType::progress:
        sink_.progress(decode_progress(frame.payload));
        break;
      case FrameType::result:
        sink_.set_result_json(frame.payload);
        break;
      case FrameType::error:
        sink_.set_error(frame.payload);
        break;
      case FrameType::usage: {
        const UsageFrame usage = decode_usage(frame.payload);
        sink_.report_usage(usage.prompt_tokens, usage.completion_tokens);
        break;
      }
      case FrameType::done:
        done_ = decode_done(frame.payload);
        break;
      case FrameType::load_failed:
        load_failed_ = frame.payload;
        break;
      case FrameType::exit:
        exit_ = decode_exit(frame.payload);
        break;
      case FrameType::message_read:
        if (!frame.payload.empty()) throw ProtocolError("a message_read frame carries nothing");
        sink_.message_read();
        break;
      default:
        throw ProtocolError("unexpected frame");
    }
  }

  ProcessOutcome outcome() const {
    ProcessOutcome out;
    const ProcessLimits& limits = spec_.limits;
    const std::string memory_text =
        "exceeded its memory limit of " + std::to_string(limits.memory_mib) + " MiB";
    if (protocol_error_) {
      return fail("the agent process broke the worker protocol (" + *protocol_error_ +
                  "), so it was killed");
    }
    if (load_failed_) return fail("could not load the agent in its process: " + *load_failed_);
    if (done_) {
      out.rc = *done_ == kRunOk ? kRunOk : kRunFailed;
      if (out.rc != kRunOk && exit_ && exit_->memory_exhausted && limits.memory_mib > 0) {
        out.failure = memory_text;
      }
      return out;
    }
    if (killed_) {
      out.killed = true;
      const bool hard = exit_ && exit_->how == ExitFrame::How::signaled && exit_->code == SIGKILL;
      out.log_note = std::string(
                         "the agent did not stop within the stop grace: its processes were sent "
                         "SIGTERM") +
                     (hard ? ", then SIGKILL" : "");
      return out;
    }
    if (exit_) {
      out = process_failure(memory_text);
      out.log_note = out.failure;
      return out;
    }
    // No report from the keeper: it (or the sandbox around it) ended first.
    if (!hello_ && (limits.sandbox || !limits.network)) {
      return fail("the sandbox could not start the agent (bubblewrap " + status_text() +
                  "); its message is in the run's log");
    }
    if (!status_) {
      return fail(
          "the agent's process ended without a report and its exit status is unknown (the "
          "host's process spawner ended with it)");
    }
    if (WIFSIGNALED(*status_)) {
      return fail("agent crashed: " + describe_signal(WTERMSIG(*status_)));
    }
    return fail("agent process exited with status " + std::to_string(WEXITSTATUS(*status_)));
  }

  // The agent process ended without returning: why, from the keeper's report.
  ProcessOutcome process_failure(const std::string& memory_text) const {
    const ProcessLimits& limits = spec_.limits;
    const bool signaled = exit_->how == ExitFrame::How::signaled;
    if (exit_->memory_exhausted && limits.memory_mib > 0) return fail(memory_text);
    if (signaled && limits.cpu_seconds > 0 &&
        (exit_->code == SIGXCPU ||
         (exit_->code == SIGKILL && exit_->cpu_ms + 50 >= limits.cpu_seconds * 1000))) {
      return fail("exceeded its CPU time limit of " + seconds_text(limits.cpu_seconds) + " s");
    }
    if (signaled) return fail("agent crashed: " + describe_signal(exit_->code));
    return fail("agent process exited with status " + std::to_string(exit_->code));
  }

  std::string status_text() const {
    if (!status_) return "ended";
    if (WIFSIGNALED(*status_)) return "was killed by " + describe_signal(WTERMSIG(*status_));
    return "exited with status " + std::to_string(WEXITSTATUS(*status_));
  }

  const ProcessRunSpec& spec_;
  ProcessRunSink& sink_;
  std::stop_token stop_;
  std::optional<std::stop_callback<std::function<void()>>> stop_callback_;
  OutputLines output_;

  Fd sock_, output_fd_, wake_, pidfd_;
  pid_t pid_ = -1;
  std::optional<SpawnedKeeper> keeper_;  // set: the spawner started the keeper
  bool exited_ = false, reaped_ = false;
  std::optional<int> status_;  // the keeper's wait status; unknown if the spawner died
  std::string out_;            // frames not yet written
  FrameDecoder decoder_;
  bool sock_closed_ = false;
  Clock::time_point sock_closed_at_{};

  bool stop_sent_ = false, term_sent_ = false, kill_sent_ = false, killed_ = false;
  Clock::time_point stop_at_{}, term_at_{};

  bool hello_ = false;
  std::optional<std::int32_t> done_;
  std::optional<std::string> load_failed_;
  std::optional<ExitFrame> exit_;
  std::optional<std::string> protocol_error_;
};

}  // namespace

std::string describe_signal(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  const std::string name = abbrev != nullptr ? std::string("SIG") + abbrev : "an unknown signal";
  return name + " (signal " + std::to_string(signal) + ")";
}

std::filesystem::path find_sandbox_tool(const std::filesystem::path& configured) {
  if (!configured.empty()) {
    return ::access(configured.c_str(), X_OK) == 0 ? configured : std::filesystem::path();
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const std::size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (dir.empty()) continue;
    const std::filesystem::path candidate = std::filesystem::path(dir) / "bwrap";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

ProcessOutcome run_in_process(const ProcessRunSpec& spec, ProcessRunSink& sink,
                              std::stop_token stop) noexcept {
  try {
    Supervisor supervisor(spec, sink, std::move(stop));
    return supervisor.run();
  } catch (const std::exception& e) {
    ProcessOutcome out;
    out.failure = std::string("the host could not run the agent's process: ") + e.what();
    return out;
  }
}

}  // namespace nightshift::isolation
