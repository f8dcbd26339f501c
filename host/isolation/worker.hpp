// `nightshift-worker`: the child process a run executes in under process
// isolation. Two processes of it per run:
//
//   the keeper (worker_main.cpp): started by the host in a process group of
//     its own, a child subreaper; it reads the start frame, forks the agent
//     process, waits for it, and when it ends (or on SIGTERM from the host,
//     or when the host dies) kills every process left below it, then sends
//     the exit frame and exits. It runs no plugin code. The host starts it
//     with posix_spawn, or (plain process runs) has the process spawner
//     (`nightshift-worker --spawner`, see spawner.hpp) fork it.
//   the agent process (worker_agent.cpp): in a process group of its own,
//     with the run's limits; loads the plugin with the host's loader checks
//     and runs it with the SDK callbacks, each forwarded over the socket.
#pragma once

#include <atomic>
#include <cstdint>

#include "isolation/protocol.hpp"

namespace nightshift::isolation {

// The socket to the host: fd 3 in both processes.
inline constexpr int kWorkerSocketFd = 3;

// A page shared by the keeper and the agent process (MAP_SHARED): what the
// agent process records for the keeper to report after it is gone.
struct SharedFlags {
  std::atomic<std::uint32_t> memory_exhausted{0};
};

// Writes all of `bytes` to `fd`, retrying on EINTR; false when the peer is
// gone. Never raises SIGPIPE.
bool write_all(int fd, std::string_view bytes);

// The keeper's body (worker_main.cpp): the socket is fd 3, stdout and
// stderr go to the run's log, the working directory and environment are
// the run's. Returns the process's exit code.
int keeper_main();

// The process spawner's body (spawner_main.cpp, see spawner.hpp): its
// socket to the host is fd 3; `role` is its "--spawner" argument, which
// each keeper it forks overwrites. Returns the process's exit code.
int spawner_main(char* role);

// The agent process's body: never returns.
[[noreturn]] void run_agent_process(const StartFrame& start, SharedFlags* flags);

}  // namespace nightshift::isolation
