// The run manager against real plugins and a real SQLite store: every state
// transition, every refusal, limits, logs, events and shutdown.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "engine_fixture.hpp"
#include "test_support.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using testing::Engine;
using testing::EventRecorder;
using testing::TempDir;
using testing::wait_until;

class RunManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine = std::make_unique<Engine>(dir.path(), testing::runs_test_agent_dirs());
  }
  void TearDown() override {
    recorder.reset();
    engine.reset();
  }

  static RunManagerOptions default_options() {
    RunManagerOptions options;
    options.stop_grace = 200ms;
    return options;
  }
  void open(RunManagerOptions options = default_options()) {
    engine->open(std::move(options));
    recorder = std::make_unique<EventRecorder>(engine->bus());
  }
  RunManager& manager() { return engine->manager(); }
  Store& store() { return engine->store(); }

  nightshift::Run start(const std::string& agent_id, boost::json::object params = {},
                        std::optional<std::string> task = std::nullopt) {
    return manager().start(StartRequest{agent_id, std::move(task), std::move(params)});
  }
  nightshift::Run finish(const nightshift::Run& run) {
    auto done = manager().wait(run.instance_id, 20s);
    EXPECT_TRUE(done && is_terminal(done->status)) << "run did not end: " << run.agent_id;
    return done.value_or(run);
  }
  bool reaches(const nightshift::Run& run, RunStatus status) {
    return wait_until([&] {
      auto now = manager().get(run.instance_id);
      return now && now->status == status;
    });
  }
  std::vector<LogEntry> all_logs(const std::string& instance_id) {
    std::vector<LogEntry> out;
    std::uint64_t after = 0;
    for (;;) {
      LogPage page = manager().logs(instance_id, after, 1000);
      out.insert(out.end(), page.entries.begin(), page.entries.end());
      if (page.entries.empty()) return out;
      after = page.next_after;
    }
  }
  static RunError::Code error_code_of(const std::function<void()>& action) {
    try {
      action();
    } catch (const RunError& e) {
      return e.code();
    }
    ADD_FAILURE() << "no RunError was thrown";
    return RunError::Code::run_not_found;
  }
  static boost::json::object sleep_for_a_long_time() { return {{"seconds", 60}}; }

  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<EventRecorder> recorder;
};

TEST_F(RunManagerTest, EchoRunIsCommittedBeforeStartReturnsAndCompletesWithLogAndResult) {
  open();
  const nightshift::Run run = start("installed:echo", {}, "line one\nline two");
  EXPECT_EQ(run.status, RunStatus::queued);
  EXPECT_TRUE(is_uuid(run.instance_id));
  EXPECT_TRUE(is_uuid(run.thread_id));
  EXPECT_NE(run.instance_id, run.thread_id);
  EXPECT_EQ(run.agent_id, "installed:echo");
  ASSERT_TRUE(store().get_run(run.instance_id)) << "start() returned before the commit";

  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::completed);
  EXPECT_TRUE(done.started_at && done.ended_at);
  EXPECT_FALSE(done.error);
  ASSERT_TRUE(done.result.is_object());
  EXPECT_EQ(done.result.as_object().at("task"), "line one\nline two");

  const auto stored = store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, RunStatus::completed);
  EXPECT_EQ(stored->result, done.result);

  const auto entries = all_logs(run.instance_id);
  ASSERT_GE(entries.size(), 3u);
  EXPECT_EQ(entries[0].message, "line one");
  EXPECT_EQ(entries[1].message, "line two");
  for (std::size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(entries[i].seq, i + 1);
  EXPECT_EQ(done.log_count, entries.size());
  EXPECT_EQ(stored->log_count, entries.size());
  EXPECT_TRUE(manager().logs(run.instance_id, 0, 5000).complete);

  const auto stats = manager().stats();
  EXPECT_EQ(stats.starts, 1u);
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_GE(stats.log_entries_written, entries.size());
}

TEST_F(RunManagerTest, StartOfUnknownAgentIsRefusedAndRecordsNothing) {
  open();
  try {
    start("installed:no-such-agent");
    FAIL() << "start of an unknown agent succeeded";
  } catch (const CatalogError& e) {
    EXPECT_EQ(e.code(), CatalogError::Code::agent_not_found);
  }
  EXPECT_EQ(store().count_runs(), 0u);
}

