// The shared state of the WebSocket sessions (the shape of Beast's
// websocket_chat_multi): the set of connected sessions and who subscribed to
// which run's logs. It fans bus events out by posting them to each session's
// strand; it never writes to a socket itself, so one slow client cannot hold
// up the others or the store writer thread the bus runs on. It does not
// serialize either: each event travels as one SharedRunEvent or
// SharedLogEvent, serialized once by the first session that writes it. Even
// the posting to each session is not done on the publishing thread (the store
// writer's publisher, whose speed is every start's): publish() posts the
// event once to the hub's own strand, which fans it out, in the order it was
// published. That strand is on the server's worker pool, not on the I/O
// threads, so an event's fan-out never queues behind the sessions' handling
// of the one before: a run's `finished` reaches the inbox of every session
// that has not written its `started` yet, and both leave in one write.
//
// Thread safety: every member is [thread-safe]; `mutex_` guards the tables.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/event_bus.hpp"

namespace nightshift::api {

class WebSocketSession;

class WebSocketHub {
 public:
  // Events are fanned out on `strand` (of the server's worker pool) from now
  // on; until then, and after detach(), publish() drops them. The strand
  // must be detached before its io_context goes.
  void attach(boost::asio::any_io_executor strand);
  void detach();

  void join(const std::shared_ptr<WebSocketSession>& session);
  void leave(const WebSocketSession* session);
  void subscribe_logs(const std::string& instance_id,
                      const std::shared_ptr<WebSocketSession>& session);
  void unsubscribe_logs(const std::string& instance_id, const WebSocketSession* session);

  // Called on the bus thread; posts once, never blocks on a session. Does
  // nothing while no session is connected.
  void publish(const EventPtr& event);

  // Asks every session to close (1001 going away).
  void close_all();
  std::size_t size() const;

 private:
  void fan_out(const EventPtr& event);  // on fan_out_strand_
  std::vector<std::shared_ptr<WebSocketSession>> all_sessions() const;
  std::vector<std::shared_ptr<WebSocketSession>> log_subscribers(const std::string& id) const;

  mutable std::mutex mutex_;
  std::optional<boost::asio::any_io_executor> fan_out_strand_;
  std::unordered_map<const WebSocketSession*, std::weak_ptr<WebSocketSession>> sessions_;
  std::unordered_map<std::string,
                     std::unordered_map<const WebSocketSession*, std::weak_ptr<WebSocketSession>>>
      log_subscribers_;
};

}  // namespace nightshift::api
