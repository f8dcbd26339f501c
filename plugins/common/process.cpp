#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

extern char** environ;

namespace nightshift::plugin_common {
namespace {

[[noreturn]] void fail_with_errno(const std::string& what, int error) {
  throw std::runtime_error(what + ": " + std::generic_category().message(error));
}

// The host's environment with NIGHTSHIFT_INSTANCE_ID set to this run's id,
// without the variables named in `unset`.
std::vector<std::string> child_environment(std::string_view instance_id,
                                           const std::vector<std::string>& unset) {
  constexpr std::string_view key = "NIGHTSHIFT_INSTANCE_ID=";
  const auto dropped = [&](std::string_view entry) {
    if (entry.starts_with(key)) return true;
    for (const std::string& name : unset) {
      if (entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=') {
        return true;
      }
    }
    return false;
  };
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (!dropped(*entry)) env.emplace_back(*entry);
  }
  env.push_back(std::string(key) + std::string(instance_id));
  return env;
}

class SpawnAttributes {
 public:
  SpawnAttributes() {
    if (int error = ::posix_spawnattr_init(&attr_); error != 0) {
      fail_with_errno("posix_spawnattr_init", error);
    }
  }
  ~SpawnAttributes() { ::posix_spawnattr_destroy(&attr_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  posix_spawnattr_t* get() noexcept { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

class SpawnFileActions {
 public:
  SpawnFileActions() {
    if (int error = ::posix_spawn_file_actions_init(&actions_); error != 0) {
      fail_with_errno("posix_spawn_file_actions_init", error);
    }
  }
  ~SpawnFileActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  SpawnFileActions(const SpawnFileActions&) = delete;
  SpawnFileActions& operator=(const SpawnFileActions&) = delete;
  posix_spawn_file_actions_t* get() noexcept { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

void check_spawn_setup(int error, const char* what) {
  if (error != 0) fail_with_errno(what, error);
}

}  // namespace

// Close-on-exec on both ends, so no other child the host spawns inherits
// them; the read end is non-blocking so a drain stops when it is empty.
Pipe make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) fail_with_errno("cannot make a pipe", errno);
  Pipe pipe{FileDescriptor(fds[0]), FileDescriptor(fds[1])};
  const int flags = ::fcntl(pipe.read_end.get(), F_GETFL);
  ::fcntl(pipe.read_end.get(), F_SETFL, flags | O_NONBLOCK);
  return pipe;
}

// The child starts in a new process group (its pid is the group id), with no
// blocked signals and every catchable signal at its default (the host may
// ignore SIGPIPE, and ignored signals survive exec), stdin from /dev/null,
// stdout/stderr into the pipes, in the workspace, and with no other
// descriptor of the host. posix_spawn rather than fork: the host is
// multi-threaded, and posix_spawn does only async-signal-safe work in the child.
pid_t spawn_shell(const std::string& command, const std::string& workspace,
                  std::string_view instance_id, const Pipe& out, const Pipe& err,
                  const std::vector<std::string>& unset_variables) {
  SpawnAttributes attributes;
  sigset_t no_signals;
  sigemptyset(&no_signals);
  sigset_t catchable;
  sigemptyset(&catchable);
  for (int sig = 1; sig < 32; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaddset(&catchable, sig);
  }
  check_spawn_setup(::posix_spawnattr_setpgroup(attributes.get(), 0), "posix_spawnattr_setpgroup");
  check_spawn_setup(::posix_spawnattr_setsigmask(attributes.get(), &no_signals),
                    "posix_spawnattr_setsigmask");
  check_spawn_setup(::posix_spawnattr_setsigdefault(attributes.get(), &catchable),
                    "posix_spawnattr_setsigdefault");
  check_spawn_setup(
      ::posix_spawnattr_setflags(
          attributes.get(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF),
      "posix_spawnattr_setflags");

  SpawnFileActions actions;
  check_spawn_setup(
      ::posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0),
      "posix_spawn_file_actions_addopen");
  check_spawn_setup(
      ::posix_spawn_file_actions_adddup2(actions.get(), out.write_end.get(), STDOUT_FILENO),
      "posix_spawn_file_actions_adddup2");
  check_spawn_setup(
      ::posix_spawn_file_actions_adddup2(actions.get(), err.write_end.get(), STDERR_FILENO),
      "posix_spawn_file_actions_adddup2");
  check_spawn_setup(::posix_spawn_file_actions_addchdir_np(actions.get(), workspace.c_str()),
                    "posix_spawn_file_actions_addchdir_np");
  check_spawn_setup(::posix_spawn_file_actions_addclosefrom_np(actions.get(), STDERR_FILENO + 1),
                    "posix_spawn_file_actions_addclosefrom_np");

  std::vector<std::string> env = child_environment(instance_id, unset_variables);
  std::vector<char*> envp;
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string arg0 = "sh", arg1 = "-c", arg2 = command;
  std::array<char*, 4> argv{arg0.data(), arg1.data(), arg2.data(), nullptr};

  pid_t pid = -1;
  if (int error =
          ::posix_spawn(&pid, "/bin/sh", actions.get(), attributes.get(), argv.data(), envp.data());
      error != 0) {
    fail_with_errno("cannot start /bin/sh in " + workspace, error);
  }
  return pid;
}

// True while a process of group `pgid` is alive. A zombie does not count: it
// is dead, and its reaping is up to its parent (orphans go to init, which in
// some containers reaps slowly or never), so waiting for it could hang.
bool group_has_live_process(pid_t pgid) {
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_file(entry.path() / "stat");
    std::string stat;
    std::getline(stat_file, stat);
    // "pid (comm) state ppid pgrp ...": comm may hold anything, so parse
    // from the last ')'.
    const std::size_t comm_end = stat.rfind(')');
    if (comm_end == std::string::npos) continue;
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + comm_end + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) {
      continue;
    }
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

}  // namespace nightshift::plugin_common
