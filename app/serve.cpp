#include "serve.hpp"

#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/server.hpp"
#include "host.hpp"
#include "store/store.hpp"

#ifndef NIGHTSHIFT_AGENTS_SUBDIR
#error "NIGHTSHIFT_AGENTS_SUBDIR must be defined by the build"
#endif

namespace nightshift::app {

namespace fs = std::filesystem;

namespace {

double seconds_of(std::chrono::milliseconds duration) {
  return static_cast<double>(duration.count()) / 1000.0;
}

// The command line. Its defaults are those of the options structs the flags
// map onto (HostOptions with its RunManagerOptions, api::ServerOptions), so
// that each default lives in one place.
struct ServeOptions {
  ServeOptions() {
    const api::ServerOptions defaults;
    listen = defaults.listen_host + ":" + std::to_string(defaults.port);
  }
  std::string listen;
  std::string data_dir;   // empty: $XDG_DATA_HOME/nightshift
  std::string workspace;  // empty: the current directory
  std::vector<std::string> agents_dirs;
  std::string token;  // empty: NIGHTSHIFT_TOKEN, else <data-dir>/token
  RunManagerOptions runs;
  double stop_grace_seconds = seconds_of(RunManagerOptions{}.stop_grace);
  double run_timeout_seconds = 0;  // 0: no host-wide limit
  std::size_t thread_stack_kib = RunManagerOptions{}.worker_stack_bytes / 1024;
  api::ServerOptions server;
  std::string log_level = "info";
  std::string isolation = "manifest";  // or "process": every agent in its own process
  std::string store;               // empty: NIGHTSHIFT_STORE, else the SQLite file in the data dir
  std::string host_name;           // empty: the machine's host name and the port
  double host_lease_seconds = 30;  // a shared store's host lease
};

fs::path environment_dir(const char* variable, const char* home_fallback) {
  if (const char* value = std::getenv(variable); value != nullptr && *value == '/') return value;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    throw std::runtime_error(std::string("neither ") + variable + " nor HOME is set");
  }
  return fs::path(home) / home_fallback;
}

fs::path executable_dir() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  return error ? fs::current_path() : exe.parent_path();
}

std::pair<std::string, std::uint16_t> parse_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    throw CLI::ValidationError("--listen", "expected HOST:PORT, e.g. 127.0.0.1:7733");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port_text = listen.substr(colon + 1);
  std::size_t used = 0;
  unsigned long port = 0;
  try {
    port = std::stoul(port_text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != port_text.size() || port > 65535) {
    throw CLI::ValidationError("--listen", "the port must be a number from 0 to 65535");
  }
  return {host, static_cast<std::uint16_t>(port)};
}

std::string random_token() {
  std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 32; ++i) {
    const auto byte = static_cast<unsigned>(device()) & 0xffu;
    token += kHex[byte >> 4];
    token += kHex[byte & 0xfu];
  }
  return token;
}

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// The token file: read when it exists, else created with mode 0600 (and
// O_EXCL, so two hosts starting at once cannot both write one).
std::string token_from_file(const fs::path& file) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fs::exists(file)) {
      std::ifstream in(file);
      std::string token = trim(std::string(std::istreambuf_iterator<char>(in), {}));
      if (token.empty())
        throw std::runtime_error(file.string() + " is empty; delete it to get a new token");
      return token;
    }
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(errno));
    }
    ::fchmod(fd, 0600);
    const std::string token = random_token();
    const std::string line = token + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!written) throw std::runtime_error("cannot write " + file.string());
    return token;
  }
  throw std::runtime_error("cannot read or create " + file.string());
}

// The token from the environment, taken out of it: no agent, whatever its
// isolation, inherits it (a thread's child processes would).
std::string take_environment_token() {
  const char* env = std::getenv("NIGHTSHIFT_TOKEN");
  std::string token = env != nullptr ? env : "";
  ::unsetenv("NIGHTSHIFT_TOKEN");
  return token;
}

std::string choose_token(const ServeOptions& options, const std::string& environment_token,
                         const fs::path& data_dir) {
  if (!options.token.empty()) return options.token;
  if (!environment_token.empty()) return environment_token;
  return token_from_file(data_dir / "token");
}

std::string choose_store(const ServeOptions& options) {
  if (!options.store.empty()) return options.store;
  if (const char* env = std::getenv("NIGHTSHIFT_STORE"); env != nullptr && *env != '\0') return env;
  return {};
}

// The machine's host name and the port; with port 0 (chosen at start) the
// process id stands in for it, so two such hosts on one machine differ.
std::string default_host_name(std::uint16_t port) {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') std::strcpy(name, "localhost");
  return std::string(name) + ":" +
         (port != 0 ? std::to_string(port) : "pid" + std::to_string(::getpid()));
}

std::chrono::milliseconds to_millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

void set_up_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("nightshift");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

