// What a store shared by several hosts offers besides Store: the queue that
// every host claims runs from, the notifications that wake hosts and carry
// other hosts' changes, and requests sent to the host executing a run (stop,
// message). The PostgreSQL store implements it; the SQLite store has none.
//
// Thread safety: every member is [thread-safe] unless it says otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/run.hpp"

namespace nightshift {

// A change another host made, as a notification announces it.
struct StoreChange {
  enum class Kind {
    run,      // the run's record changed: re-read it
    logs,     // the run's log grew to `seq`
    deleted,  // the run is gone
    queued,   // a run joined the queue: a host with a free slot may claim it
    request,  // a request for this host is waiting
    resync,   // notifications may have been missed (reconnected): re-read everything
  };
  Kind kind = Kind::run;
  std::string instance_id;
  std::uint64_t seq = 0;
};

// What became of a message sent to a queued run nobody has claimed.
struct UnclaimedMessage {
  enum class Outcome { recorded, full, not_unclaimed };
  Outcome outcome = Outcome::not_unclaimed;
  std::uint64_t seq = 0;  // recorded: the entry's log seq
};

// A request to the host executing a run.
struct RunRequest {
  enum class Kind { stop, message };
  std::int64_t id = 0;
  Kind kind = Kind::stop;
  std::string instance_id;
  std::string text;  // the message
};

// How the executing host answered.
struct RequestAnswer {
  std::uint64_t seq = 0;  // a message's log seq
  std::string error;      // empty: done; else an error code and message, "code: message"
};

class SharedQueue {
 public:
  virtual ~SharedQueue() = default;

  // The oldest queued runs nobody has claimed, at most `max`, now this
  // host's (their `host` set, their fence bumped; the store writes them with
  // that fence from now on). Each run is claimed by exactly one host. A run
  // whose agent has a cap (limits.maxConcurrent, recorded when it was
  // admitted) is claimed only while fewer than the cap of that agent's runs
  // are claimed and active on all hosts together; runs behind it of other
  // agents are not held up.
  virtual std::vector<Run> claim_queued(std::size_t max) = 0;
  // Queued runs that this host admitted and nobody has claimed yet.
  virtual std::size_t count_queued_admitted_here() const = 0;
  // Cancels a queued run nobody has claimed; nullopt when it was claimed,
  // has ended, or is unknown.
  virtual std::optional<Run> cancel_unclaimed(const std::string& instance_id, Timestamp now) = 0;
  // Several runs at once (those that exist), for re-reading changes.
  virtual std::vector<Run> get_runs(const std::vector<std::string>& instance_ids) const = 0;
  // The last records of deleted runs (those deleted lately enough that the
  // store still keeps them), for the `deleted` events of other hosts' deletes.
  virtual std::vector<Run> get_deleted_runs(const std::vector<std::string>& instance_ids) const = 0;
  // Records a message (a log entry, source user) for a queued run nobody has
  // claimed yet: the host that claims it hands it to the agent. Refused
  // (`full`) when `max_waiting` messages wait for it already;
  // `not_unclaimed` when the run was claimed, has ended, or is unknown.
  virtual UnclaimedMessage record_unclaimed_message(const std::string& instance_id,
                                                    const std::string& text, Timestamp now,
                                                    std::size_t max_waiting) = 0;

  // Changes of other hosts, waiting at most `timeout` for the first. Called
  // from one thread only (the host's link thread). Throws StoreUnavailable
  // while the store cannot be reached.
  // Returns early, perhaps empty, when `wake_fd` (an eventfd, or -1) becomes readable.
  virtual std::vector<StoreChange> wait_for_changes(std::chrono::milliseconds timeout,
                                                    int wake_fd) = 0;

  // Sends a request to the host executing the run; returns its id.
  virtual std::int64_t send_request(const std::string& host, const RunRequest& request) = 0;
  // The answer to a request this host sent, once there is one (and then
  // forgets the request).
  virtual std::optional<RequestAnswer> take_answer(std::int64_t request_id) = 0;
  // Requests waiting for this host.
  virtual std::vector<RunRequest> take_requests() = 0;
  virtual void answer_request(std::int64_t request_id, const RequestAnswer& answer) = 0;

  const std::string& host_name() const noexcept { return host_name_; }

 protected:
  explicit SharedQueue(std::string host_name) : host_name_(std::move(host_name)) {}

 private:
  std::string host_name_;
};

}  // namespace nightshift
