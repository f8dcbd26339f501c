// One WebSocket client of GET /background-agent-ws (api.md): a snapshot first,
// then run events, log subscriptions, ping/pong, each message numbered by a
// per-connection seq. Writes go through a bounded queue: a client that cannot
// keep up is closed with 1013 instead of growing the host's memory. The
// queues of all sessions together are bounded too (ServerOptions): past that
// bound the sessions holding more than their share are closed, and when the
// last queued byte is gone after a large backlog, the freed memory is given
// back to the system.
//
// Each queued message is a type and a body shared with every other session
// that sends the same event (shared_event.hpp); the seq is given when the
// message is handed to the socket, written as a small prefix in front of the
// shared body (no copy). Because numbering happens at write time, the
// snapshot, read on the worker pool, can still go out first: nothing is
// written until it is at the front of the queue. Whatever waits in the queue
// when the socket is free leaves in one gathered write (batching_stream.hpp),
// so a client that fell behind catches up in a few system calls.
//
// Nothing slow runs on the I/O threads: the snapshot's reads, the check that
// a subscribed run exists, and the reads of a subscription's backlog run on
// the worker pool, and their results are posted back to this session's
// strand.
//
// Thread safety: everything below runs on the session's strand (the executor
// of its socket); the deliver_* and close_going_away members are
// [thread-safe]: deliveries go into an inbox under its own small lock, and a
// drain is posted to the strand only when none is pending, so the hub's
// fan-out of a burst of events costs one post per session, not one per
// event; close_going_away only posts.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "api/batching_stream.hpp"
#include "api/connection_count.hpp"
#include "api/history_cache.hpp"
#include "api/io_types.hpp"
#include "api/metrics.hpp"
#include "api/server_options.hpp"
#include "api/shared_event.hpp"
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
    ConnectionCount& connections;
    boost::asio::thread_pool& pool;  // for the store reads
  };

  WebSocketSession(TcpStream&& stream, Context context);
  ~WebSocketSession();

  // Completes the upgrade of `request` and starts the session.
  void start(boost::beast::http::request<boost::beast::http::string_body> request);

  void deliver_run_event(std::shared_ptr<const SharedRunEvent> event);  // [thread-safe]
  void deliver_logs(std::shared_ptr<const SharedLogEvent> event);       // [thread-safe]
  // Any other server message to every client, e.g. a `schedule` event;
  // `type` is a string literal. [thread-safe]
  void deliver_message(std::string_view type, SharedBody body);
  void close_going_away();  // [thread-safe]

 private:
  // Where a log subscription stands. While catching up, the session reads
  // the store (the bus only publishes what is committed, so the live entries
  // are there too) and live events are not sent, only their highest seq is
  // noted: a read that comes back short is trusted to have caught up only
  // when it reached that seq, because a live event dropped while the read
  // was on the pool may hold entries the read did not see. Once live, the
  // bus's entries are sent, skipping what was already sent.
  struct LogSubscription {
    std::uint64_t last_seq = 0;       // the last entry sent
    std::uint64_t live_seen_seq = 0;  // the highest seq of a live event dropped while catching up
    bool catching_up = true;
    std::uint64_t generation = 0;  // tells a read's result from a newer subscription's
  };

  // What the hub hands the session from its fan-out, taken on the strand in
  // the order it came.
  struct OtherMessage {
    std::string_view type;  // a string literal
    SharedBody body;
  };
  using Delivery = std::variant<std::shared_ptr<const SharedRunEvent>,
                                std::shared_ptr<const SharedLogEvent>, OtherMessage>;
  // Puts `delivery` in the inbox; posts a drain to the strand only when none
  // is pending, so a burst of events costs one post, not one each.
  void deliver(Delivery delivery);
  void drain_inbox();

  // A message waiting for the socket; its prefix is made at write time.
  struct Outgoing {
    std::string_view type;  // a string literal
    SharedBody body;
  };

  void on_accept(boost::beast::error_code error);
  void read_snapshot();
  void on_snapshot(SharedBody body);
  void read_next();
  void on_read(boost::beast::error_code error, std::size_t bytes);
  // Returns false when the message needs an answer from the pool first; the
  // next message is read once it is handled.
  bool handle_message(std::string_view text);
  void subscribe(std::string instance_id, std::uint64_t after);
  void on_run_checked(const std::string& instance_id, std::uint64_t after, bool exists);
  void unsubscribe(const std::string& instance_id);
  void pump_backlogs();
  void read_backlog(const std::string& instance_id, const LogSubscription& subscription);
  void on_backlog(const std::string& instance_id, std::uint64_t generation, LogPage page,
                  bool run_gone);
  void on_run_event(const SharedRunEvent& event);
  void on_logs(const SharedLogEvent& event);
  void send_logs(const std::string& instance_id, std::span<const LogEntry> entries);
  void send_error(std::string_view code, std::string_view message);

  // Queues one message, numbered when it is written; written at once unless
  // writes are held.
  void enqueue(std::string_view type, SharedBody body);
  // While one lives, what is queued waits; the last to go hands it all to
  // the socket in one write.
  class HeldWrites {
   public:
    explicit HeldWrites(WebSocketSession& session);
    ~HeldWrites();
    HeldWrites(const HeldWrites&) = delete;
    HeldWrites& operator=(const HeldWrites&) = delete;

   private:
    WebSocketSession& session_;
  };
  // Counts bytes in and out of the queue, for this session's bound and the
  // bound of all sessions together (Metrics); a message counts as
  // queued_bytes(body).
  static std::size_t queued_bytes(const SharedBody& body);
  void count_queued(const SharedBody& body);
  void count_sent(std::size_t bytes);
  // Whether the queue is past this session's bounds, or the sessions together
  // are past theirs while this one holds more than its share.
  bool over_bound() const;
  // This session's share of the bound of all sessions together.
  std::size_t fair_share() const;
  bool has_room_for_backlog() const;
  // Hands the socket what waits at the front of the queue, a batch at a
  // time for as long as the socket takes each batch at once; a batch it has
  // no room for completes in on_write.
  void write_next();
  void on_write(const boost::beast::error_code& error);
  // Drops the batch the socket has taken from the front of the queue.
  void take_written();
  // Drops the queued messages not handed to the socket yet.
  void drop_unwritten();
  void close_slow_client();
  void close_with(boost::beast::websocket::close_code code, std::string_view reason);
  void finish();

  boost::beast::websocket::stream<BatchingStream> ws_;
  const IoStrand strand_;  // ws_'s; copied so the pool may post to it
  Context context_;
  ConnectionCount::Slot connection_;
  boost::beast::http::request<boost::beast::http::string_body> upgrade_request_;
  boost::beast::flat_buffer read_buffer_;
  boost::asio::steady_timer close_deadline_;
  std::mutex inbox_mutex_;
  std::vector<Delivery> inbox_;     // guarded by inbox_mutex_
  bool drain_posted_ = false;       // guarded by inbox_mutex_
  std::vector<Delivery> draining_;  // on the strand: the inbox being handled
  std::deque<Outgoing> queue_;      // its first `writing_` messages are being written
  std::size_t queue_bytes_ = 0;
  std::size_t writing_ = 0;
  std::size_t writes_held_ = 0;  // HeldWrites alive
  std::string prefix_;           // scratch for a message's prefix
  bool snapshot_queued_ = false;
  bool closing_ = false;   // no more messages are queued
  bool finished_ = false;  // left the hub
  bool accepted_ = false;
  bool backlog_read_pending_ = false;  // one backlog read on the pool at a time
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_generation_ = 1;
  std::unordered_map<std::string, LogSubscription> log_subscriptions_;
};

}  // namespace nightshift::api
