// The shared state of the WebSocket sessions (the shape of Beast's
// websocket_chat_multi): the set of connected sessions and who subscribed to
// which run's logs. It fans bus events out by posting them to each session's
// strand; it never writes to a socket itself, so one slow client cannot hold
// up the others or the store writer thread the bus runs on. It does not
// serialize either: each event travels as one SharedRunEvent or
// SharedLogEvent, serialized once by the first session that writes it.
//
// Thread safety: every member is [thread-safe]; `mutex_` guards the tables.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/event_bus.hpp"

namespace nightshift::api {

class WebSocketSession;

class WebSocketHub {
 public:
  void join(const std::shared_ptr<WebSocketSession>& session);
  void leave(const WebSocketSession* session);
  void subscribe_logs(const std::string& instance_id,
                      const std::shared_ptr<WebSocketSession>& session);
  void unsubscribe_logs(const std::string& instance_id, const WebSocketSession* session);

  // Called on the bus thread; only posts, never blocks on a session.
  void publish(const EventPtr& event);

  // Asks every session to close (1001 going away).
  void close_all();
  std::size_t size() const;

 private:
  std::vector<std::shared_ptr<WebSocketSession>> all_sessions() const;
  std::vector<std::shared_ptr<WebSocketSession>> log_subscribers(const std::string& id) const;

  mutable std::mutex mutex_;
  std::unordered_map<const WebSocketSession*, std::weak_ptr<WebSocketSession>> sessions_;
  std::unordered_map<std::string,
                     std::unordered_map<const WebSocketSession*, std::weak_ptr<WebSocketSession>>>
      log_subscribers_;
};

}  // namespace nightshift::api
