// Test agent for process isolation: does, by its `mode`, one of the things
// a host must survive from an agent (see agent.json). Each mode logs what
// the tests need to check afterwards (process ids, what it could reach).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nightshift/agent.hpp>
#include <string>
#include <vector>

extern char** environ;

namespace {

// Tries a TCP connection; "ok" or why not.
std::string try_connect(const char* address, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, address, &to.sin_addr);
  timeval timeout{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  const std::string out = rc == 0 ? "ok" : std::strerror(errno);
  ::close(fd);
  return out;
}

// Busy for real, where the optimiser cannot drop it.
volatile std::uint64_t sink = 0;
void spin_forever() {
  for (;;) sink = sink + 1;
}

class Misbehave : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const boost::json::object params = boost::json::parse(ctx.params_json()).as_object();
    const std::string mode(params.at("mode").as_string());
    ctx.info("pid " + std::to_string(::getpid()));
    if (mode == "segfault") {
      volatile int* nowhere = nullptr;
      *nowhere = 1;
    } else if (mode == "abort") {
      std::abort();
    } else if (mode == "exit") {
      ::_exit(static_cast<int>(params.at("code").to_number<std::int64_t>()));
    } else if (mode == "spin") {
      ::signal(SIGTERM, SIG_IGN);  // and it ignores stops: only SIGKILL ends it
      ctx.info("spinning");
      spin_forever();
    } else if (mode == "spin-children") {
      spin_with_children(ctx, static_cast<int>(params.at("children").to_number<std::int64_t>()));
    } else if (mode == "leak") {
      std::vector<std::vector<char>> hoard;
      for (;;) {
        hoard.emplace_back(16u << 20, 'x');  // touched, so it is really used
      }
    } else if (mode == "burn") {
      ctx.info("burning");
      spin_forever();
    } else if (mode == "env") {
      for (char** e = environ; *e != nullptr; ++e) ctx.info(std::string("env ") + *e);
      char cwd[4096] = {};
      if (::getcwd(cwd, sizeof cwd) != nullptr) ctx.info(std::string("cwd ") + cwd);
      for (int fd = 0; fd < 64; ++fd) {
        if (::fcntl(fd, F_GETFD) >= 0) ctx.info("fd " + std::to_string(fd));
      }
    } else if (mode == "escape") {
      escape(ctx, std::string(params.at("outside").as_string()),
             static_cast<int>(params.at("port").to_number<std::int64_t>()));
    } else if (mode == "print") {
      std::printf("to stdout\n");
      std::fflush(stdout);
      std::fprintf(stderr, "to stderr\n");
    } else if (mode == "messages") {
      while (auto message = ctx.next_message(std::chrono::seconds(30))) {
        ctx.info("got " + *message);
        ctx.report_usage(1, 2);
        if (*message == "done") break;
      }
    } else if (mode == "garbage") {
      // Straight onto the worker's socket to the host: a frame far over the cap.
      const char frame[] = "\xff\xff\xff\x7f\x11";
      [[maybe_unused]] const ssize_t n = ::write(3, frame, sizeof frame - 1);
      ctx.sleep_for(std::chrono::hours(1));
    } else if (mode == "sleep") {
      ctx.sleep_for(std::chrono::hours(1));
    }
    ctx.set_result_json(R"({"mode": ")" + mode + R"("})");
  }

 private:
  // Children in process groups of their own (as `shell` makes them), each
  // with a grandchild, all sleeping; then it spins ignoring every stop.
  static void spin_with_children(nightshift::RunContext& ctx, int count) {
    for (int i = 0; i < count; ++i) {
      const pid_t child = ::fork();
      if (child == 0) {
        ::setpgid(0, 0);
        if (::fork() == 0) {
          ::setsid();
          ::execl("/bin/sleep", "sleep", "1000", static_cast<char*>(nullptr));
          ::_exit(127);
        }
        ::execl("/bin/sleep", "sleep", "1000", static_cast<char*>(nullptr));
        ::_exit(127);
      }
      ctx.info("child " + std::to_string(child));
    }
    ::signal(SIGTERM, SIG_IGN);
    ctx.info("spinning");
    spin_forever();
  }

  static void escape(nightshift::RunContext& ctx, const std::string& outside, int port) {
    if (!outside.empty()) {
      std::ofstream out(outside);
      out << "escaped\n";
      out.flush();
      ctx.info(std::string("write outside: ") + (out ? "ok" : "refused"));
    }
    {
      std::ofstream out(ctx.workspace() + "/inside.txt");
      out << "inside\n";
      out.flush();
      ctx.info(std::string("write workspace: ") + (out ? "ok" : "refused"));
    }
    {
      std::ofstream out("/tmp/nightshift-iso-private-tmp");
      out << "tmp\n";
      out.flush();
      ctx.info(std::string("write tmp: ") + (out ? "ok" : "refused"));
    }
    if (port > 0) ctx.info("connect loopback: " + try_connect("127.0.0.1", port));
    ctx.info("connect outside: " + try_connect("192.0.2.1", 80));
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Misbehave)
