// Retries (limits.retries, retryBackoffSeconds), re-runs, and per-agent caps
// (limits.maxConcurrent) on a real Host with real plugins and SQLite.
#include <SQLiteCpp/Database.h>

#include <atomic>
#include <set>

#include "automation_fixture.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using testing::AutomationHost;
using testing::wait_until;

TEST(RetriesTest, FailedRunIsRetriedAfterADoublingBackoffUntilItsRetriesAreUsed) {
  AutomationHost fixture;
  fixture.write_remix("flaky",
                      "base: installed:runs-fail\nlimits:\n  retries: 2\n"
                      "  retryBackoffSeconds: 0.2");
  fixture.open();
  const nightshift::Run first = fixture.finish(fixture.start("remix:flaky", {}, "try"));
  ASSERT_EQ(first.status, RunStatus::failed);
  EXPECT_EQ(first.attempt, 1u);
  EXPECT_FALSE(first.retry_of);

  const auto second = fixture.wait_for_run(
      [&](const nightshift::Run& r) { return r.retry_of == first.instance_id; });
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt, 2u);
  EXPECT_EQ(second->task, std::optional<std::string>("try"));
  EXPECT_EQ(second->agent_id, "remix:flaky");
  EXPECT_EQ(second->params, first.params);
  // Created when due: at least the first backoff after the failure.
  EXPECT_GE(second->created_at - *first.ended_at, 200ms);
  const nightshift::Run second_done = fixture.finish(*second);

  const auto third = fixture.wait_for_run(
      [&](const nightshift::Run& r) { return r.retry_of == second->instance_id; });
  ASSERT_TRUE(third);
  EXPECT_EQ(third->attempt, 3u);
  EXPECT_GE(third->created_at - *second_done.ended_at, 400ms) << "the wait doubles";
  const nightshift::Run third_done = fixture.finish(*third);
  EXPECT_EQ(third_done.status, RunStatus::failed);

  // Two retries were allowed: nothing retries the third attempt, within
  // well past the backoff it would have had (0.8 s).
  EXPECT_FALSE(wait_until(
      [&] {
        return fixture
            .find_run([&](const nightshift::Run& r) { return r.retry_of == third->instance_id; })
            .has_value();
      },
      2s, 20ms));
  EXPECT_EQ(fixture.automation().stats().retries_started, 2u);
}

TEST(RetriesTest, CancelledRunIsNeverRetried) {
  AutomationHost fixture;
  fixture.write_remix("patient",
                      "base: installed:sleep\nparams:\n  seconds: 30\nlimits:\n"
                      "  retries: 3\n  retryBackoffSeconds: 0.05");
  fixture.write_remix("flaky",
                      "base: installed:runs-fail\nlimits:\n  retries: 1\n"
                      "  retryBackoffSeconds: 0.05");
  fixture.open();
  const nightshift::Run run = fixture.start("remix:patient");
  ASSERT_TRUE(wait_until(
      [&] { return fixture.runs().get(run.instance_id)->status == RunStatus::running; }));
  fixture.runs().stop(run.instance_id);
  const nightshift::Run cancelled = fixture.finish(run);
  ASSERT_EQ(cancelled.status, RunStatus::cancelled);
  // A failure after it is retried: the retrier has handled the cancelled
  // run's event by then (events are handled in order).
  const nightshift::Run failed = fixture.finish(fixture.start("remix:flaky"));
  ASSERT_EQ(failed.status, RunStatus::failed);
  ASSERT_TRUE(fixture.wait_for_run(
      [&](const nightshift::Run& r) { return r.retry_of == failed.instance_id; }));
  EXPECT_FALSE(fixture.find_run(
      [&](const nightshift::Run& r) { return r.retry_of == cancelled.instance_id; }));
  EXPECT_EQ(fixture.automation().retries().retries_waiting(), 0u);
}

TEST(RetriesTest, ARetryWaitingForItsTimeSurvivesARestart) {
  AutomationHost fixture;
  fixture.write_remix("slow-retry",
                      "base: installed:runs-fail\nlimits:\n  retries: 1\n"
                      "  retryBackoffSeconds: 1.5");
  fixture.open();
  const nightshift::Run failed = fixture.finish(fixture.start("remix:slow-retry", {}, "again"));
  ASSERT_EQ(failed.status, RunStatus::failed);
  ASSERT_TRUE(wait_until([&] { return fixture.automation().retries().retries_waiting() == 1; }));
  fixture.close();  // the host stops while the retry waits
  {
    SQLite::Database db(fixture.database().string());
    EXPECT_EQ(db.execAndGet("SELECT count(*) FROM pending_retries").getInt(), 1);
  }
  fixture.open();
  const auto retry = fixture.wait_for_run(
      [&](const nightshift::Run& r) { return r.retry_of == failed.instance_id; });
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->attempt, 2u);
  EXPECT_EQ(retry->task, std::optional<std::string>("again"));
  EXPECT_GE(retry->created_at - *failed.ended_at, 1500ms);
  fixture.finish(*retry);
  SQLite::Database db(fixture.database().string());
  EXPECT_TRUE(wait_until(
      [&] { return db.execAndGet("SELECT count(*) FROM pending_retries").getInt() == 0; }));
}

