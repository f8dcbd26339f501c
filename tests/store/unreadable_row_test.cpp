// A stored row that cannot be read in full (edited by hand, damaged, or
// written by a newer version) is one bad entry: the lists, the run itself and
// its logs still answer, and the run says what could not be read.
#include <gtest/gtest.h>

#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

TEST(UnreadableRow, IsOneEntrySayingWhatWasWrongNotAFailedList) {
  StoreFixture fixture;
  const nightshift::Run good =
      finished_run("installed:echo", RunStatus::completed, at_ms(5'000'000));
  nightshift::Run bad = finished_run("installed:echo", RunStatus::failed, at_ms(6'000'000));
  bad.error = "boom";
  fixture.put(good);
  fixture.put(bad);
  {
    SQLite::Database db(fixture.path().string(), SQLite::OPEN_READWRITE);
    db.exec("PRAGMA ignore_check_constraints = ON");  // as a hand edit or damage could
    SQLite::Statement damage(db,
                             "UPDATE runs SET params = '{not json', result = '[1,', "
                             "agent_source = 'martian' WHERE instance_id = ?");
    damage.bind(1, bad.instance_id);
    ASSERT_EQ(damage.exec(), 1);
  }

  HistoryQuery query;
  query.limit = 10;
  const HistoryPage page = fixture.store().list_history(query);
  ASSERT_EQ(page.runs.size(), 2u);
  const auto read = fixture.store().get_run(bad.instance_id);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status, RunStatus::failed);
  EXPECT_TRUE(read->params.empty());
  EXPECT_TRUE(read->result.is_null());
  ASSERT_TRUE(read->error.has_value());
  EXPECT_NE(read->error->find("could not be read in full"), std::string::npos) << *read->error;
  EXPECT_NE(read->error->find("params"), std::string::npos) << *read->error;
  EXPECT_NE(read->error->find("agentSource"), std::string::npos) << *read->error;
  EXPECT_NE(read->error->find("boom"), std::string::npos) << *read->error;

  const auto other = fixture.store().get_run(good.instance_id);
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->error.has_value());

  // Finished, so it can be deleted like any other finished run.
  fixture.store().apply({DeleteRun{bad.instance_id}});
  EXPECT_FALSE(fixture.store().get_run(bad.instance_id).has_value());
}

TEST(UnreadableRow, AnUnknownStatusReadsAsFailedAndFinished) {
  StoreFixture fixture;
  const nightshift::Run run =
      finished_run("installed:echo", RunStatus::completed, at_ms(5'000'000));
  fixture.put(run);
  {
    SQLite::Database db(fixture.path().string(), SQLite::OPEN_READWRITE);
    db.exec("PRAGMA ignore_check_constraints = ON");  // as a hand edit or damage could
    SQLite::Statement damage(
        db, "UPDATE runs SET status = 'exploded', ended_at = NULL WHERE instance_id = ?");
    damage.bind(1, run.instance_id);
    ASSERT_EQ(damage.exec(), 1);
  }
  const auto read = fixture.store().get_run(run.instance_id);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status, RunStatus::failed);
  ASSERT_TRUE(read->ended_at.has_value());
  ASSERT_TRUE(read->error.has_value());
  EXPECT_NE(read->error->find("status"), std::string::npos) << *read->error;
  EXPECT_NE(read->error->find("exploded"), std::string::npos) << *read->error;
}

TEST(UnreadableRow, ALogEntryWithAnUnknownLevelIsShownAsAWarningNotAFailedPage) {
  StoreFixture fixture;
  nightshift::Run run = queued_run();
  fixture.put(run);
  fixture.store().apply({AppendLogs{run.instance_id, log_entries(1, 3)}});
  {
    SQLite::Database db(fixture.path().string(), SQLite::OPEN_READWRITE);
    db.exec("UPDATE logs SET level = 42 WHERE seq = 2");
  }
  const auto entries = fixture.store().read_logs(run.instance_id, 0, 10);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[1].level, LogLevel::warn);
  EXPECT_NE(entries[1].message.find("unknown level 42"), std::string::npos) << entries[1].message;
  EXPECT_NE(entries[1].message.find("line 2"), std::string::npos) << entries[1].message;
}

}  // namespace
}  // namespace nightshift::testing
