// The one record of which runs this host has announced to its clients: a
// run's `started` went out, and whether its `finished` did too. Every path
// that publishes run events asks it which event a state makes and publishes
// through it: the store writer's commits (this host's runs), the writers of
// a shared store's queued starts, and the link that relays other hosts'
// changes. So a client hears exactly one `started` per run, before any
// other event of that run, one `finished`, and nothing of the run after it
// but `deleted`.
//
// Bounded: past `capacity` active runs the oldest are forgotten (a run
// forgotten while still active would be announced again; the capacity is
// far above the runs a host keeps active and queued), and finished runs are
// remembered only up to `finished_capacity` (the newest), long enough for a
// late, older state of a run to arrive after its `finished` and be ignored.
//
// Thread safety: [thread-safe]. The decision and the publication happen
// under one mutex, so the events of one run reach the bus in the order they
// were decided, whichever threads decide them. Bus handlers must not call
// back into it (they must not block anyway).
#pragma once

#include <boost/multi_index/hashed_index.hpp>
#include <boost/multi_index/identity.hpp>
#include <boost/multi_index/sequenced_index.hpp>
#include <boost/multi_index_container.hpp>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

#include "events/event_bus.hpp"
#include "model/run_key.hpp"

namespace nightshift {

class RunAnnouncements {
 public:
  explicit RunAnnouncements(EventBus& bus, std::size_t capacity = 100000,
                            std::size_t finished_capacity = 10000);
  RunAnnouncements(const RunAnnouncements&) = delete;
  RunAnnouncements& operator=(const RunAnnouncements&) = delete;

  // What a state of the run means to clients, published (when anyone
  // listens) and recorded: `started` for the first state of a run, then
  // `updated`, `finished` once for its terminal state (a run first heard of
  // in its terminal state gets both, `started` first). Nothing for a state
  // older than what went out (an active state after `finished`), for a
  // second terminal state, and, with `only_if_new`, for any run already
  // announced (a state that may be older than one already published).
  // Returns the kind published, or nullopt.
  std::optional<RunEventKind> announce(const Run& run, bool only_if_new = false);

  // The run was deleted: `deleted` carrying `record`, and the run is forgotten.
  void deleted(const Run& record);

  // Forgets a run (its events may start over).
  void forget(const std::string& instance_id);

  // Runs recorded (for tests).
  std::size_t size() const;

 private:
  // The runs of one kind (active, or finished), each id once, oldest
  // first: found by id, forgotten from the front. One node per run holds
  // its id (a RunKey: a host's ids in 16 bytes, without a heap block), so a
  // run costs one copy of it whichever way it is reached.
  struct ById {};
  using Runs = boost::multi_index_container<
      RunKey,
      boost::multi_index::indexed_by<
          boost::multi_index::sequenced<>,
          boost::multi_index::hashed_unique<boost::multi_index::tag<ById>,
                                            boost::multi_index::identity<RunKey>, RunKey::Hash>>>;

  // Adds the run at the back of `runs`, then forgets the oldest past `bound`.
  static void remember_locked(Runs& runs, RunKey key, std::size_t bound);
  // Forgets the run, active or finished.
  void erase_locked(const RunKey& key);
  void publish_locked(RunEventKind kind, const Run& run);

  EventBus& bus_;
  const std::size_t capacity_;
  const std::size_t finished_capacity_;
  mutable std::mutex mutex_;  // guards the rest, and is held while publishing
  Runs active_;               // `started` went out, `finished` did not
  Runs finished_;             // `finished` went out
};

}  // namespace nightshift