// A run whose id its caller chose (a schedule's claimed time, a retry taken
// from a shared store) and that another host recorded already is not run a
// second time: the start is refused, and the recorded run stays as it was.
TEST_F(RunManagerTest, AStartUnderAnIdARecordedRunHasIsRefusedAndChangesNothing) {
  open();
  const nightshift::Run recorded = finish(start("installed:echo", {}, "the run recorded first"));
  StartRequest again;
  again.agent_id = "installed:echo";
  again.task = "the same id, started again";
  again.instance_id = recorded.instance_id;
  try {
    manager().start(again);
    FAIL() << "a second run was started under a recorded run's id";
  } catch (const RunError& e) {
    EXPECT_EQ(e.code(), RunError::Code::store_failed);
    EXPECT_NE(std::string(e.what()).find("is recorded already"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store().count_runs(), 1u);
  const auto stored = store().get_run(recorded.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->task, recorded.task);
  EXPECT_EQ(stored->thread_id, recorded.thread_id);
  EXPECT_EQ(stored->status, RunStatus::completed);
  EXPECT_TRUE(manager().active().empty());
  // The host goes on starting runs.
  EXPECT_EQ(finish(start("installed:echo", {}, "next")).status, RunStatus::completed);
}

TEST_F(RunManagerTest, QueuedRunsStartInFifoOrderAndAFullQueueRefusesStarts) {
  auto options = default_options();
  options.max_concurrent = 1;
  options.max_queued = 2;
  open(options);
  const nightshift::Run first = start("installed:sleep", sleep_for_a_long_time());
  ASSERT_TRUE(reaches(first, RunStatus::running));
  const nightshift::Run second = start("installed:echo", {}, "second");
  const nightshift::Run third = start("installed:echo", {}, "third");
  EXPECT_EQ(manager().get(second.instance_id)->status, RunStatus::queued);
  EXPECT_EQ(manager().get(third.instance_id)->status, RunStatus::queued);
  EXPECT_EQ(error_code_of([&] { start("installed:echo"); }), RunError::Code::at_capacity);
  const auto stats = manager().stats();
  EXPECT_EQ(stats.queued, 2u);
  EXPECT_EQ(stats.running, 1u);

  manager().stop(first.instance_id);
  EXPECT_EQ(finish(first).status, RunStatus::cancelled);
  EXPECT_EQ(finish(second).status, RunStatus::completed);
  EXPECT_EQ(finish(third).status, RunStatus::completed);

  // The order in which they began running, as the bus told it.
  std::vector<std::string> began;
  for (const EventPtr& event : recorder->all()) {
    const auto* run_event = std::get_if<RunEvent>(event.get());
    if (run_event && run_event->run.status == RunStatus::running) {
      began.push_back(run_event->run.instance_id);
    }
  }
  const std::vector<std::string> expected{first.instance_id, second.instance_id, third.instance_id};
  EXPECT_EQ(began, expected);
  // A slot is free again: starts are accepted.
  EXPECT_EQ(finish(start("installed:echo")).status, RunStatus::completed);
}

TEST_F(RunManagerTest, StopOfAQueuedRunCancelsItAtOnce) {
  auto options = default_options();
  options.max_concurrent = 1;
  open(options);
  const nightshift::Run busy = start("installed:sleep", sleep_for_a_long_time());
  ASSERT_TRUE(reaches(busy, RunStatus::running));
  const nightshift::Run waiting = start("installed:echo");

  const nightshift::Run stopped = manager().stop(waiting.instance_id);
  EXPECT_EQ(stopped.status, RunStatus::cancelled);
  EXPECT_FALSE(stopped.started_at);
  const nightshift::Run done = finish(waiting);
  EXPECT_EQ(done.status, RunStatus::cancelled);
  EXPECT_EQ(store().get_run(waiting.instance_id)->status, RunStatus::cancelled);
  EXPECT_EQ(manager().get(busy.instance_id)->status, RunStatus::running);
  EXPECT_TRUE(all_logs(waiting.instance_id).empty());
  manager().stop(busy.instance_id);
  EXPECT_EQ(finish(busy).status, RunStatus::cancelled);
}

TEST_F(RunManagerTest, StopOfARunningRunGoesThroughStoppingToCancelled) {
  open();
  const nightshift::Run run = start("installed:sleep", sleep_for_a_long_time());
  ASSERT_TRUE(reaches(run, RunStatus::running));
  const nightshift::Run stopping = manager().stop(run.instance_id);
  EXPECT_TRUE(stopping.status == RunStatus::stopping || stopping.status == RunStatus::cancelled);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::cancelled);
  EXPECT_FALSE(done.error);

  std::vector<RunStatus> statuses;
  for (const EventPtr& event : recorder->of_run(run.instance_id)) {
    if (const auto* run_event = std::get_if<RunEvent>(event.get())) {
      if (statuses.empty() || statuses.back() != run_event->run.status) {
        statuses.push_back(run_event->run.status);
      }
    }
  }
  const std::vector<RunStatus> expected{RunStatus::queued, RunStatus::running, RunStatus::stopping,
                                        RunStatus::cancelled};
  EXPECT_EQ(statuses, expected);
  EXPECT_EQ(manager().stats().stops, 1u);
}

TEST_F(RunManagerTest, RunThatIgnoresTheStopStaysStoppingAndItsErrorSaysSoAfterTheGrace) {
  open();  // stop_grace 200 ms
  const nightshift::Run run = start("installed:runs-stubborn", {{"seconds", 2}});
  ASSERT_TRUE(reaches(run, RunStatus::running));
  EXPECT_EQ(manager().stop(run.instance_id).status, RunStatus::stopping);
  ASSERT_TRUE(wait_until([&] { return manager().get(run.instance_id)->error.has_value(); }));
  const nightshift::Run late = *manager().get(run.instance_id);
  EXPECT_EQ(late.status, RunStatus::stopping);
  EXPECT_EQ(*late.error,
            "did not stop within 0.2 s of the stop request; its thread is still running");
  ASSERT_TRUE(wait_until([&] {
    auto stored = store().get_run(run.instance_id);
    return stored && stored->error == late.error;
  }));
  // When it finally returns, it ends cancelled.
  EXPECT_EQ(finish(run).status, RunStatus::cancelled);
}

TEST_F(RunManagerTest, StopOfAFinishedOrUnknownRunIsRefused) {
  open();
  const nightshift::Run run = finish(start("installed:echo"));
  EXPECT_EQ(error_code_of([&] { manager().stop(run.instance_id); }),
            RunError::Code::run_not_active);
  EXPECT_EQ(error_code_of([&] { manager().stop(generate_uuid()); }), RunError::Code::run_not_found);
}

TEST_F(RunManagerTest, RemoveRefusesAnActiveRunAndDeletesAFinishedOneWithItsLog) {
  open();
  const nightshift::Run active = start("installed:sleep", sleep_for_a_long_time());
  EXPECT_EQ(error_code_of([&] { manager().remove(active.instance_id); }),
            RunError::Code::run_active);
  manager().stop(active.instance_id);
  finish(active);

  const nightshift::Run done = finish(start("installed:echo", {}, "to be deleted"));
  ASSERT_FALSE(all_logs(done.instance_id).empty());
  manager().remove(done.instance_id);
  EXPECT_FALSE(manager().get(done.instance_id));
  EXPECT_FALSE(store().get_run(done.instance_id));
  EXPECT_TRUE(store().read_logs(done.instance_id, 0, 10).empty());
  EXPECT_EQ(error_code_of([&] { manager().logs(done.instance_id, 0, 10); }),
            RunError::Code::run_not_found);
  EXPECT_EQ(error_code_of([&] { manager().remove(done.instance_id); }),
            RunError::Code::run_not_found);
  ASSERT_TRUE(wait_until([&] {
    for (const EventPtr& event : recorder->of_run(done.instance_id)) {
      const auto* run_event = std::get_if<RunEvent>(event.get());
      if (run_event && run_event->kind == RunEventKind::deleted) return true;
    }
    return false;
  }));
}

TEST_F(RunManagerTest, RemixTimeLimitFailsTheRunAsTimedOut) {
  testing::write_file(engine->workspace / ".nightshift" / "remix" / "short-nap.md",
                      "---\n"
                      "base: installed:sleep\n"
                      "params:\n"
                      "  seconds: 60\n"
                      "limits:\n"
                      "  timeoutSeconds: 0.3\n"
                      "---\n"
                      "Sleep, but not for long.\n");
  auto options = default_options();
  options.default_timeout = 60s;  // the remix's limit wins
  open(options);
  const nightshift::Run done = finish(start("remix:short-nap"));
  EXPECT_EQ(done.status, RunStatus::failed);
  EXPECT_EQ(done.error, std::optional<std::string>("timed out after 0.3 s"));
  EXPECT_EQ(store().get_run(done.instance_id)->error, done.error);
}

TEST_F(RunManagerTest, HostDefaultTimeLimitFailsTheRunAsTimedOut) {
  auto options = default_options();
  options.default_timeout = 250ms;
  open(options);
  const nightshift::Run done = finish(start("installed:sleep", sleep_for_a_long_time()));
  EXPECT_EQ(done.status, RunStatus::failed);
  EXPECT_EQ(done.error, std::optional<std::string>("timed out after 0.25 s"));
}

TEST_F(RunManagerTest, AgentExceptionFailsTheRunWithItsMessage) {
  open();
  const nightshift::Run done =
      finish(start("installed:runs-throw", {{"message", "the disk is on fire"}}));
  EXPECT_EQ(done.status, RunStatus::failed);
  EXPECT_EQ(done.error, std::optional<std::string>("the disk is on fire"));
  const auto entries = all_logs(done.instance_id);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message, "about to throw");
  EXPECT_EQ(manager().stats().failed, 1u);
}

