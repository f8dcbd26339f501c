// Counts the server's open connections (HTTP and WebSocket sessions), for the
// connection limit and for Server::stop, which waits on a condition variable
// until every session has ended, or a deadline.
//
// Thread safety: every member is [thread-safe].
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace nightshift::api {

class ConnectionCount {
 public:
  // Held by a session for as long as it lives; counts it while it does.
  class Slot {
   public:
    explicit Slot(ConnectionCount& count) : count_(&count) { count_->opened(); }
    ~Slot() { count_->closed(); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    ConnectionCount* count_;
  };

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return open_;
  }

  // True when every connection ended before `deadline`.
  bool wait_until_none(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return none_left_.wait_until(lock, deadline, [this] { return open_ == 0; });
  }

 private:
  void opened() {
    std::lock_guard lock(mutex_);
    ++open_;
  }
  void closed() {
    std::lock_guard lock(mutex_);
    if (--open_ == 0) none_left_.notify_all();
  }

  mutable std::mutex mutex_;  // guards open_
  std::condition_variable none_left_;
  std::size_t open_ = 0;
};

}  // namespace nightshift::api
