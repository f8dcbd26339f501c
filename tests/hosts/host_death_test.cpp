// Hosts as processes (`nightshift serve --store postgresql://...`) on one
// database: a host killed with SIGKILL has its active runs failed as
// interrupted by another host within the lease, and a host that was only
// paused past its lease comes back fenced off: its late writes change none
// of the runs another host rescued.
#include <signal.h>

#include <map>
#include <regex>

#include "child_process.hpp"
#include "shared_hosts.hpp"

namespace nightshift::hosts_test {
namespace {

using namespace std::chrono_literals;

// The lease the processes are given: short, so that the test is quick.
constexpr const char* kLeaseSeconds = "2";

class ServeProcess {
 public:
  ServeProcess(const std::string& store_uri, const std::string& name,
               const std::filesystem::path& dir)
      : dir_(dir) {
    std::filesystem::create_directories(dir_ / "data");
    std::filesystem::create_directories(dir_ / "workspace");
    const std::vector<std::string> argv{NIGHTSHIFT_EXECUTABLE,
                                        "serve",
                                        "--listen",
                                        "127.0.0.1:0",
                                        "--data-dir",
                                        (dir_ / "data").string(),
                                        "--workspace",
                                        (dir_ / "workspace").string(),
                                        "--agents-dir",
                                        NIGHTSHIFT_TEST_AGENTS_DIR,
                                        "--store",
                                        store_uri,
                                        "--host-name",
                                        name,
                                        "--host-lease",
                                        kLeaseSeconds,
                                        "--token",
                                        kToken};
    process_ = std::make_unique<testing::ChildProcess>(
        argv,
        testing::environment_with({{"XDG_DATA_HOME", (dir_ / "xdg-data").string()},
                                   {"XDG_CONFIG_HOME", (dir_ / "xdg-config").string()},
                                   {"NIGHTSHIFT_STORE", ""}}),
        dir_ / "out", dir_ / "err", dir_);
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)\n");
    std::smatch match;
    std::string text;
    if (!testing::wait_until(
            [&] {
              text = testing::read_file(dir_ / "out");
              return std::regex_search(text, match, listening) || process_->wait_for_exit(0ms);
            },
            60s, 10ms) ||
        !std::regex_search(text, match, listening)) {
      throw std::runtime_error("host " + name + " did not start: " + log());
    }
    port_ = static_cast<std::uint16_t>(std::stoi(match[1]));
  }
  ~ServeProcess() {
    process_->send_signal(SIGCONT);
    process_->send_signal(SIGTERM);
    process_->wait_for_exit(20s);
  }

  std::uint16_t port() const { return port_; }
  void signal(int number) { process_->send_signal(number); }
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    return process_->wait_for_exit(timeout);
  }
  std::string log() const { return testing::read_file(dir_ / "err"); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<testing::ChildProcess> process_;
  std::uint16_t port_ = 0;
};

json::object fetch(std::uint16_t port, const std::string& id) {
  return body_json(HttpClient(port).get("/background-agents/" + id)).as_object();
}

class HostDeathTest : public SharedHostsTest {
 protected:
  ServeProcess& start_host(const std::string& name) {
    processes_.push_back(std::make_unique<ServeProcess>(store_uri(), name, dir_ / name));
    return *processes_.back();
  }
  // The processes go before the database server (SharedHostsTest::TearDown).
  void TearDown() override {
    processes_.clear();
    SharedHostsTest::TearDown();
  }

