// The host's side of the process spawner (see spawner.hpp): starts the
// spawner process, sends it one request per run and reads its answers on
// the run's control socket.
#include "isolation/spawner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "isolation/spawn_setup.hpp"

extern char** environ;

namespace nightshift::isolation {

namespace {

using Clock = std::chrono::steady_clock;
using spawner_wire::SpawnReply;

// How long the spawner has to answer a request; past it, it is taken as
// stuck, killed and replaced.
constexpr std::chrono::milliseconds kReplyTimeout{10000};
// Failures in a row (starts, deaths, no answers) after which runs stop
// using the spawner.
constexpr int kMaxFailures = 3;

// The host's environment without the API token, for the spawner itself
// (each keeper gets the environment of its request), with LD_BIND_NOW: the
// dynamic linker resolves every function of the worker and its libraries
// once, in the spawner, instead of at the first call in every fork of it.
std::vector<std::string> spawner_environment() {
  std::vector<std::string> env{"LD_BIND_NOW=1"};
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("NIGHTSHIFT_TOKEN=") || entry.starts_with("LD_BIND_NOW=")) continue;
    env.emplace_back(entry);
  }
  return env;
}

// Waits until `fd` is readable or `deadline`; false at the deadline.
bool wait_readable(int fd, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left + 1, 60000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// One answer from the spawner on a control socket, and the descriptor sent
// with it (if any). Empty at the end of the stream, on an error or at the
// deadline.
std::optional<SpawnReply> read_reply(int control, Clock::time_point deadline, Fd* attached) {
  if (!wait_readable(control, deadline)) return std::nullopt;
  SpawnReply reply;
  iovec iov{&reply, sizeof reply};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> cbuf{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf.data();
  msg.msg_controllen = cbuf.size();
  ssize_t n = -1;
  do {
    n = ::recvmsg(control, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  for (const int fd : spawner_wire::received_fds(msg)) {
    if (attached != nullptr && !*attached) {
      *attached = Fd(fd);
    } else {
      ::close(fd);
    }
  }
  if (n != static_cast<ssize_t>(sizeof reply)) return std::nullopt;
  return reply;
}

// Sends one request; errno is set when it returns false.
bool send_request(int socket, const std::string& payload, const std::array<int, 3>& fds) {
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * spawner_wire::kRequestFds)> cbuf{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf.data();
  msg.msg_controllen = cbuf.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * spawner_wire::kRequestFds);
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * spawner_wire::kRequestFds);
  ssize_t n = -1;
  do {
    n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(payload.size());
}

}  // namespace

Spawner::~Spawner() {
  std::lock_guard lock(mutex_);
  stop_locked(false);
}

pid_t Spawner::process_id() const {
  std::lock_guard lock(mutex_);
  return pid_;
}

bool Spawner::start_locked(const std::filesystem::path& worker) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    failed_locked(std::string("socketpair: ") + std::strerror(errno));
    return false;
  }
  Fd mine(pair[0]);
  Fd theirs(pair[1]);
  // A group of its own: a Ctrl-C at the host's terminal is the host's to
  // handle, not the spawner's.
  SpawnSetup setup;
  posix_spawn_file_actions_t* actions = setup.actions();
  posix_spawn_file_actions_addopen(actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(actions, 1, "/dev/null", O_WRONLY, 0);
  // fd 2 stays the host's: what the spawner itself has to say goes there.
  posix_spawn_file_actions_adddup2(actions, theirs.get(), spawner_wire::kSocketFd);
  posix_spawn_file_actions_addclosefrom_np(actions, spawner_wire::kSocketFd + 1);
  std::string program = worker.string();
  std::string arg = spawner_wire::kSpawnerArg;
  std::array<char*, 3> argv{program.data(), arg.data(), nullptr};
  std::vector<std::string> env = spawner_environment();
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc =
      ::posix_spawn(&pid, program.c_str(), actions, setup.attributes(), argv.data(), envp.data());
  if (rc != 0) {
    failed_locked("could not start " + program + " " + arg + ": " + std::strerror(rc));
    return false;
  }
  socket_ = std::move(mine);
  pid_ = pid;
  ++generation_;
  return true;
}

void Spawner::stop_locked(bool kill) {
  if (pid_ <= 0) return;
  socket_.reset();  // the spawner's end of stream: it exits
  if (kill) ::kill(pid_, SIGKILL);
  // It exits at once; a spawner stuck past a few seconds is killed.
  const Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  if (!kill && (!pidfd || !wait_readable(pidfd.get(), Clock::now() + std::chrono::seconds(5)))) {
    ::kill(pid_, SIGKILL);
  }
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void Spawner::failed_locked(const std::string& why) {
  ++failures_;
  if (failures_ >= kMaxFailures && !disabled_) {
    disabled_ = true;
    spdlog::warn(
        "the process spawner failed {} times in a row ({}): from now on each process run is "
        "started on its own (slower, same behaviour)",
        failures_, why);
  } else {
    spdlog::warn("the process spawner failed ({}); a new one starts with the next run", why);
  }
}

std::optional<SpawnedKeeper> Spawner::spawn(const std::filesystem::path& worker, int run_socket,
                                            int output, const std::string& workspace,
                                            const std::vector<std::string>& env) {
  std::string payload = workspace;
  payload.push_back('\0');
  for (const std::string& e : env) {
    payload += e;
    payload.push_back('\0');
  }
  if (payload.size() > spawner_wire::kMaxRequest) return std::nullopt;
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return std::nullopt;
  SpawnedKeeper keeper;
  keeper.control = Fd(pair[0]);
  Fd theirs(pair[1]);
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    bool sent = false;
    // A spawner that died since the last run is found out here (the send
    // fails) and replaced once.
    for (int attempt = 0; attempt < 2 && !sent; ++attempt) {
      if (disabled_) return std::nullopt;
      if (pid_ <= 0 && !start_locked(worker)) return std::nullopt;
      sent = send_request(socket_.get(), payload, {run_socket, output, theirs.get()});
      if (!sent) {
        const int error = errno;
        stop_locked(true);
        failed_locked(std::string("it is gone: ") + std::strerror(error));
      }
    }
    if (!sent) return std::nullopt;
    generation = generation_;
  }
  // Only the spawner holds the other end now: its death is an end of stream.
  theirs.reset();
  Fd pidfd;
  const std::optional<SpawnReply> reply =
      read_reply(keeper.control.get(), Clock::now() + kReplyTimeout, &pidfd);
  if (reply && reply->kind == SpawnReply::started && pidfd) {
    keeper.pid = reply->value;
    keeper.pidfd = std::move(pidfd);
    std::lock_guard lock(mutex_);
    failures_ = 0;
    return keeper;
  }
  if (reply && reply->kind == SpawnReply::failed) {
    // The spawner is fine; the fork was not (the caller tries posix_spawn).
    spdlog::warn("the process spawner could not start a worker: {}", std::strerror(reply->value));
    return std::nullopt;
  }
  // No answer: the spawner died or is stuck. A keeper it may have forked
  // dies with it (its parent-death signal) and has descriptors the caller
  // no longer uses.
  std::lock_guard lock(mutex_);
  if (generation == generation_ && pid_ > 0) {
    stop_locked(true);
    failed_locked(reply ? "it answered nonsense" : "it did not answer");
  }
  return std::nullopt;
}

std::optional<int> Spawner::wait_status(const SpawnedKeeper& keeper,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::optional<SpawnReply> reply = read_reply(keeper.control.get(), deadline, nullptr);
    if (!reply) return std::nullopt;
    if (reply->kind == SpawnReply::exited) return reply->value;
  }
}

}  // namespace nightshift::isolation
