// Turns what the store writer committed into events on the bus, in commit
// order: `started` for a run's first record, `updated` for later ones,
// `finished` for its terminal record (and then the run retires from the live
// table), log batches, and `deleted` with the record the run had. So nothing
// is announced before it is durable. Which run event a record makes is the
// host's one RunAnnouncements' to say (other paths announce runs too).
//
// Thread safety: on_committed runs on the store writer's publisher thread
// only; remember_deleted is [thread-safe].
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/event_bus.hpp"
#include "runs/live_run.hpp"
#include "runs/run_announcements.hpp"
#include "store/run_store.hpp"

namespace nightshift {

class CommitEvents {
 public:
  // Shows a committed progress update on its live run; with `want_record`,
  // returns the run as it is now shown, to announce (none when it is no
  // longer live).
  using Progressed =
      std::function<std::optional<Run>(const UpdateProgress& update, bool want_record)>;

  // On the publisher thread: `committed` with every run record once it is
  // committed, `progressed` with every progress update once it is
  // committed, `retire` with each run's final record once it is announced.
  CommitEvents(EventBus& bus, RunAnnouncements& announcements, LogBudget& budget,
               std::function<void(const Run&)> committed, Progressed progressed,
               std::function<void(const Run&)> retire);

  // The record a run had, so that `deleted` can carry it; call before the
  // DeleteRun is submitted.
  void remember_deleted(const Run& record);

  void on_committed(const std::vector<WriteOp>& ops);

 private:
  EventBus& bus_;
  RunAnnouncements& announcements_;
  LogBudget& budget_;
  const std::function<void(const Run&)> committed_;
  const Progressed progressed_;
  const std::function<void(const Run&)> retire_;
  std::mutex deleted_mutex_;  // guards deleted_
  std::unordered_map<std::string, Run> deleted_;
};

}  // namespace nightshift
