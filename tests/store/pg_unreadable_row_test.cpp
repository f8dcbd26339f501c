// A stored row of the PostgreSQL store that cannot be read in full (edited
// by hand, damaged, or written by a newer version) is one bad entry, as in
// the SQLite store (unreadable_row_test.cpp): the lists and the run itself
// still answer, and the run says what could not be read.
#include <gtest/gtest.h>

#include "postgres_environment.hpp"
#include "store/shared_queue.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

// Drops the CHECK constraints of `runs`, as a hand edit or an older or
// newer schema could leave the table, then runs `damage`.
void damage_runs(const StoreFixture& fixture, const std::string& damage) {
  test_postgres().execute(
      "DO $$ DECLARE c record; BEGIN "
      "FOR c IN SELECT conname FROM pg_constraint "
      "WHERE conrelid = 'runs'::regclass AND contype = 'c' LOOP "
      "EXECUTE format('ALTER TABLE runs DROP CONSTRAINT %I', c.conname); END LOOP; END $$",
      fixture.database());
  test_postgres().execute(damage, fixture.database());
}

TEST(PostgresUnreadableRow, IsOneEntrySayingWhatWasWrongNotAFailedList) {
  StoreFixture fixture;
  const nightshift::Run good =
      finished_run("installed:echo", RunStatus::completed, at_ms(5'000'000));
  nightshift::Run bad = finished_run("installed:echo", RunStatus::failed, at_ms(6'000'000));
  bad.error = "boom";
  nightshift::Run active = queued_run("installed:echo", at_ms(7'000'000));
  active.status = RunStatus::running;
  active.started_at = at_ms(7'000'100);
  fixture.put(good);
  fixture.put(bad);
  fixture.put(active);
  damage_runs(fixture,
              "UPDATE runs SET status = 'exploded', params = '{not json', result = '[1,', "
              "agent_source = 'martian', ended_at = NULL WHERE instance_id = '" +
                  bad.instance_id +
                  "'; UPDATE runs SET isolation = 'submarine', attempt = 0 "
                  "WHERE instance_id = '" +
                  active.instance_id + "'");

  HistoryQuery query;
  query.limit = 10;
  const HistoryPage page = fixture.store().list_history(query);
  ASSERT_EQ(page.runs.size(), 2u);

  const auto read = fixture.store().get_run(bad.instance_id);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status, RunStatus::failed);
  EXPECT_TRUE(read->ended_at.has_value());
  EXPECT_TRUE(read->params.empty());
  EXPECT_TRUE(read->result.is_null());
  EXPECT_EQ(read->agent_id, "installed:echo");
  ASSERT_TRUE(read->error.has_value());
  const std::string& error = *read->error;
  EXPECT_NE(error.find("could not be read in full"), std::string::npos) << error;
  EXPECT_NE(error.find("status"), std::string::npos) << error;
  EXPECT_NE(error.find("exploded"), std::string::npos) << error;
  EXPECT_NE(error.find("params"), std::string::npos) << error;
  EXPECT_NE(error.find("result"), std::string::npos) << error;
  EXPECT_NE(error.find("agentSource"), std::string::npos) << error;
  EXPECT_NE(error.find("boom"), std::string::npos) << error;

  // The active list answers too, the damaged active run in it.
  const std::vector<nightshift::Run> listed = fixture.store().list_active(std::nullopt);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].instance_id, active.instance_id);
  EXPECT_EQ(listed[0].status, RunStatus::running);
  ASSERT_TRUE(listed[0].error.has_value());
  EXPECT_NE(listed[0].error->find("isolation"), std::string::npos) << *listed[0].error;
  EXPECT_NE(listed[0].error->find("submarine"), std::string::npos) << *listed[0].error;
  EXPECT_NE(listed[0].error->find("attempt"), std::string::npos) << *listed[0].error;

  // So does the shared queue's read of several runs.
  SharedQueue* queue = fixture.store().shared_queue();
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->get_runs({good.instance_id, bad.instance_id, active.instance_id}).size(), 3u);

  const auto other = fixture.store().get_run(good.instance_id);
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->error.has_value());

  // Finished, so it can be deleted like any other finished run.
  fixture.store().apply({DeleteRun{bad.instance_id}});
  EXPECT_FALSE(fixture.store().get_run(bad.instance_id).has_value());
}

}  // namespace
}  // namespace nightshift::testing