  testing::TempDir dir_;
  std::vector<std::unique_ptr<ServeProcess>> processes_;
};

TEST_F(HostDeathTest, AHostKilledWithSigkillHasItsRunsFailedAsInterruptedByAnother) {
  ServeProcess& alpha = start_host("alpha");
  ServeProcess& beta = start_host("beta");
  ServeProcess& gamma = start_host("gamma");
  std::map<std::string, ServeProcess*> by_name{
      {"alpha", &alpha}, {"beta", &beta}, {"gamma", &gamma}};
  HttpClient client(alpha.port());
  const std::string id = start_run(client, "installed:sleep", {{"seconds", 120}});
  ASSERT_TRUE(testing::wait_until(
      [&] { return fetch(beta.port(), id).at("status").as_string() == "running"; }, 30s, 20ms));
  const std::string executing(fetch(beta.port(), id).at("host").as_string());
  ServeProcess* victim = by_name.at(executing);
  victim->signal(SIGKILL);
  victim->wait_for_exit(10s);
  ServeProcess* survivor = victim == &alpha ? &beta : &alpha;

  // Within the lease and a heartbeat or two: failed, interrupted.
  ASSERT_TRUE(testing::wait_until(
      [&] { return fetch(survivor->port(), id).at("status").as_string() == "failed"; }, 30s, 50ms))
      << survivor->log();
  const json::object rescued = fetch(survivor->port(), id);
  EXPECT_NE(rescued.at("error").as_string().find("interrupted"), std::string::npos)
      << rescued.at("error");
  // The dead host is listed as not alive.
  bool listed_dead = false;
  const json::value hosts = body_json(HttpClient(survivor->port()).get("/hosts"));
  for (const json::value& host : hosts.at("hosts").as_array()) {
    if (host.at("name").as_string() == executing) listed_dead = host.at("alive") == false;
  }
  EXPECT_TRUE(listed_dead);
  // The survivors still take and execute runs.
  HttpClient survivor_client(survivor->port());
  const std::string after = start_run(survivor_client, "installed:echo");
  EXPECT_TRUE(testing::wait_until(
      [&] { return fetch(survivor->port(), after).at("status").as_string() == "completed"; }, 30s,
      20ms));
}

TEST_F(HostDeathTest, AHostPausedPastItsLeaseCannotOverwriteTheRunsAnotherHostRescued) {
  ServeProcess& alpha = start_host("alpha");
  ServeProcess& beta = start_host("beta");
  HttpClient client(alpha.port());
  // Long enough to still be running when the paused host resumes.
  const std::string id = start_run(client, "installed:sleep", {{"seconds", 8}});
  ASSERT_TRUE(testing::wait_until(
      [&] { return fetch(beta.port(), id).at("status").as_string() == "running"; }, 30s, 20ms));
  const std::string executing(fetch(beta.port(), id).at("host").as_string());
  ServeProcess& late = executing == "alpha" ? alpha : beta;
  ServeProcess& rescuer = executing == "alpha" ? beta : alpha;

  late.signal(SIGSTOP);
  ASSERT_TRUE(testing::wait_until(
      [&] { return fetch(rescuer.port(), id).at("status").as_string() == "failed"; }, 30s, 50ms))
      << rescuer.log();
  const json::object rescued = fetch(rescuer.port(), id);
  late.signal(SIGCONT);

  // The late host's agent returns and its host writes the run's end: the
  // store refuses it (another host holds the run now) and says so.
  ASSERT_TRUE(testing::wait_until(
      [&] { return late.log().find("another host took the run") != std::string::npos; }, 60s, 50ms))
      << late.log();
  // Every host, the late one included, shows what the rescuer recorded.
  for (ServeProcess* host : {&alpha, &beta}) {
    EXPECT_TRUE(testing::wait_until(
        [&] { return fetch(host->port(), id).at("status").as_string() == "failed"; }, 30s, 50ms));
    const json::object now = fetch(host->port(), id);
    EXPECT_EQ(now.at("error"), rescued.at("error"));
    EXPECT_EQ(now.at("endedAt"), rescued.at("endedAt"));
  }
  // Once the late host's agent has ended, the store still holds the rescue.
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const json::value hosts = body_json(HttpClient(late.port()).get("/hosts"));
        for (const json::value& host : hosts.at("hosts").as_array()) {
          if (host.at("name").as_string() == executing) return host.at("activeRuns") == 0;
        }
        return false;
      },
      30s, 50ms));
  EXPECT_EQ(fetch(rescuer.port(), id).at("error"), rescued.at("error"));
}

}  // namespace
}  // namespace nightshift::hosts_test
