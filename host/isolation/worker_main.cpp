// `nightshift-worker`'s main: the keeper (see worker.hpp). It is started by
// the host with the socket as fd 3, stdin /dev/null and stdout/stderr going
// to the run's log, or forked so by the process spawner (`--spawner`, see
// spawner.hpp); it is not meant to be run by hand.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "isolation/spawner.hpp"
#include "isolation/worker.hpp"

namespace nightshift::isolation {

namespace {

// Reads exactly `size` bytes; false at end of stream or on an error.
bool read_exact(int fd, char* out, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::read(fd, out, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// The one frame the keeper reads: the start. Byte by byte through the
// header, then the payload, so nothing after it is consumed (the agent
// process reads the rest of the stream).
StartFrame read_start_frame() {
  char header[kHeaderSize];
  if (!read_exact(kWorkerSocketFd, header, sizeof header)) {
    throw ProtocolError("the host closed the socket before sending the start");
  }
  FrameDecoder decoder;
  decoder.feed(std::string_view(header, sizeof header));
  std::uint32_t size = 0;
  for (int i = 3; i >= 0; --i) size = (size << 8) | static_cast<std::uint8_t>(header[i]);
  if (size > kMaxPayload) throw ProtocolError("the start frame is over the size limit");
  std::string payload(size, '\0');
  if (!read_exact(kWorkerSocketFd, payload.data(), size)) {
    throw ProtocolError("the start frame was cut short");
  }
  decoder.feed(payload);
  std::optional<Frame> frame = decoder.next();
  if (!frame || frame->type != FrameType::start) {
    throw ProtocolError("the first frame from the host was not a start");
  }
  return decode_start(frame->payload);
}

std::int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The keeper's children, from /proc (the keeper is single-threaded, so its
// one task lists them all).
std::vector<pid_t> children_of_self() {
  std::vector<pid_t> out;
  const std::string path = "/proc/self/task/" + std::to_string(::getpid()) + "/children";
  std::ifstream in(path);
  pid_t pid = 0;
  while (in >> pid) out.push_back(pid);
  return out;
}

// Kills every process left below the keeper. As a child subreaper the keeper
// inherits each orphan, so repeating "kill my children, reap one" reaches
// grandchildren too, whatever process group or session they moved to.
void kill_descendants() {
  for (;;) {
    for (pid_t child : children_of_self()) ::kill(child, SIGKILL);
    int status = 0;
    const pid_t reaped = ::waitpid(-1, &status, 0);
    if (reaped < 0 && errno == ECHILD) return;
  }
}

class Keeper {
 public:
  Keeper(StartFrame start, SharedFlags* flags) : start_(std::move(start)), flags_(flags) {}

  int run() {
    sigset_t watched;
    sigemptyset(&watched);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&watched, sig);
    sigset_t before;
    ::sigprocmask(SIG_BLOCK, &watched, &before);

    const pid_t keeper = ::getpid();
    agent_ = ::fork();
    if (agent_ < 0) {
      write_all(kWorkerSocketFd, encode_text(FrameType::load_failed,
                                             std::string("could not fork the agent process: ") +
                                                 std::strerror(errno)));
      return 1;
    }
    if (agent_ == 0) {
      ::sigprocmask(SIG_SETMASK, &before, nullptr);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != keeper) ::_exit(1);
      ::setpgid(0, 0);
      run_agent_process(start_, flags_);
    }
    ::setpgid(agent_, agent_);  // either side may get there first
    supervise(watched);
    kill_descendants();
    ExitFrame exit;
    if (WIFSIGNALED(status_)) {
      exit.how = ExitFrame::How::signaled;
      exit.code = WTERMSIG(status_);
    } else {
      exit.how = ExitFrame::How::exited;
      exit.code = WEXITSTATUS(status_);
    }
    exit.cpu_ms = cpu_ms_;
    exit.memory_exhausted = flags_->memory_exhausted.load() != 0;
    exit.killed = killing_;
    write_all(kWorkerSocketFd, encode(exit));
    return 0;
  }

 private:
  // Waits for the agent process; SIGTERM (the host's stop escalation)
  // sends SIGTERM to its group and SIGKILL after the kill grace; SIGHUP
  // (the host died) and SIGINT kill it at once.
  void supervise(const sigset_t& watched) {
    std::int64_t kill_at = -1;
    for (;;) {
      if (reap_agent()) return;
      timespec wait{1, 0};
      if (kill_at >= 0) {
        const std::int64_t left = std::max<std::int64_t>(kill_at - now_ms(), 0);
        wait = timespec{static_cast<time_t>(left / 1000), static_cast<long>(left % 1000) * 1000000};
      }
      siginfo_t info{};
      const int sig = ::sigtimedwait(&watched, &info, &wait);
      if (sig == SIGTERM && !killing_) {
        killing_ = true;
        ::kill(-agent_, SIGTERM);
        kill_at = now_ms() + start_.kill_grace_ms;
      } else if (sig == SIGHUP || sig == SIGINT) {
        killing_ = true;
        kill_at = now_ms();
      }
      if (kill_at >= 0 && now_ms() >= kill_at) {
        ::kill(-agent_, SIGKILL);
        ::kill(agent_, SIGKILL);
        kill_at = -1;  // SIGCHLD wakes the wait once it is gone
      }
    }
  }

  // Reaps whatever child has ended (orphans the keeper inherited too);
  // true once the agent process is among them.
  bool reap_agent() {
    for (;;) {
      int status = 0;
      rusage usage{};
      const pid_t pid = ::wait4(-1, &status, WNOHANG, &usage);
      if (pid <= 0) return false;
      if (pid == agent_) {
        status_ = status;
        cpu_ms_ =
            static_cast<std::uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
            static_cast<std::uint64_t>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
        return true;
      }
    }
  }

  StartFrame start_;
  SharedFlags* flags_;
  pid_t agent_ = -1;
  int status_ = 0;
  std::uint64_t cpu_ms_ = 0;
  bool killing_ = false;
};

}  // namespace

int keeper_main() {
  // Dies with whoever started it: the host's thread, bwrap, or the process
  // spawner. SIGHUP, not SIGKILL: the keeper must still kill what is below it.
  ::prctl(PR_SET_PDEATHSIG, SIGHUP);
  if (::getppid() == 1) return 1;
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (::fcntl(kWorkerSocketFd, F_GETFD) < 0) {
    std::fprintf(stderr,
                 "nightshift-worker: runs agents for the nightshift host, which starts it; it is "
                 "not meant to be run by hand\n");
    return 2;
  }
  ::fcntl(kWorkerSocketFd, F_SETFD, FD_CLOEXEC);
  StartFrame start;
  try {
    start = read_start_frame();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nightshift-worker: %s\n", e.what());
    return 2;
  }
  if (start.version != kProtocolVersion) {
    write_all(kWorkerSocketFd,
              encode_text(FrameType::load_failed,
                          "the worker speaks protocol version " + std::to_string(kProtocolVersion) +
                              ", the host " + std::to_string(start.version) +
                              ": reinstall nightshift so both come from one build"));
    return 2;
  }
  void* page = ::mmap(nullptr, sizeof(SharedFlags), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    std::fprintf(stderr, "nightshift-worker: mmap: %s\n", std::strerror(errno));
    return 2;
  }
  auto* flags = new (page) SharedFlags;
  write_all(kWorkerSocketFd,
            encode(HelloFrame{kProtocolVersion, static_cast<std::uint32_t>(::getpid())}));
  return Keeper(std::move(start), flags).run();
}

}  // namespace nightshift::isolation

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == nightshift::isolation::spawner_wire::kSpawnerArg) {
    return nightshift::isolation::spawner_main(argv[1]);
  }
  return nightshift::isolation::keeper_main();
}
