#include "automation/due_queue.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace nightshift {

DueQueue::DueQueue(std::string thread_name, Fire fire)
    : fire_(std::move(fire)), thread_name_(std::move(thread_name)) {
  thread_ = std::thread([this] { loop(); });
}

DueQueue::~DueQueue() {
  stop();
}

void DueQueue::set(const std::string& id, Clock::time_point due) {
  std::lock_guard lock(mutex_);
  if (auto it = by_id_.find(id); it != by_id_.end()) {
    by_time_.erase({it->second, id});
    it->second = due;
  } else {
    by_id_.emplace(id, due);
  }
  by_time_.emplace(due, id);
  changed_.notify_all();
}

void DueQueue::remove(const std::string& id) {
  std::lock_guard lock(mutex_);
  if (auto it = by_id_.find(id); it != by_id_.end()) {
    by_time_.erase({it->second, id});
    by_id_.erase(it);
  }
}

std::size_t DueQueue::size() const {
  std::lock_guard lock(mutex_);
  return by_id_.size();
}

void DueQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void DueQueue::loop() {
  ::pthread_setname_np(::pthread_self(), thread_name_.substr(0, 15).c_str());
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (by_time_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto [due, id] = *by_time_.begin();
    if (Clock::now() < due) {
      // Waits in slices so a change of the wall clock is noticed soon.
      changed_.wait_until(lock, std::min(due, Clock::now() + std::chrono::seconds(1)));
      continue;
    }
    by_time_.erase(by_time_.begin());
    by_id_.erase(id);
    const std::string fired = id;
    lock.unlock();
    try {
      fire_(fired);
    } catch (const std::exception& error) {
      spdlog::error("{}: {}", thread_name_, error.what());
    }
    lock.lock();
  }
}

}  // namespace nightshift
