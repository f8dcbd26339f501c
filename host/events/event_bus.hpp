// The in-process event bus: run and log events to whoever listens (the
// WebSocket sessions, metrics, tests).
//
// Thread safety: publish, subscribe and unsubscribe are [thread-safe].
// Handlers run on the publishing thread (the store writer thread for
// everything the run manager publishes), so a handler must not block: it
// copies the shared_ptr into its own bounded queue and returns. Once
// unsubscribe (or the Subscription's destructor) returns, the handler is
// never called again. A handler must not subscribe or unsubscribe itself.
#pragma once

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "model/automation.hpp"
#include "model/run.hpp"

namespace nightshift {

enum class RunEventKind { started, updated, finished, deleted };
std::string_view to_string(RunEventKind kind);

struct RunEvent {
  RunEventKind kind = RunEventKind::updated;
  Run run;
};

struct LogEvent {
  std::string instance_id;
  std::vector<LogEntry> entries;  // ascending seq, none skipped
};

// A schedule was created, changed (also when it starts a run: its nextRunAt
// and lastRunId move) or deleted.
enum class ScheduleEventKind { created, updated, deleted };
std::string_view to_string(ScheduleEventKind kind);

struct ScheduleEvent {
  ScheduleEventKind kind = ScheduleEventKind::updated;
  Schedule schedule;
};

using Event = std::variant<RunEvent, LogEvent, ScheduleEvent>;
using EventPtr = std::shared_ptr<const Event>;

class EventBus {
 public:
  using Handler = std::function<void(const EventPtr&)>;

  // Keeps a handler subscribed for as long as it lives.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(EventBus* bus, std::uint64_t id) : bus_(bus), id_(id) {}
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription();
    void reset();

   private:
    EventBus* bus_ = nullptr;
    std::uint64_t id_ = 0;
  };

  [[nodiscard]] Subscription subscribe(Handler handler);
  void publish(const EventPtr& event);
  std::size_t subscriber_count() const;

 private:
  void unsubscribe(std::uint64_t id);

  mutable std::shared_mutex mutex_;  // shared for publish, exclusive to (un)subscribe
  std::unordered_map<std::uint64_t, Handler> handlers_;
  std::uint64_t next_id_ = 1;
};

// Lets through at most one progress update per `interval` for one run. A
// value held back is not lost: the run record keeps it, and the next admitted
// update or status change carries it. Not thread-safe: one per run, used
// under that run's lock.
class ProgressThrottle {
 public:
  // `interval`: at most about 24 days (it is kept in 32 bits: every live run
  // has a throttle).
  explicit ProgressThrottle(std::chrono::milliseconds interval = std::chrono::milliseconds(100))
      : interval_(static_cast<std::int32_t>(
            std::clamp<std::chrono::milliseconds::rep>(interval.count(), 0, INT32_MAX))) {}
  // True when an update at `now` may be published now.
  bool admit(std::chrono::steady_clock::time_point now);

 private:
  std::chrono::steady_clock::time_point last_{};
  std::chrono::duration<std::int32_t, std::milli> interval_;
  bool any_ = false;
};

}  // namespace nightshift