TEST_F(RunManagerTest, FailureReportedThroughSetErrorFailsTheRunWithThatMessage) {
  open();
  const nightshift::Run with_message = finish(start("installed:runs-fail", {{"mode", "error"}}));
  EXPECT_EQ(with_message.status, RunStatus::failed);
  EXPECT_EQ(with_message.error,
            std::optional<std::string>("runs-fail: reported through set_error"));

  const nightshift::Run silent = finish(start("installed:runs-fail", {{"mode", "silent"}}));
  EXPECT_EQ(silent.status, RunStatus::failed);
  EXPECT_EQ(silent.error, std::optional<std::string>("the agent failed without saying why"));

  const nightshift::Run bad_result = finish(start("installed:runs-fail", {{"mode", "bad-result"}}));
  EXPECT_EQ(bad_result.error, std::optional<std::string>("runs-fail: the host refused the result"));
  EXPECT_TRUE(bad_result.result.is_null());
}

TEST_F(RunManagerTest, LogCapDropsTheRestAndAddsOneFinalEntrySayingHowMany) {
  auto options = default_options();
  options.log_max_entries = 100;
  open(options);
  const nightshift::Run done =
      finish(start("installed:runs-flood", {{"count", 250}, {"size", 20}}));
  EXPECT_EQ(done.status, RunStatus::completed);
  EXPECT_EQ(done.log_count, 101u);
  const auto entries = all_logs(done.instance_id);
  ASSERT_EQ(entries.size(), 101u);
  for (std::size_t i = 0; i < entries.size(); ++i) ASSERT_EQ(entries[i].seq, i + 1);
  EXPECT_EQ(entries[99].message.rfind("entry 100 ", 0), 0u);
  EXPECT_EQ(entries[100].level, LogLevel::warn);
  EXPECT_NE(entries[100].message.find("dropped 150 entries (3000 bytes)"), std::string::npos)
      << entries[100].message;
  EXPECT_GE(manager().stats().log_entries_dropped, 150u);
}

