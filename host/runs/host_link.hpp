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
// the count behind the per-host queue bound.
//
// Thread safety: wake, reserve_queue_place, release_queue_place, request
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
#include <unordered_set>
#include <vector>

#include "events/event_bus.hpp"
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

  HostLink(Store& store, SharedQueue& queue, EventBus& bus, Callbacks callbacks, Options options);
  ~HostLink();
  HostLink(const HostLink&) = delete;
  HostLink& operator=(const HostLink&) = delete;

  // Claim now: a slot was freed, or this host queued a run.
  void wake() noexcept;
  // Stops claiming and answering; joins the thread. Idempotent.
  void stop();

  // A place in the shared queue for a run this host admits, within
  // `max_queued` of this host's runs still waiting; false when full.
  bool reserve_queue_place(std::size_t max_queued);
  // The run was not queued after all (its commit failed).
  void release_queue_place();

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
  void refresh_queue_count();

  Store& store_;
  SharedQueue& queue_;
  EventBus& bus_;
  const Callbacks callbacks_;
  const Options options_;
  int wake_fd_ = -1;  // an eventfd: written by wake(), polled by the link thread
  std::atomic<bool> stopping_{false};

  std::mutex count_mutex_;          // guards the two counts
  std::size_t queued_here_ = 0;     // as last counted in the store
  std::size_t admitted_since_ = 0;  // admitted here since that count
  std::chrono::steady_clock::time_point counted_at_{};

  // The link thread's: what it published of other hosts' runs.
  std::unordered_set<std::string> announced_;
  std::unordered_map<std::string, std::uint64_t> published_seq_;

  std::thread thread_;  // last: started once everything above exists
};

// "code: message" for a RequestAnswer's error, and back.
std::string request_error(std::string_view code, std::string_view message);
std::pair<std::string, std::string> split_request_error(const std::string& error);

}  // namespace nightshift
