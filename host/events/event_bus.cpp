#include "events/event_bus.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <mutex>

namespace nightshift {

std::string_view to_string(RunEventKind kind) {
  switch (kind) {
    case RunEventKind::started:
      return "started";
    case RunEventKind::updated:
      return "updated";
    case RunEventKind::finished:
      return "finished";
    case RunEventKind::deleted:
      return "deleted";
  }
  return "updated";
}

std::string_view to_string(ScheduleEventKind kind) {
  switch (kind) {
    case ScheduleEventKind::created:
      return "created";
    case ScheduleEventKind::updated:
      return "updated";
    case ScheduleEventKind::deleted:
      return "deleted";
  }
  return "updated";
}

EventBus::Subscription::Subscription(Subscription&& other) noexcept
    : bus_(other.bus_), id_(other.id_) {
  other.bus_ = nullptr;
  other.id_ = 0;
}

EventBus::Subscription& EventBus::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    bus_ = other.bus_;
    id_ = other.id_;
    other.bus_ = nullptr;
    other.id_ = 0;
  }
  return *this;
}

EventBus::Subscription::~Subscription() {
  reset();
}

void EventBus::Subscription::reset() {
  if (bus_ != nullptr) bus_->unsubscribe(id_);
  bus_ = nullptr;
  id_ = 0;
}

EventBus::Subscription EventBus::subscribe(Handler handler) {
  std::unique_lock lock(mutex_);
  const std::uint64_t id = next_id_++;
  handlers_.emplace(id, std::move(handler));
  return Subscription(this, id);
}

void EventBus::publish(const EventPtr& event) {
  // Publishers share the lock, so an unsubscribe (exclusive) waits for every
  // call already under way and no handler runs after it returns.
  std::shared_lock lock(mutex_);
  for (const auto& [id, handler] : handlers_) {
    // One faulty subscriber must not stop the others nor the publisher (the
    // store writer thread).
    try {
      handler(event);
    } catch (const std::exception& e) {
      spdlog::error("event subscriber {} threw: {}", id, e.what());
    } catch (...) {
      spdlog::error("event subscriber {} threw a non-standard exception", id);
    }
  }
}

std::size_t EventBus::subscriber_count() const {
  std::shared_lock lock(mutex_);
  return handlers_.size();
}

void EventBus::unsubscribe(std::uint64_t id) {
  std::unique_lock lock(mutex_);
  handlers_.erase(id);
}

bool ProgressThrottle::admit(std::chrono::steady_clock::time_point now) {
  if (any_ && now - last_ < interval_) return false;
  any_ = true;
  last_ = now;
  return true;
}

}  // namespace nightshift