TEST_F(RunManagerTest, LogByteCapCountsBytesAndDropsTheRest) {
  auto options = default_options();
  options.log_max_bytes = 1000;
  open(options);
  const nightshift::Run done =
      finish(start("installed:runs-flood", {{"count", 50}, {"size", 100}}));
  const auto entries = all_logs(done.instance_id);
  ASSERT_EQ(entries.size(), 11u);
  EXPECT_NE(entries.back().message.find("dropped 40 entries (4000 bytes)"), std::string::npos)
      << entries.back().message;
}

TEST_F(RunManagerTest, EventsOfOneRunComeInOrderStartedUpdatesLogsFinished) {
  open();
  const nightshift::Run done = finish(start("installed:runs-ticker", {{"updates", 150}}));
  ASSERT_EQ(done.status, RunStatus::completed);
  const auto events = recorder->of_run(done.instance_id);
  ASSERT_GE(events.size(), 3u);

  const auto& first = std::get<RunEvent>(*events.front());
  EXPECT_EQ(first.kind, RunEventKind::started);
  EXPECT_EQ(first.run.status, RunStatus::queued);
  const auto& last = std::get<RunEvent>(*events.back());
  EXPECT_EQ(last.kind, RunEventKind::finished);
  EXPECT_EQ(last.run.status, RunStatus::completed);

  std::uint64_t next_seq = 1;
  for (std::size_t i = 1; i + 1 < events.size(); ++i) {
    if (const auto* run_event = std::get_if<RunEvent>(events[i].get())) {
      EXPECT_EQ(run_event->kind, RunEventKind::updated);
      EXPECT_TRUE(is_active(run_event->run.status));
    } else {
      for (const LogEntry& entry : std::get<LogEvent>(*events[i]).entries) {
        EXPECT_EQ(entry.seq, next_seq++);
      }
    }
  }
  EXPECT_EQ(next_seq - 1, done.log_count);
  EXPECT_EQ(done.log_count, 3u);
}

