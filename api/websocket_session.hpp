// One WebSocket client of GET /background-agent-ws (api.md): a snapshot first,
// then run events, log subscriptions, ping/pong, each message numbered by a
// per-connection seq. Writes go through a bounded queue: a client that cannot
// keep up is closed with 1013 instead of growing the host's memory.
//
// Thread safety: everything below runs on the session's strand (the executor
// of its socket); the deliver_* and close_going_away members are
// [thread-safe] because they only post to that strand.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "api/history_cache.hpp"
#include "api/metrics.hpp"
#include "api/server_options.hpp"
#include "api/websocket_hub.hpp"
#include "runs/run_manager.hpp"

namespace nightshift::api {

class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
 public:
  struct Context {
    const ServerOptions& options;
    RunManager& runs;
    HistoryCache& history;
    Metrics& metrics;
    WebSocketHub& hub;
  };

  WebSocketSession(boost::beast::tcp_stream&& stream, Context context);
  ~WebSocketSession();

  // Completes the upgrade of `request` and starts the session.
  void start(boost::beast::http::request<boost::beast::http::string_body> request);

  // A run event, already serialized as the members after type and seq:
  // `"event":"started","run":{...}`. [thread-safe]
  void deliver_run_event(std::shared_ptr<const std::string> tail);
  void deliver_logs(EventPtr event);  // [thread-safe]
  void close_going_away();            // [thread-safe]

 private:
  // Where a log subscription stands: catching up reads the store (the live
  // entries are there too, since the bus only publishes what is committed);
  // live sends the bus's entries, skipping what was already sent.
  struct LogSubscription {
    std::uint64_t last_seq = 0;
    bool catching_up = true;
  };

  void on_accept(boost::beast::error_code error);
  void send_snapshot();
  void read_next();
  void on_read(boost::beast::error_code error, std::size_t bytes);
  void handle_message(const std::string& text);
  void subscribe(const boost::json::object& message);
  void unsubscribe(const boost::json::object& message);
  void pump_backlogs();
  void on_run_event(const std::shared_ptr<const std::string>& tail);
  void on_logs(const LogEvent& event);
  void send_logs(const std::string& instance_id, const std::vector<LogEntry>& entries);
  void send_error(std::string_view code, std::string_view message);

  // Numbers and queues one message: {"type":TYPE,"seq":N,MEMBERS}, where
  // `members` is serialized JSON object members without braces (or empty).
  void enqueue(std::string_view type, std::string_view members);
  void write_next();
  void on_write(boost::beast::error_code error, std::size_t bytes);
  void close_slow_client();
  void close_with(boost::beast::websocket::close_code code, std::string_view reason);
  void finish();

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  Context context_;
  boost::beast::http::request<boost::beast::http::string_body> upgrade_request_;
  boost::beast::flat_buffer read_buffer_;
  boost::asio::steady_timer close_deadline_;
  std::deque<std::string> queue_;  // front is being written while writing_
  std::size_t queue_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;   // no more messages are queued
  bool finished_ = false;  // left the hub
  bool accepted_ = false;
  std::uint64_t next_seq_ = 1;
  std::unordered_map<std::string, LogSubscription> log_subscriptions_;
};

}  // namespace nightshift::api
