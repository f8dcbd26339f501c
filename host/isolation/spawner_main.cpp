// `nightshift-worker --spawner`: the process spawner's loop (see
// spawner.hpp). Single-threaded; it holds nothing but its socket to the
// host, a signalfd for SIGCHLD and one control socket per live keeper.
// Each request is a fork: the child becomes the run's keeper (keeper_main,
// as in an exec'd worker); the parent answers with the keeper's pid and a
// pidfd, and with its wait status once it has reaped it.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "isolation/spawner.hpp"
#include "isolation/worker.hpp"

extern char** environ;

namespace nightshift::isolation {

namespace {

using spawner_wire::SpawnReply;

void reply(int control, SpawnReply answer, int attached = -1) {
  iovec iov{&answer, sizeof answer};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> cbuf{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (attached >= 0) {
    msg.msg_control = cbuf.data();
    msg.msg_controllen = cbuf.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &attached, sizeof attached);
  }
  // A host that no longer waits (its run is over) is not an error.
  while (::sendmsg(control, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR) {
  }
}

// The child's side of a fork: the run's keeper. Never returns.
[[noreturn]] void become_keeper(pid_t spawner, int run_socket, int output,
                                const std::vector<char*>& strings, char* role) {
  // What `ps` shows: "nightshift-worker --keeper", not "--spawner".
  if (role != nullptr) {
    const std::size_t room = std::strlen(role);
    std::memset(role, 0, room);
    std::memcpy(role, "--keeper", std::min<std::size_t>(room, 8));
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Dies with the spawner from here on; a spawner gone already means the
  // host is gone too.
  ::prctl(PR_SET_PDEATHSIG, SIGHUP);
  if (::getppid() != spawner) ::_exit(1);
  ::setpgid(0, 0);
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // The received descriptors are all above 3 (0-3 are the spawner's own),
  // so the dup2s below cannot overwrite one still to be moved.
  if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(output, 1) < 0 || ::dup2(output, 2) < 0 ||
      ::dup2(run_socket, kWorkerSocketFd) < 0) {
    ::_exit(127);
  }
  ::close_range(kWorkerSocketFd + 1, ~0U, 0);
  if (::chdir(strings[0]) != 0) {
    std::fprintf(stderr, "nightshift-worker: cannot enter the workspace %s: %s\n", strings[0],
                 std::strerror(errno));
    ::_exit(127);
  }
  environ = const_cast<char**>(strings.data() + 1);
  const int rc = keeper_main();
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(rc);
}

class SpawnerLoop {
 public:
  explicit SpawnerLoop(char* role) : role_(role) {}

  int run() {
    ::close_range(spawner_wire::kSocketFd + 1, ~0U, 0);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    signals_ = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signals_ < 0) {
      std::fprintf(stderr, "nightshift-worker --spawner: signalfd: %s\n", std::strerror(errno));
      return 2;
    }
    // Not zeroed: only the pages requests reach are ever touched.
    buffer_.reset(new char[kBufferSize]);
    for (;;) {
      std::array<pollfd, 2> fds{};
      fds[0] = {spawner_wire::kSocketFd, POLLIN, 0};
      fds[1] = {signals_, POLLIN, 0};
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return 2;
      }
      if (fds[1].revents != 0) reap();
      if (fds[0].revents & POLLIN) {
        if (!take_request()) return 0;
      } else if (fds[0].revents != 0) {
        return 0;  // the host is gone
      }
    }
  }

 private:
  // Reads and serves one request; false at the end of the stream.
  bool take_request() {
    iovec iov{buffer_.get(), kBufferSize};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 8)> cbuf{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.data();
    msg.msg_controllen = cbuf.size();
    const ssize_t n = ::recvmsg(spawner_wire::kSocketFd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) return false;
    const std::vector<int> fds = spawner_wire::received_fds(msg);
    if (fds.size() != spawner_wire::kRequestFds) {
      for (int fd : fds) ::close(fd);  // not the host's request: ignored
      return true;
    }
    const int run_socket = fds[0], output = fds[1], control = fds[2];
    const auto size = static_cast<std::size_t>(n);
    if ((msg.msg_flags & MSG_TRUNC) != 0 || size == 0 || buffer_[size - 1] != '\0') {
      reply(control, {SpawnReply::failed, E2BIG});
    } else {
      spawn(run_socket, output, control, size);
    }
    ::close(run_socket);
    ::close(output);
    return true;
  }

  void spawn(int run_socket, int output, int control, std::size_t size) {
    std::vector<char*> strings;
    for (std::size_t at = 0; at < size; at += std::strlen(buffer_.get() + at) + 1) {
      strings.push_back(buffer_.get() + at);
    }
    strings.push_back(nullptr);
    const pid_t spawner = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) become_keeper(spawner, run_socket, output, strings, role_);
    if (pid < 0) {
      reply(control, {SpawnReply::failed, errno});
      ::close(control);
      return;
    }
    // Its own group before the host hears of it (the child does the same;
    // either may get there first), so that the host can signal the group.
    ::setpgid(pid, pid);
    // Opened before the keeper can be reaped here: it names this process.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    reply(control, {SpawnReply::started, pid}, pidfd);
    if (pidfd >= 0) ::close(pidfd);
    controls_[pid] = control;
  }

  void reap() {
    signalfd_siginfo info{};
    while (::read(signals_, &info, sizeof info) > 0) {
    }
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      const auto it = controls_.find(pid);
      if (it == controls_.end()) continue;
      reply(it->second, {SpawnReply::exited, status});
      ::close(it->second);
      controls_.erase(it);
    }
  }

  char* role_;  // "--spawner" in the process's arguments
  int signals_ = -1;
  static constexpr std::size_t kBufferSize = spawner_wire::kMaxRequest + 1;
  std::unique_ptr<char[]> buffer_;
  std::unordered_map<pid_t, int> controls_;  // keeper -> its control socket
};

}  // namespace

int spawner_main(char* role) {
  // Not started by hand: the socket to the host must be there.
  if (::fcntl(spawner_wire::kSocketFd, F_GETFD) < 0) {
    std::fprintf(stderr,
                 "nightshift-worker --spawner: starts runs for the nightshift host, which starts "
                 "it; it is not meant to be run by hand\n");
    return 2;
  }
  ::fcntl(spawner_wire::kSocketFd, F_SETFD, FD_CLOEXEC);
  return SpawnerLoop(role).run();
}

}  // namespace nightshift::isolation