TEST_F(RunManagerTest, ProgressIsClampedNaNIgnoredAndCoalescedToTenUpdatesASecond) {
  open();
  const nightshift::Run done = finish(start("installed:runs-ticker", {{"updates", 800}}));
  ASSERT_EQ(done.status, RunStatus::completed);
  EXPECT_EQ(done.progress, std::optional<double>(1.0));

  std::size_t progress_updates = 0;
  for (const EventPtr& event : recorder->of_run(done.instance_id)) {
    const auto* run_event = std::get_if<RunEvent>(event.get());
    if (!run_event || run_event->kind != RunEventKind::updated) continue;
    if (run_event->run.progress) {
      ++progress_updates;
      EXPECT_GE(*run_event->run.progress, 0.0);
      EXPECT_LE(*run_event->run.progress, 1.0);
    }
  }
  const auto ran_ms = (*done.ended_at - *done.started_at).count();
  EXPECT_GE(progress_updates, 2u) << "progress was never published";
  // At most one per 100 ms window, plus the status change that carries one.
  EXPECT_LE(progress_updates, static_cast<std::size_t>(ran_ms / 100 + 2))
      << progress_updates << " updates in " << ran_ms << " ms";
}

// On SQLite a progress report is written as the few fields it changes; the
// store still shows the run's progress while it runs, with its record whole.
TEST_F(RunManagerTest, ProgressReachesTheStoreWhileTheRunRuns) {
  open();
  const nightshift::Run run =
      start("installed:runs-ticker", {{"updates", 100000}, {"intervalUs", 20000}}, "a task");
  ASSERT_TRUE(wait_until([&] {
    const auto stored = store().get_run(run.instance_id);
    return stored && stored->status == RunStatus::running && stored->progress &&
           *stored->progress > 0 && stored->log_count >= 1;
  })) << "the store never showed the running run's progress";
  const auto stored = store().get_run(run.instance_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->task, std::optional<std::string>("a task"));
  EXPECT_EQ(stored->params.at("updates"), 100000);
  EXPECT_EQ(stored->agent_id, "installed:runs-ticker");
  EXPECT_TRUE(stored->started_at);
  manager().stop(run.instance_id);
  EXPECT_EQ(finish(run).status, RunStatus::cancelled);
}

// A result set while the run goes on is in the store with the next progress
// report, as a whole record.
TEST_F(RunManagerTest, AResultSetWhileRunningIsStoredWithTheNextProgressReport) {
  open();
  const nightshift::Run run =
      start("installed:runs-ticker", {{"updates", 100000}, {"intervalUs", 20000}, {"resultAt", 3}});
  ASSERT_TRUE(wait_until([&] {
    const auto stored = store().get_run(run.instance_id);
    return stored && stored->status == RunStatus::running && !stored->result.is_null();
  })) << "the result set while running never reached the store";
  EXPECT_EQ(store().get_run(run.instance_id)->result, (boost::json::object{{"at", 3}}));
  manager().stop(run.instance_id);
  EXPECT_EQ(finish(run).status, RunStatus::cancelled);
}

TEST_F(RunManagerTest, ShutdownCancelsWhatStopsAndRecordsTheRestAsInterrupted) {
  auto options = default_options();
  options.max_concurrent = 2;
  open(options);
  const nightshift::Run sleeper = start("installed:sleep", sleep_for_a_long_time());
  const nightshift::Run stubborn = start("installed:runs-stubborn", {{"seconds", 1.5}});
  const nightshift::Run queued = start("installed:echo");
  ASSERT_TRUE(reaches(sleeper, RunStatus::running));
  ASSERT_TRUE(reaches(stubborn, RunStatus::running));
  EXPECT_EQ(manager().get(queued.instance_id)->status, RunStatus::queued);

  manager().shutdown(300ms);

  EXPECT_EQ(store().get_run(sleeper.instance_id)->status, RunStatus::cancelled);
  EXPECT_EQ(store().get_run(queued.instance_id)->status, RunStatus::cancelled);
  const auto interrupted = store().get_run(stubborn.instance_id);
  EXPECT_EQ(interrupted->status, RunStatus::failed);
  ASSERT_TRUE(interrupted->error);
  EXPECT_EQ(interrupted->error->rfind("interrupted", 0), 0u) << *interrupted->error;
  EXPECT_TRUE(manager().active().empty());
  EXPECT_EQ(error_code_of([&] { start("installed:echo"); }), RunError::Code::shutting_down);
  manager().shutdown(300ms);  // idempotent
}

