#include "api/websocket_hub.hpp"

#include <boost/asio/post.hpp>

#include "api/shared_event.hpp"
#include "api/websocket_session.hpp"
#include "api/wire_automation.hpp"

namespace nightshift::api {

void WebSocketHub::join(const std::shared_ptr<WebSocketSession>& session) {
  std::lock_guard lock(mutex_);
  sessions_[session.get()] = session;
}

void WebSocketHub::leave(const WebSocketSession* session) {
  std::lock_guard lock(mutex_);
  sessions_.erase(session);
  for (auto it = log_subscribers_.begin(); it != log_subscribers_.end();) {
    it->second.erase(session);
    it = it->second.empty() ? log_subscribers_.erase(it) : std::next(it);
  }
}

void WebSocketHub::subscribe_logs(const std::string& instance_id,
                                  const std::shared_ptr<WebSocketSession>& session) {
  std::lock_guard lock(mutex_);
  log_subscribers_[instance_id][session.get()] = session;
}

void WebSocketHub::unsubscribe_logs(const std::string& instance_id,
                                    const WebSocketSession* session) {
  std::lock_guard lock(mutex_);
  auto it = log_subscribers_.find(instance_id);
  if (it == log_subscribers_.end()) return;
  it->second.erase(session);
  if (it->second.empty()) log_subscribers_.erase(it);
}

std::vector<std::shared_ptr<WebSocketSession>> WebSocketHub::all_sessions() const {
  std::vector<std::shared_ptr<WebSocketSession>> result;
  std::lock_guard lock(mutex_);
  result.reserve(sessions_.size());
  for (const auto& [key, weak] : sessions_) {
    if (auto session = weak.lock()) result.push_back(std::move(session));
  }
  return result;
}

std::vector<std::shared_ptr<WebSocketSession>> WebSocketHub::log_subscribers(
    const std::string& id) const {
  std::vector<std::shared_ptr<WebSocketSession>> result;
  std::lock_guard lock(mutex_);
  auto it = log_subscribers_.find(id);
  if (it == log_subscribers_.end()) return result;
  for (const auto& [key, weak] : it->second) {
    if (auto session = weak.lock()) result.push_back(std::move(session));
  }
  return result;
}

void WebSocketHub::attach(boost::asio::any_io_executor strand) {
  std::lock_guard lock(mutex_);
  fan_out_strand_ = std::move(strand);
}

void WebSocketHub::detach() {
  std::lock_guard lock(mutex_);
  fan_out_strand_.reset();
}

void WebSocketHub::publish(const EventPtr& event) {
  std::lock_guard lock(mutex_);
  if (sessions_.empty() || !fan_out_strand_) return;
  boost::asio::post(*fan_out_strand_, [this, event] { fan_out(event); });
}

void WebSocketHub::fan_out(const EventPtr& event) {
  if (const auto* run_event = std::get_if<RunEvent>(event.get())) {
    const auto shared = std::make_shared<const SharedRunEvent>(event);
    for (const auto& session : all_sessions()) session->deliver_run_event(shared);
    if (run_event->kind == RunEventKind::deleted) {
      std::lock_guard lock(mutex_);
      log_subscribers_.erase(run_event->run.instance_id);
    }
  } else if (const auto* log_event = std::get_if<LogEvent>(event.get())) {
    const auto subscribers = log_subscribers(log_event->instance_id);
    if (subscribers.empty()) return;
    const auto shared = std::make_shared<const SharedLogEvent>(event);
    for (const auto& session : subscribers) session->deliver_logs(shared);
  } else if (const auto* schedule_event = std::get_if<ScheduleEvent>(event.get())) {
    // Rare and small: serialized once here, the same bytes for every session.
    const auto body =
        std::make_shared<const std::string>(wire::schedule_event_body(*schedule_event));
    for (const auto& session : all_sessions()) session->deliver_message("schedule", body);
  }
}

void WebSocketHub::close_all() {
  for (const auto& session : all_sessions()) session->close_going_away();
}

std::size_t WebSocketHub::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace nightshift::api