std::string url_host(const boost::asio::ip::address& address) {
  return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

// SIGINT and SIGTERM, caught from construction on: a client that reads the
// `listening on` line and signals at once must get a graceful stop, not the
// default action of a signal nobody handles yet.
class StopSignals {
 public:
  StopSignals() : signals_(context_, SIGINT, SIGTERM) {}
  void wait() {
    signals_.async_wait([](const boost::system::error_code&, int signal) {
      spdlog::info("received signal {}, shutting down", signal);
    });
    context_.run();
  }

 private:
  boost::asio::io_context context_;
  boost::asio::signal_set signals_;
};

int serve(const ServeOptions& options) {
  const std::string environment_token = take_environment_token();
  set_up_logging(options.log_level);
  const auto [host, port] = parse_listen(options.listen);
  const fs::path data_dir = options.data_dir.empty()
                                ? environment_dir("XDG_DATA_HOME", ".local/share") / "nightshift"
                                : fs::path(options.data_dir);
  fs::create_directories(data_dir);
  const fs::path workspace =
      fs::absolute(options.workspace.empty() ? fs::current_path() : fs::path(options.workspace));

  HostOptions host_options;
  host_options.data_dir = data_dir;
  host_options.workspace = workspace;
  host_options.installed_agent_dirs.push_back(
      (executable_dir() / ".." / NIGHTSHIFT_AGENTS_SUBDIR).lexically_normal());
  host_options.installed_agent_dirs.push_back(environment_dir("XDG_DATA_HOME", ".local/share") /
                                              "nightshift" / "agents");
  for (const std::string& dir : options.agents_dirs)
    host_options.installed_agent_dirs.push_back(fs::absolute(dir));
  host_options.user_remix_dir =
      environment_dir("XDG_CONFIG_HOME", ".config") / "nightshift" / "remix";
  host_options.runs = options.runs;
  host_options.store = choose_store(options);
  host_options.host_name = options.host_name.empty() ? default_host_name(port) : options.host_name;
  host_options.host_version = NIGHTSHIFT_VERSION;
  host_options.host_lease = to_millis(options.host_lease_seconds);
  // Several heartbeats per lease, so that one late heartbeat is no death.
  host_options.heartbeat_interval =
      std::max(std::chrono::milliseconds(100), host_options.host_lease / 6);
  host_options.runs.stop_grace = to_millis(options.stop_grace_seconds);
  host_options.runs.force_process_isolation = options.isolation == "process";
  host_options.runs.worker_stack_bytes = options.thread_stack_kib * 1024;
  if (options.run_timeout_seconds > 0)
    host_options.runs.default_timeout = to_millis(options.run_timeout_seconds);

  api::ServerOptions server_options = options.server;
  server_options.listen_host = host;
  server_options.port = port;
  server_options.token = choose_token(options, environment_token, data_dir);

  StopSignals stop_signals;
  Host engine(std::move(host_options));
  api::Server server(server_options, engine);
  server.start();

  const auto endpoint = server.local_endpoint();
  const std::string base =
      "http://" + url_host(endpoint.address()) + ":" + std::to_string(endpoint.port());
  std::cout << "listening on " << base << '\n'
            << "panel: " << base << "/?token=" << server_options.token << std::endl;
  spdlog::info("data in {}, workspace {}, store {} as host {}", data_dir.string(),
               workspace.string(), engine.store().kind(), engine.options().host_name);

  stop_signals.wait();
  server.stop_accepting();
  engine.shutdown(engine.options().runs.stop_grace);
  server.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* command =
      app.add_subcommand("serve", "Run the Nightshift host (HTTP, WebSocket, panel)");
  command->add_option("--listen", options->listen, "HOST:PORT to listen on (port 0 picks one)")
      ->capture_default_str();
  command->add_option("--data-dir", options->data_dir,
                      "database and token file (default $XDG_DATA_HOME/nightshift)");
  command->add_option("--workspace", options->workspace,
                      "where local and remix agents are found (default: current directory)");
  command->add_option("--agents-dir", options->agents_dirs,
                      "a directory of installed agents (repeatable)");
  command->add_option("--token", options->token,
                      "the API token (default: $NIGHTSHIFT_TOKEN, else <data-dir>/token)");
  command->add_option("--max-concurrent", options->runs.max_concurrent, "runs executing at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--max-queued", options->runs.max_queued, "runs waiting for a slot")
      ->capture_default_str();
  command
      ->add_option("--max-unread-messages", options->runs.max_unread_messages,
                   "messages a run's agent has not read yet; more are refused (429)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--stop-grace", options->stop_grace_seconds,
                   "seconds a stopping run may take (also at shutdown)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--run-timeout", options->run_timeout_seconds,
                   "seconds after which every run fails (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--log-max-entries", options->runs.log_max_entries, "log entries kept per run")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--log-max-bytes", options->runs.log_max_bytes, "log message bytes kept per run")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--thread-stack-kib", options->thread_stack_kib,
                   "stack of each run in a thread of the host, in KiB (an agent that needs "
                   "more than this crashes the host; in a process it has ulimit -s)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 20));
  command->add_option("--io-threads", options->server.io_threads, "HTTP/WebSocket threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  command
      ->add_option("--worker-threads", options->server.worker_threads,
                   "threads for store reads, stops, deletes and rescans")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  command
      ->add_option("--max-connections", options->server.max_connections, "open connections allowed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--isolation", options->isolation,
                   "manifest: each agent where its manifest says (default: its own process); "
                   "process: every agent in its own process")
      ->capture_default_str()
      ->check(CLI::IsMember({"manifest", "process"}));
  command->add_option("--store", options->store,
                      "where runs are kept: sqlite (default, in the data dir) or a "
                      "postgresql:// URI shared by several hosts (default $NIGHTSHIFT_STORE)");
  command->add_option("--host-name", options->host_name,
                      "this host's name among the hosts of a shared store "
                      "(default: the machine's host name and the port)");
  command
      ->add_option("--host-lease", options->host_lease_seconds,
                   "seconds without a heartbeat after which the other hosts of a shared store "
                   "fail this host's active runs as interrupted and start the schedule "
                   "times it claimed without starting their runs")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  command->add_option("--log-level", options->log_level, "trace, debug, info, warn, error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  command->callback([options, &exit_code] {
    try {
      exit_code = serve(*options);
    } catch (const CLI::Error&) {
      throw;
    } catch (const std::exception& error) {
      // Once, on stderr, where the host's log goes too: through the logger
      // as well, a terminal showed it twice.
      std::cerr << "nightshift serve: " << error.what() << '\n';
      exit_code = 1;
    }
  });
}

}  // namespace nightshift::app