TEST_F(RunManagerTest, RunsLeftActiveByAPreviousHostAreMarkedInterruptedAtStartUp) {
  nightshift::Run left;
  left.instance_id = generate_uuid();
  left.thread_id = generate_uuid();
  left.agent_id = "installed:sleep";
  left.agent_name = "sleep";
  left.status = RunStatus::running;
  left.created_at = now_ms();
  left.started_at = left.created_at;
  {
    RunStore previous_host(StoreOptions{dir.path() / "runs.db", 1});
    previous_host.apply({UpsertRun{left}});
  }

  open();
  const auto after = manager().get(left.instance_id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, RunStatus::failed);
  EXPECT_EQ(after->error,
            std::optional<std::string>("interrupted: the host stopped while this run was active"));
  EXPECT_TRUE(manager().active().empty());
}

TEST_F(RunManagerTest, LogPagesAreCompleteOnlyOnceTheRunEndedAndEverythingWasRead) {
  open();
  const nightshift::Run done = finish(start("installed:runs-flood", {{"count", 30}}));
  LogPage first = manager().logs(done.instance_id, 0, 10);
  EXPECT_EQ(first.entries.size(), 10u);
  EXPECT_EQ(first.next_after, 10u);
  EXPECT_FALSE(first.complete);
  LogPage rest = manager().logs(done.instance_id, first.next_after, 100);
  EXPECT_EQ(rest.entries.size(), 20u);
  EXPECT_EQ(rest.next_after, 30u);
  EXPECT_TRUE(rest.complete);
  LogPage beyond = manager().logs(done.instance_id, 30, 10);
  EXPECT_TRUE(beyond.entries.empty());
  EXPECT_EQ(beyond.next_after, 30u);
  EXPECT_TRUE(beyond.complete);

  const nightshift::Run running = start("installed:sleep", sleep_for_a_long_time());
  ASSERT_TRUE(reaches(running, RunStatus::running));
  EXPECT_FALSE(manager().logs(running.instance_id, 0, 10).complete);
  manager().stop(running.instance_id);
  finish(running);
}

TEST_F(RunManagerTest, ActiveListsRunningRunsNewestFirstAndHistoryListsFinishedOnes) {
  open();
  const nightshift::Run older = start("installed:sleep", sleep_for_a_long_time());
  ASSERT_TRUE(reaches(older, RunStatus::running));
  ASSERT_TRUE(wait_until([&] { return now_ms() > older.created_at; }));
  const nightshift::Run newer = start("installed:sleep", sleep_for_a_long_time());
  const auto active = manager().active();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].instance_id, newer.instance_id);
  EXPECT_EQ(active[1].instance_id, older.instance_id);
  EXPECT_TRUE(manager().active(std::string("installed:echo")).empty());
  manager().stop(older.instance_id);
  manager().stop(newer.instance_id);
  finish(older);
  finish(newer);
  EXPECT_TRUE(manager().active().empty());
  EXPECT_EQ(manager().history(HistoryQuery{}).runs.size(), 2u);
}

TEST_F(RunManagerTest, ManyShortRunsAtOnceAllCompleteThroughTheQueue) {
  auto options = default_options();
  options.max_concurrent = 3;
  open(options);
  std::vector<nightshift::Run> runs;
  for (int i = 0; i < 60; ++i) runs.push_back(start("installed:echo", {}, std::to_string(i)));
  for (const nightshift::Run& run : runs) EXPECT_EQ(finish(run).status, RunStatus::completed);
  EXPECT_EQ(manager().stats().completed, 60u);
  EXPECT_EQ(store().count_runs(), 60u);
}

}  // namespace
}  // namespace nightshift

namespace nightshift {
namespace {

class RunManagerMessagesTest : public RunManagerTest {};

TEST_F(RunManagerMessagesTest, MessagesAreLoggedAsUserEntriesAndReachTheAgentInOrder) {
  open();
  const nightshift::Run run = start("installed:runs-listener");
  EXPECT_TRUE(run.accepts_messages);
  ASSERT_TRUE(reaches(run, RunStatus::running));
  ASSERT_TRUE(wait_until([&] { return !all_logs(run.instance_id).empty(); }));  // "listening"
  const std::uint64_t first = manager().send_message(run.instance_id, "look at the tests");
  const std::uint64_t second = manager().send_message(run.instance_id, "done");
  EXPECT_GT(second, first);
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::completed);
  ASSERT_TRUE(done.usage);
  EXPECT_EQ(done.usage->prompt_tokens, 20u);
  EXPECT_EQ(done.usage->completion_tokens, 2u);
  EXPECT_EQ(store().get_run(run.instance_id)->usage->prompt_tokens, 20u);