// A run left active by a host that stopped without shutting down (a crash):
// the next start fails it as interrupted, and it is retried as any failed
// run is, when its agent asks for retries.
TEST(RetriesTest, ARunLeftActiveByAHostThatStoppedIsRetriedAtTheNextStart) {
  AutomationHost fixture;
  fixture.write_remix("flaky",
                      "base: installed:runs-fail\nlimits:\n  retries: 1\n"
                      "  retryBackoffSeconds: 0.05");
  fixture.write_remix("steady", "base: installed:runs-fail");  // no retries
  fixture.open();  // makes the database
  fixture.close();
  const auto left_running = [](const std::string& name) {
    nightshift::Run run;
    run.instance_id = generate_uuid();
    run.thread_id = generate_uuid();
    run.agent_id = "remix:" + name;
    run.agent_name = name;
    run.agent_source = AgentSource::remix;
    run.task = "left " + name;
    run.status = RunStatus::running;
    run.created_at = now_ms() - 2s;
    run.started_at = now_ms() - 1s;
    return run;
  };
  const nightshift::Run flaky = left_running("flaky");
  const nightshift::Run steady = left_running("steady");
  {
    SqliteStore store(StoreOptions{fixture.database(), 1});
    store.apply({UpsertRun{flaky}, UpsertRun{steady}});
  }

  fixture.open();
  for (const nightshift::Run& run : {flaky, steady}) {
    const auto marked = fixture.runs().get(run.instance_id);
    ASSERT_TRUE(marked);
    EXPECT_EQ(marked->status, RunStatus::failed);
    EXPECT_NE(marked->error.value_or("").find("interrupted"), std::string::npos);
  }
  const auto retry = fixture.wait_for_run(
      [&](const nightshift::Run& r) { return r.retry_of == flaky.instance_id; });
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->attempt, 2u);
  EXPECT_EQ(retry->agent_id, "remix:flaky");
  EXPECT_EQ(retry->task, flaky.task);
  EXPECT_EQ(fixture.finish(*retry).status, RunStatus::failed);
  // The remix without retries is not retried, and the retry (attempt 2 of
  // 1 + 1) is not retried again.
  EXPECT_FALSE(wait_until(
      [&] {
        return fixture
            .find_run([&](const nightshift::Run& r) {
              return r.retry_of == steady.instance_id || r.retry_of == retry->instance_id;
            })
            .has_value();
      },
      1s, 20ms));
  EXPECT_EQ(fixture.automation().stats().retries_started, 1u);
}

TEST(RerunTest, StartsAFinishedRunAgainWithItsTaskAndParams) {
  AutomationHost fixture;
  fixture.open();
  const nightshift::Run done =
      fixture.finish(fixture.start("installed:sleep", {{"seconds", 0}}, "hello"));
  const nightshift::Run again = fixture.automation().rerun(done.instance_id);
  EXPECT_NE(again.instance_id, done.instance_id);
  EXPECT_EQ(again.rerun_of, std::optional<std::string>(done.instance_id));
  EXPECT_EQ(again.attempt, 1u);
  EXPECT_EQ(again.task, done.task);
  EXPECT_EQ(again.params, done.params);
  EXPECT_EQ(fixture.finish(again).status, RunStatus::completed);
  // Stored with the run.
  EXPECT_EQ(fixture.runs().get(again.instance_id)->rerun_of,
            std::optional<std::string>(done.instance_id));
}

TEST(RerunTest, RefusesAnActiveOrUnknownRun) {
  AutomationHost fixture;
  fixture.open();
  const nightshift::Run active = fixture.start("installed:sleep", {{"seconds", 30}});
  try {
    fixture.automation().rerun(active.instance_id);
    FAIL() << "an active run was re-run";
  } catch (const RunError& error) {
    EXPECT_EQ(error.code(), RunError::Code::run_active);
  }
  try {
    fixture.automation().rerun(generate_uuid());
    FAIL() << "an unknown run was re-run";
  } catch (const RunError& error) {
    EXPECT_EQ(error.code(), RunError::Code::run_not_found);
  }
  fixture.runs().stop(active.instance_id);
}

TEST(MaxConcurrentTest, ManyStartsNeverRunMoreThanTheCapAndOtherAgentsAreNotHeldUp) {
  AutomationHost fixture;
  fixture.write_remix("capped",
                      "base: installed:sleep\nparams:\n  seconds: 0.2\nlimits:\n"
                      "  maxConcurrent: 2");
  fixture.open();
  // Counts running runs of the capped agent from the bus, as they change.
  std::mutex mutex;
  std::set<std::string> running;
  std::size_t most = 0;
  auto subscription = fixture.host().bus().subscribe([&](const EventPtr& event) {
    const auto* run_event = std::get_if<RunEvent>(event.get());
    if (run_event == nullptr || run_event->run.agent_id != "remix:capped") return;
    std::lock_guard lock(mutex);
    if (run_event->run.status == RunStatus::running) {
      running.insert(run_event->run.instance_id);
    } else {
      running.erase(run_event->run.instance_id);
    }
    most = std::max(most, running.size());
  });
  std::vector<nightshift::Run> capped;
  for (int i = 0; i < 12; ++i) capped.push_back(fixture.start("remix:capped"));
  // An echo run started behind them all runs at once.
  const nightshift::Run echo = fixture.finish(fixture.start("installed:echo"));
  EXPECT_EQ(echo.status, RunStatus::completed);
  const auto still_waiting =
      std::count_if(capped.begin(), capped.end(), [&](const nightshift::Run& r) {
        return fixture.runs().get(r.instance_id)->status == RunStatus::queued;
      });
  EXPECT_GT(still_waiting, 0) << "the echo run finished after every capped run";
  for (const nightshift::Run& run : capped)
    EXPECT_EQ(fixture.finish(run).status, RunStatus::completed);
  std::lock_guard lock(mutex);
  EXPECT_EQ(most, 2u);
}

}  // namespace
}  // namespace nightshift
