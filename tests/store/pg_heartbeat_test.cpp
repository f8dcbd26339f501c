// A host's heartbeat and rescue pass (PostgreSQL): however long the pass
// itself takes, a host never declares itself dead, so it never fails its own
// runs as interrupted.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store/postgresql/pg_connection.hpp"
#include "store/postgresql/pg_store.hpp"
#include "postgres_environment.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

using namespace std::chrono_literals;

TEST(PostgresHeartbeat, AHostWhosePassOutlastsItsLeaseDoesNotFailItsOwnRuns) {
  const std::string database = test_postgres().create_database();
  StoreLocation location;
  location.uri = test_postgres().conninfo(database);
  location.host_name = "slow-pass";
  location.host_lease = 20ms;
  location.heartbeat_interval = std::chrono::hours(1);  // only the calls below
  PostgresStore store(location);

  nightshift::Run run = queued_run();
  run.status = RunStatus::running;
  run.started_at = run.created_at;
  run.host = location.host_name;
  store.apply({UpsertRun::first(run)});

  EXPECT_EQ(store.heartbeat_and_rescue(), 0u);  // the first beat: no rescue yet
  std::this_thread::sleep_for(2 * location.host_lease);

  // The pass's cleanup statements wait behind another connection's lock for
  // well over a lease, so by the time it looks for dead hosts its own beat
  // is older than the lease.
  pg::Connection locker(location.uri);
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE run_requests IN ACCESS EXCLUSIVE MODE");
  std::size_t rescued = 99;
  std::thread pass([&] { rescued = store.heartbeat_and_rescue(); });
  std::this_thread::sleep_for(10 * location.host_lease);
  locker.exec("COMMIT");
  pass.join();

  EXPECT_EQ(rescued, 0u);
  const auto stored = store.get_run(run.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::running) << stored->error.value_or("");
  const auto hosts = store.list_hosts();
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts.front().active_runs, 1u) << "the host failed its own run";
}

}  // namespace
}  // namespace nightshift::testing