  std::vector<std::pair<LogSource, std::string>> log;
  for (const LogEntry& entry : all_logs(run.instance_id))
    log.emplace_back(entry.source, entry.message);
  const auto at = [&](const std::string& message) {
    return std::find_if(log.begin(), log.end(), [&](const auto& e) { return e.second == message; });
  };
  ASSERT_NE(at("look at the tests"), log.end());
  EXPECT_EQ(at("look at the tests")->first, LogSource::user);
  EXPECT_EQ(at("heard: look at the tests")->first, LogSource::agent);
  EXPECT_EQ(at("done")->first, LogSource::user);
  // Each message is in the log before the agent's reaction to it, and the
  // agent hears them in the order they were sent.
  EXPECT_LT(at("look at the tests"), at("done"));
  EXPECT_LT(at("look at the tests"), at("heard: look at the tests"));
  EXPECT_LT(at("done"), at("heard: done"));
  EXPECT_LT(at("heard: look at the tests"), at("heard: done"));
}

// The same agent code in its own process and in a thread of the host:
// messages reach it and its usage comes back either way.
TEST_F(RunManagerMessagesTest, MessagesAndUsageWorkInBothIsolations) {
  open();
  for (const auto& [agent, isolation] :
       {std::pair{"installed:runs-listener", Isolation::process},
        std::pair{"installed:runs-listener-thread", Isolation::thread}}) {
    const nightshift::Run run = start(agent);
    EXPECT_EQ(run.isolation, isolation) << agent;
    ASSERT_TRUE(reaches(run, RunStatus::running)) << agent;
    manager().send_message(run.instance_id, "hello");
    manager().send_message(run.instance_id, "done");
    const nightshift::Run done = finish(run);
    EXPECT_EQ(done.status, RunStatus::completed) << agent << ": " << done.error.value_or("");
    ASSERT_TRUE(done.usage) << agent;
    EXPECT_EQ(done.usage->prompt_tokens, 20u) << agent;
    EXPECT_EQ(done.usage->completion_tokens, 2u) << agent;
    std::vector<std::string> heard;
    for (const LogEntry& entry : all_logs(run.instance_id)) {
      if (entry.source == LogSource::agent && entry.message.rfind("heard: ", 0) == 0)
        heard.push_back(entry.message);
    }
    EXPECT_EQ(heard, (std::vector<std::string>{"heard: hello", "heard: done"})) << agent;
  }
}

TEST_F(RunManagerMessagesTest, StopWakesAnAgentWaitingForAMessage) {
  open();
  const nightshift::Run run = start("installed:runs-listener");
  ASSERT_TRUE(reaches(run, RunStatus::running));
  manager().stop(run.instance_id);
  EXPECT_EQ(finish(run).status, RunStatus::cancelled);
}

// A message sent while the agent sleeps is recorded at once, does not cut
// the sleep short, and is the first thing the agent hears after it.
TEST_F(RunManagerMessagesTest, AMessageSentDuringSleepForWaitsForTheAgent) {
  open();
  const nightshift::Run run = start("installed:runs-listener", {{"sleepFirstMs", 1500}});
  ASSERT_TRUE(wait_until([&] {
    const auto logs = all_logs(run.instance_id);
    return !logs.empty() && logs.front().message == "sleeping";
  }));
  const std::uint64_t seq = manager().send_message(run.instance_id, "while you slept");
  // Recorded at once, before the agent has heard it.
  ASSERT_TRUE(wait_until([&] {
    for (const LogEntry& entry : all_logs(run.instance_id)) {
      if (entry.seq == seq) return entry.source == LogSource::user;
    }
    return false;
  }));
  manager().send_message(run.instance_id, "done");
  const nightshift::Run done = finish(run);
  EXPECT_EQ(done.status, RunStatus::completed);
  std::vector<std::string> agent_lines;
  for (const LogEntry& entry : all_logs(run.instance_id)) {
    if (entry.source == LogSource::agent) agent_lines.push_back(entry.message);
  }
  EXPECT_EQ(agent_lines, (std::vector<std::string>{"sleeping", "slept", "listening",
                                                   "heard: while you slept", "heard: done"}));
}

// A message sent just as the run ends is either refused (409, the run is no
// longer active) or accepted; an accepted one is in the committed log with
// the seq it was given, whether or not the agent read it. Repeated, so that
// some of the sends land in the window where the agent has returned and the
// run is not yet finished.
TEST_F(RunManagerMessagesTest, AMessageSentAsTheRunEndsIsRefusedOrRecordedNeverLost) {
  open();
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 30; ++i) {
    const nightshift::Run run = start("installed:runs-listener");
    ASSERT_TRUE(reaches(run, RunStatus::running));
    manager().send_message(run.instance_id, "done");
    std::vector<std::uint64_t> recorded;
    for (;;) {
      try {
        recorded.push_back(manager().send_message(run.instance_id, "late " + std::to_string(i)));
        ++accepted;
      } catch (const RunError& error) {
        // The agent reads nothing after "done": once the bound of unread
        // messages is reached, sends are refused until the run has ended.
        if (error.code() == RunError::Code::too_many_messages) {
          std::this_thread::yield();
          continue;
        }
        ASSERT_EQ(error.code(), RunError::Code::run_not_active) << error.what();
        ++refused;
        break;
      }
    }
    const nightshift::Run done = finish(run);
    EXPECT_EQ(done.status, RunStatus::completed);
    const auto logs = all_logs(run.instance_id);
    for (const std::uint64_t seq : recorded) {
      const auto entry =
          std::find_if(logs.begin(), logs.end(), [&](const LogEntry& e) { return e.seq == seq; });
      ASSERT_NE(entry, logs.end()) << "accepted message seq " << seq << " is not in the log";
      EXPECT_EQ(entry->source, LogSource::user);
      EXPECT_EQ(entry->message, "late " + std::to_string(i));
    }
    EXPECT_EQ(done.log_count, logs.back().seq);
  }
  EXPECT_EQ(refused, 30);  // every loop ended with the run no longer active
  std::printf("messages sent as runs ended: %d accepted and recorded, %d refused\n", accepted,
              refused);
}

