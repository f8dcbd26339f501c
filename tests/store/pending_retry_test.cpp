// Retries waiting for their time, on either store: a retry whose run is
// already stored is never started a second time.
#include <gtest/gtest.h>

#include "store/automation_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

std::unique_ptr<AutomationStore> automation_store(StoreFixture& fixture) {
  return open_test_automation_store(fixture.path(), fixture.database());
}

PendingRetry waiting_retry(const std::string& failed_run_id) {
  PendingRetry retry;
  retry.failed_run_id = failed_run_id;
  retry.due_at = now_ms();
  retry.attempt = 2;
  retry.agent_id = "installed:echo";
  retry.task = "again";
  retry.params = boost::json::object{{"n", 1}};
  return retry;
}

// The host stopped after the retry's run was committed and before the
// retry was finished: taking the retry again finds that run, and finishes
// the retry instead of handing it out to be started a second time.
TEST(PendingRetryStore, ARetryWhoseRunIsStoredIsFinishedNotTakenAgain) {
  StoreFixture fixture;
  const auto automation = automation_store(fixture);
  const std::string started_id = generate_uuid();
  const std::string waiting_id = generate_uuid();
  automation->add_pending_retry(waiting_retry(started_id));
  automation->add_pending_retry(waiting_retry(waiting_id));
  ASSERT_TRUE(automation->take_pending_retry(started_id));

  nightshift::Run retry = queued_run();
  retry.attempt = 2;
  retry.retry_of = started_id;
  fixture.put(retry);

  EXPECT_FALSE(automation->take_pending_retry(started_id));
  const std::vector<PendingRetry> still = automation->list_pending_retries();
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still[0].failed_run_id, waiting_id);
  // The same failure seen again (a late event) does not bring it back.
  automation->add_pending_retry(waiting_retry(started_id));
  EXPECT_FALSE(automation->take_pending_retry(started_id));
  // The other retry is untouched.
  const auto taken = automation->take_pending_retry(waiting_id);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->failed_run_id, waiting_id);
  EXPECT_EQ(taken->attempt, 2u);
  EXPECT_EQ(taken->agent_id, "installed:echo");
  EXPECT_EQ(taken->task, std::optional<std::string>("again"));
  EXPECT_EQ(taken->params, (boost::json::object{{"n", 1}}));
}

}  // namespace
}  // namespace nightshift::testing
