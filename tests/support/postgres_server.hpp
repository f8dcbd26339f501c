// A private PostgreSQL server for tests: initdb in a temporary directory,
// started with pg_ctl on a free port and a socket directory of its own (no
// TCP listener), stopped and removed by the destructor. Run as root, the
// server's programs run as the `postgres` user, as PostgreSQL requires.
//
// The binaries are looked up in $NIGHTSHIFT_PG_BINDIR, then the newest
// /usr/lib/postgresql/<version>/bin, then the PATH; when none has them,
// PostgresServer::missing_binaries() says so and the tests skip.
//
// Thread safety: one thread drives a PostgresServer; the databases it makes
// are used from any thread through their own connections.
#pragma once

#include <arpa/inet.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace nightshift::testing {

class PostgresServer {
 public:
  struct Options {
    // Off by default: tests need no durability across a power loss, and
    // fsync on a busy test machine only makes them slow.
    bool durable = false;
    int max_connections = 200;
    // More `-c name=value` settings for the server, e.g. for a benchmark.
    std::string extra_settings;
  };

  // The directory holding initdb, pg_ctl and postgres, or nullopt.
  static std::optional<std::filesystem::path> find_binaries() {
    namespace fs = std::filesystem;
    const auto has_all = [](const fs::path& dir) {
      return fs::exists(dir / "initdb") && fs::exists(dir / "pg_ctl") &&
             fs::exists(dir / "postgres");
    };
    if (const char* env = std::getenv("NIGHTSHIFT_PG_BINDIR"); env != nullptr && *env != '\0') {
      if (has_all(env)) return fs::path(env);
    }
    std::optional<fs::path> newest;
    int newest_version = -1;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", error)) {
      const int version = std::atoi(entry.path().filename().c_str());
      if (version > newest_version && has_all(entry.path() / "bin")) {
        newest = entry.path() / "bin";
        newest_version = version;
      }
    }
    if (newest) return newest;
    if (const char* path = std::getenv("PATH")) {
      std::string rest = path;
      while (!rest.empty()) {
        const auto colon = rest.find(':');
        const fs::path dir = rest.substr(0, colon);
        if (!dir.empty() && has_all(dir)) return dir;
        if (colon == std::string::npos) break;
        rest = rest.substr(colon + 1);
      }
    }
    return std::nullopt;
  }

  // Why no server can be started here, or nullopt when one can.
  static std::optional<std::string> missing_binaries() {
    if (find_binaries()) return std::nullopt;
    return "PostgreSQL is not installed (initdb, pg_ctl and postgres were not found in "
           "$NIGHTSHIFT_PG_BINDIR, /usr/lib/postgresql/*/bin or the PATH); install it with "
           "`apt-get install postgresql` (scripts/setup.sh --test does)";
  }

  PostgresServer() : PostgresServer(Options{}) {}
  // initdb and start; throws with pg_ctl's log when either fails.
  explicit PostgresServer(Options options) : options_(options) {
    const auto bin = find_binaries();
    if (!bin) throw std::runtime_error(*missing_binaries());
    bin_ = *bin;
    data_ = dir_ / "data";
    socket_dir_ = dir_ / "socket";
    std::filesystem::create_directories(data_);
    std::filesystem::create_directories(socket_dir_);
    give_to_postgres_user(dir_.path());
    port_ = free_port();
    run_or_throw({(bin_ / "initdb").string(), "-D", data_.string(), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--no-sync"},
                 "initdb");
    start();
  }
  ~PostgresServer() {
    try {
      stop();
    } catch (const std::exception&) {
      // The temporary directory goes anyway; a stray server dies with it.
    }
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  void start() {
    // Only the private socket directory: no TCP listener.
    std::string settings = "-c listen_addresses= -p " + std::to_string(port_) + " -k " +
                           socket_dir_.string() +
                           " -c max_connections=" + std::to_string(options_.max_connections);
    if (!options_.durable) {
      settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
    }
    if (!options_.extra_settings.empty()) settings += " " + options_.extra_settings;
    run_or_throw({(bin_ / "pg_ctl").string(), "-D", data_.string(), "-l",
                  (dir_ / "server.log").string(), "-w", "-t", "120", "-o", settings, "start"},
                 "pg_ctl start");
    running_ = true;
  }

  // A fast shutdown: open connections are closed, their transactions
  // rolled back.
  void stop() {
    if (!running_) return;
    running_ = false;
    run_or_throw(
        {(bin_ / "pg_ctl").string(), "-D", data_.string(), "-m", "fast", "-w", "-t", "120", "stop"},
        "pg_ctl stop");
  }

  void restart() {
    stop();
    start();
  }

  // A libpq connection string for `database`.
  std::string conninfo(const std::string& database = "postgres") const {
    return "host=" + socket_dir_.string() + " port=" + std::to_string(port_) +
           " user=postgres dbname=" + database;
  }

  // The same as a postgresql:// URI (the socket directory percent-encoded).
  std::string uri(const std::string& database) const {
    std::string host;
    for (const char c : socket_dir_.string())
      host += c == '/' ? std::string("%2F") : std::string(1, c);
    return "postgresql://postgres@" + host + ":" + std::to_string(port_) + "/" + database;
  }

  // A new, empty database; returns its name.
  std::string create_database() {
    static std::atomic<int> counter{0};
    const std::string name = "test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    execute("CREATE DATABASE " + name);
    return name;
  }

  // Runs one statement on `database` (by default `postgres`); throws on failure.
  void execute(const std::string& sql, const std::string& database = "postgres") const {
    PGconn* conn = PQconnectdb(conninfo(database).c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      throw std::runtime_error("cannot connect to the test PostgreSQL: " + message);
    }
    PGresult* result = PQexec(conn, sql.c_str());
    const bool ok =
        PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK;
    const std::string message = ok ? "" : PQresultErrorMessage(result);
    PQclear(result);
    PQfinish(conn);
    if (!ok) throw std::runtime_error(sql + ": " + message);
  }

  // count(*) of a table of `database`.
  std::int64_t count_rows(const std::string& database, const std::string& table) const {
    PGconn* conn = PQconnectdb(conninfo(database).c_str());
    PGresult* result = PQexec(conn, ("SELECT count(*) FROM " + table).c_str());
    const bool ok = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;
    const std::string text = ok ? PQgetvalue(result, 0, 0) : PQresultErrorMessage(result);
    PQclear(result);
    PQfinish(conn);
    if (!ok) throw std::runtime_error("cannot count " + table + ": " + text);
    return std::stoll(text);
  }

  int port() const { return port_; }
  std::string log() const { return read_file(dir_ / "server.log"); }

 private:
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("cannot find a free port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
  }

  // Root may not run PostgreSQL: its files and programs belong to `postgres`.
  static std::optional<passwd> postgres_user() {
    if (::geteuid() != 0) return std::nullopt;
    passwd* user = ::getpwnam("postgres");
    if (user == nullptr) {
      throw std::runtime_error(
          "running as root, PostgreSQL needs the `postgres` user, and there is none; create it "
          "or run the tests as an ordinary user");
    }
    return *user;
  }

  static void give_to_postgres_user(const std::filesystem::path& dir) {
    const auto user = postgres_user();
    if (!user) return;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      if (::chown(entry.path().c_str(), user->pw_uid, user->pw_gid) != 0) {
        throw std::runtime_error("cannot give " + entry.path().string() + " to postgres");
      }
    }
    if (::chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) {
      throw std::runtime_error("cannot give " + dir.string() + " to postgres");
    }
  }

  // Runs `argv` (as `postgres` when root), output to the directory's
  // command log; throws with that log when it fails.
  void run_or_throw(const std::vector<std::string>& argv, const std::string& what) {
    const auto user = postgres_user();
    const std::string output = (dir_ / "commands.log").string();
    // The child reopens stdout, which writes out what stdio holds for it: a
    // copy of this process's unwritten output, printed twice unless flushed.
    std::fflush(nullptr);
    const pid_t child = ::fork();
    if (child < 0) throw std::runtime_error("cannot fork for " + what);
    if (child == 0) {
      if (user) {
        if (::setgroups(0, nullptr) != 0 || ::setgid(user->pw_gid) != 0 ||
            ::setuid(user->pw_uid) != 0) {
          ::_exit(126);
        }
      }
      if (::chdir(dir_.path().c_str()) != 0) ::_exit(126);
      FILE* log = std::freopen(output.c_str(), "a", stdout);
      if (log != nullptr) ::dup2(STDOUT_FILENO, STDERR_FILENO);
      std::vector<char*> args;
      for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error(what + " failed (status " + std::to_string(status) + "):\n" +
                               read_file(output) + "\n" + read_file(dir_ / "server.log"));
    }
  }

  Options options_;
  TempDir dir_;
  std::filesystem::path bin_;
  std::filesystem::path data_;
  std::filesystem::path socket_dir_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace nightshift::testing
