// A host's link to the other hosts of a shared store: one thread that waits
// for the store's notifications (with a slow poll as a fallback) and then
//   - claims the oldest queued runs while this host has free slots, and
//     hands them to the run manager to execute;
//   - answers requests other hosts sent for runs executing here (stop,
//     message);
//   - re-reads the runs and log entries other hosts changed and publishes
//     them on this host's bus, so that every host's API and WebSocket show
//     every run live.
// It also sends this host's requests to the host executing a run, and keeps
// the count behind the per-host queue bound (api.md: `--max-queued` is per
// host: the runs this host admitted that no host has claimed yet).
//
// Thread safety: wake, reserve_queue_place, queue_place_settled, request
// and stop are [thread-safe]; the callbacks run on the link thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "events/event_bus.hpp"
#include "runs/run_announcements.hpp"
#include "store/shared_queue.hpp"
#include "store/store.hpp"

namespace nightshift {

class HostLink {
 public:
  struct Callbacks {
    // Runs this host could start now.
    std::function<std::size_t()> free_slots;
    // Claimed runs, now this host's to execute.
    std::function<void(std::vector<Run>)> execute;
    // A request for a run executing here.
    std::function<RequestAnswer(const RunRequest&)> handle_request;
    // True while the run is executing here (its events are this host's own).
    std::function<bool(const std::string&)> is_local;
    // A run executing here that another host took over (rescued it while
    // this host was out of touch): as the store now holds it.
    std::function<void(const Run&)> taken_over;
  };
  struct Options {
    std::chrono::milliseconds poll{2000};  // the fallback when no notification comes
    std::chrono::milliseconds queue_count_refresh{500};
  };

  HostLink(Store& store, SharedQueue& queue, EventBus& bus, RunAnnouncements& announcements,
           Callbacks callbacks, Options options);
  ~HostLink();
  HostLink(const HostLink&) = delete;
  HostLink& operator=(const HostLink&) = delete;

  // Starts the link's thread, which calls the callbacks from then on: call
  // it once whatever they use is in place (the owner's pointer to this link
  // included). Once only.
  void start();
  // Claim now: a slot was freed, or this host queued a run.
  void wake() noexcept;
  // Stops claiming and answering; joins the thread. Idempotent.
  void stop();

  // A place in the shared queue for a run this host admits, within
  // `max_queued` of this host's runs still waiting: `placed(true)`, or
  // `placed(false)` when the queue is full (or the link stopped). Never lets
  // more than `max_queued` wait: it counts the runs the store held unclaimed
  // at its last count, every run committed since, and every reservation
  // whose commit is pending. While that sum has room, `placed` is called at
  // once on the calling thread; at the bound, the link thread counts again
  // in the store (other hosts may have claimed runs since) and then calls
  // it, so a refusal means the queue is full now, not at the last count,
  // and the caller (an I/O thread) never waits on the store.
  void reserve_queue_place(std::size_t max_queued, std::function<void(bool)> placed);
  // The reserved run's commit is done: it waits in the shared queue
  // (`queued`), or its commit failed and it never joined.
  void queue_place_settled(bool queued);

  // Sends a request to `host` and waits for its answer, at most `timeout`;
  // nullopt when none came (the host may be gone; a rescue will end its runs).
  std::optional<RequestAnswer> request(const std::string& host, const RunRequest& request,
                                       std::chrono::milliseconds timeout);

 private:
  void thread_main();
  void pass(const std::vector<StoreChange>& changes, bool poll_tick);
  void claim_while_free();
  void answer_requests();
  void fan_in(const std::vector<StoreChange>& changes, bool resync);
  void refresh_queue_count(bool now);
  void answer_waiting_places();
  bool fits_locked(std::size_t max_queued) const;

  Store& store_;
  SharedQueue& queue_;
  EventBus& bus_;
  RunAnnouncements& announcements_;
  const Callbacks callbacks_;
  const Options options_;
  int wake_fd_ = -1;  // an eventfd: written by wake(), polled by the link thread
  std::atomic<bool> stopping_{false};

  mutable std::mutex count_mutex_;  // guards the counts
  std::size_t queued_here_ = 0;     // unclaimed runs admitted here, at the last count
  std::uint64_t committed_ = 0;     // runs admitted here and committed, since start
  std::uint64_t counted_from_ = 0;  // committed_ when the last count began
  std::size_t pending_ = 0;         // reservations whose commit is pending
  std::chrono::steady_clock::time_point counted_at_{};
  // Reservations waiting for a count (their bound and callback).
  std::vector<std::pair<std::size_t, std::function<void(bool)>>> waiting_places_;

  // The link thread's: the log entries it published of other hosts' runs.
  std::unordered_map<std::string, std::uint64_t> published_seq_;

  std::thread thread_;  // last: started once everything above exists
};

// "code: message" for a RequestAnswer's error, and back.
std::string request_error(std::string_view code, std::string_view message);
std::pair<std::string, std::string> split_request_error(const std::string& error);

}  // namespace nightshift
