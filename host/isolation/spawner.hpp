// The process spawner ("zygote") of process isolation: one long-lived
// `nightshift-worker --spawner` per run manager, started at the first plain
// process run, that forks each run's keeper itself. A fork of that small,
// single-threaded process costs far less than a posix_spawn + exec of the
// worker (no exec, no dynamic linking, no start-up of the C++ runtime).
//
// The host's side (Spawner) and the spawner's loop (spawner_main, in the
// worker executable) speak over a SOCK_SEQPACKET socketpair, fd 3 of the
// spawner:
//   host -> spawner, one message per run: the workspace and the run's
//     environment, NUL-terminated strings one after the other, with three
//     descriptors (SCM_RIGHTS): the run's socket (fd 3 of the keeper), the
//     write end of its output pipe (fds 1 and 2) and the run's control
//     socket (SOCK_SEQPACKET), on which the spawner answers:
//   spawner -> host, on the control socket: a SpawnReply `started` (the
//     keeper's pid, with a pidfd of it attached) or `failed` (an errno);
//     later, once it has reaped the keeper, `exited` with its wait status.
//     The spawner closes the control socket after that, or when it dies:
//     an end of stream there says the spawner is gone.
// The keeper (fork of the spawner) sets up fds 0-3, a process group of its
// own, the workspace as its directory and the run's environment, then runs
// the same keeper code as a keeper the host execs. The spawner dies at the
// end of stream on its socket (the host closed it, or died); each keeper
// hears of that by its PR_SET_PDEATHSIG (SIGHUP) and ends its agent.
//
// Only plain process runs go through the spawner: a run with a sandbox
// (bwrap) is still started by posix_spawn, as it execs bwrap anyway. If the
// spawner cannot be started, or dies, the next run starts a new one; after
// repeated failures every run falls back to posix_spawn (logged once). A
// failure never loses the run: its caller falls back to posix_spawn.
//
// Thread safety: a Spawner is [thread-safe]: any run thread may spawn.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "isolation/fd.hpp"

namespace nightshift::isolation {

namespace spawner_wire {

// The spawner's socket to the host, in the spawner.
inline constexpr int kSocketFd = 3;
// The largest request (workspace and environment) the spawner takes.
inline constexpr std::size_t kMaxRequest = 1u << 20;
// Descriptors per request: run socket, output pipe, control socket.
inline constexpr int kRequestFds = 3;
// The argument that makes `nightshift-worker` the spawner.
inline constexpr const char* kSpawnerArg = "--spawner";

struct SpawnReply {
  enum Kind : std::int32_t { started = 1, failed = 2, exited = 3 };
  std::int32_t kind = 0;
  std::int32_t value = 0;  // started: pid; failed: errno; exited: wait status
};

// The descriptors a received message carries (SCM_RIGHTS), in order; the
// caller owns them.
inline std::vector<int> received_fds(msghdr& msg) {
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.push_back(fd);
    }
  }
  return fds;
}

}  // namespace spawner_wire

// A keeper the spawner has started.
struct SpawnedKeeper {
  pid_t pid = -1;
  Fd pidfd;    // readable once the keeper has ended
  Fd control;  // where its wait status comes (wait_status)
};

class Spawner {
 public:
  Spawner() = default;
  // Closes the socket (the spawner exits) and reaps the spawner process.
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Starts a keeper with `run_socket` as its fd 3 and `output` as its fds 1
  // and 2, in `workspace` with `env`, starting the spawner process (the
  // executable `worker`) if there is none. Empty when the spawner cannot do
  // it (the caller then starts the keeper itself): no process of the run
  // exists then.
  std::optional<SpawnedKeeper> spawn(const std::filesystem::path& worker, int run_socket,
                                     int output, const std::string& workspace,
                                     const std::vector<std::string>& env);

  // The keeper's wait status, once its pidfd has said it ended. Empty when
  // the spawner died first or said nothing within `timeout`.
  static std::optional<int> wait_status(const SpawnedKeeper& keeper,
                                        std::chrono::milliseconds timeout);

  // The spawner process, for tests; -1 when there is none.
  pid_t process_id() const;

 private:
  bool start_locked(const std::filesystem::path& worker);
  void stop_locked(bool kill);
  void failed_locked(const std::string& why);

  mutable std::mutex mutex_;
  Fd socket_;                     // guarded by mutex_
  pid_t pid_ = -1;                // guarded by mutex_
  std::uint64_t generation_ = 0;  // guarded by mutex_: one per spawner process started
  int failures_ = 0;              // guarded by mutex_: in a row, without a keeper started
  bool disabled_ = false;         // guarded by mutex_: too many failures, no more spawner
};

}  // namespace nightshift::isolation
