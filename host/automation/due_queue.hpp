// A thread that runs work when it is due: items keyed by id, each with a due
// time on the wall clock (they are persisted as wall-clock times, so a wait
// survives a restart), handed to `fire` on the queue's own thread once due.
// Replacing an id's time moves it; removing it cancels it.
//
// Thread safety: every member is [thread-safe]; `fire` runs on the queue's
// thread, one item at a time, and may call set() and remove().
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace nightshift {

class DueQueue {
 public:
  using Clock = std::chrono::system_clock;
  using Fire = std::function<void(const std::string& id)>;

  DueQueue(std::string thread_name, Fire fire);
  // Calls stop().
  ~DueQueue();
  DueQueue(const DueQueue&) = delete;
  DueQueue& operator=(const DueQueue&) = delete;

  void set(const std::string& id, Clock::time_point due);
  void remove(const std::string& id);
  // Stops the thread after the item being fired (if any); pending items are
  // dropped (their owner persisted them). Idempotent.
  void stop();
  std::size_t size() const;

 private:
  void loop();

  Fire fire_;
  mutable std::mutex mutex_;  // guards the tables and stopping_
  std::condition_variable changed_;
  std::set<std::pair<Clock::time_point, std::string>> by_time_;
  std::map<std::string, Clock::time_point> by_id_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is built
  std::string thread_name_;
};

}  // namespace nightshift