// Messages the agent has not read are bounded, in its own process as in a
// thread: past the bound the next is refused and not recorded; once the agent
// has read them, as many may be sent again.
TEST_F(RunManagerMessagesTest, UnreadMessagesAreBoundedInBothIsolations) {
  RunManagerOptions options = default_options();
  options.max_unread_messages = 3;
  open(options);
  for (const char* agent : {"installed:runs-listener", "installed:runs-listener-thread"}) {
    // Asleep before it reads anything: every message stays unread.
    const nightshift::Run asleep = start(agent, {{"sleepFirstMs", 600000}});
    ASSERT_TRUE(reaches(asleep, RunStatus::running)) << agent;
    for (int i = 0; i < 3; ++i) manager().send_message(asleep.instance_id, "m");
    // The accepted ones are recorded (the log is committed in batches).
    ASSERT_TRUE(wait_until([&] { return manager().get(asleep.instance_id)->log_count >= 3; }))
        << agent;
    EXPECT_EQ(error_code_of([&] { manager().send_message(asleep.instance_id, "refused"); }),
              RunError::Code::too_many_messages)
        << agent;
    manager().stop(asleep.instance_id);
    finish(asleep);
    int user_entries = 0;
    for (const LogEntry& entry : all_logs(asleep.instance_id)) {
      EXPECT_NE(entry.message, "refused") << agent;
      if (entry.source == LogSource::user) ++user_entries;
    }
    EXPECT_EQ(user_entries, 3) << agent;

    // Reading frees the bound again.
    const nightshift::Run reader = start(agent);
    ASSERT_TRUE(reaches(reader, RunStatus::running)) << agent;
    for (const char* text : {"a", "b", "c"}) manager().send_message(reader.instance_id, text);
    ASSERT_TRUE(wait_until([&] {
      for (const LogEntry& entry : all_logs(reader.instance_id)) {
        if (entry.message == "heard: c") return true;
      }
      return false;
    })) << agent;
    for (const char* text : {"d", "e", "done"}) manager().send_message(reader.instance_id, text);
    EXPECT_EQ(finish(reader).status, RunStatus::completed) << agent;
    std::vector<std::string> heard;
    for (const LogEntry& entry : all_logs(reader.instance_id)) {
      if (entry.message.rfind("heard: ", 0) == 0) heard.push_back(entry.message.substr(7));
    }
    EXPECT_EQ(heard, (std::vector<std::string>{"a", "b", "c", "d", "e", "done"})) << agent;
  }
}

TEST_F(RunManagerMessagesTest, MessagesToAgentsWithoutThemOrToEndedRunsAreRefused) {
  open();
  const nightshift::Run sleeping = start("installed:sleep", sleep_for_a_long_time());
  EXPECT_FALSE(sleeping.accepts_messages);
  EXPECT_EQ(error_code_of([&] { manager().send_message(sleeping.instance_id, "hi"); }),
            RunError::Code::messages_not_supported);
  manager().stop(sleeping.instance_id);
  finish(sleeping);
  EXPECT_EQ(error_code_of([&] { manager().send_message(sleeping.instance_id, "hi"); }),
            RunError::Code::run_not_active);
  EXPECT_EQ(error_code_of([&] { manager().send_message(generate_uuid(), "hi"); }),
            RunError::Code::run_not_found);
}

}  // namespace
}  // namespace nightshift
