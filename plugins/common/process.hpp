// Child processes for agents that run commands (shell, llm's run_command):
// close-on-exec pipes, a shell started in its own process group in the
// workspace, and a look at whether any process of a group is still alive.
// Failures throw std::runtime_error with what failed and why.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nightshift::plugin_common {

// An owned file descriptor, closed when destroyed.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~FileDescriptor() { reset(); }
  int get() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  FileDescriptor read_end;
  FileDescriptor write_end;
};

// A pipe whose ends are both close-on-exec, so no other child the host spawns
// inherits them; the read end is non-blocking so a drain stops when it is empty.
Pipe make_pipe();

// Starts `/bin/sh -c command` in a new process group (its pid is the group
// id), with no blocked signals and every catchable signal at its default,
// stdin from /dev/null, stdout and stderr into the write ends of `out` and
// `err` (the same pipe for both merges them), `workspace` as its working
// directory, no other descriptor of the host, and the host's environment
// with NIGHTSHIFT_INSTANCE_ID set to `instance_id` and without the
// variables named in `unset_variables`.
pid_t spawn_shell(const std::string& command, const std::string& workspace,
                  std::string_view instance_id, const Pipe& out, const Pipe& err,
                  const std::vector<std::string>& unset_variables = {});

// True while a process of group `pgid` is alive (zombies do not count).
bool group_has_live_process(pid_t pgid);

// "SIGTERM" for 15, or "signal N" for one without a name.
std::string signal_name(int sig);

}  // namespace nightshift::plugin_common
