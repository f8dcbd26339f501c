#include "api/websocket_session.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <variant>

#include "api/wire.hpp"

namespace nightshift::api {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

constexpr std::size_t kBacklogPageEntries = 500;
// What a message's prefix adds to its body, for the queue's byte bound.
constexpr std::size_t kPrefixBytes = 32;
// At most this many queued messages, or about this many bytes, go to the
// socket in one write.
constexpr std::size_t kBatchMessages = 128;
constexpr std::size_t kBatchBytes = 256 * 1024;

SharedBody make_body(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

}  // namespace

WebSocketSession::WebSocketSession(TcpStream&& stream, Context context)
    : ws_(std::move(stream)),
      strand_(ws_.get_executor()),
      context_(context),
      connection_(context.connections),
      close_deadline_(ws_.get_executor()) {}

WebSocketSession::~WebSocketSession() {
  context_.hub.leave(this);
  if (accepted_ && !finished_) context_.metrics.websocket_closed();
  context_.metrics.websocket_queued(-static_cast<std::int64_t>(queue_bytes_));
}

void WebSocketSession::start(beast::http::request<beast::http::string_body> request) {
  upgrade_request_ = std::move(request);
  ws_.next_layer().keep_alive_while_writing(weak_from_this());
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = context_.options.ws_idle_timeout;  // also the close handshake
  timeouts.idle_timeout = context_.options.ws_idle_timeout;
  timeouts.keep_alive_pings = true;  // a silent peer is pinged, a dead one dropped
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(beast::http::field::server, "nightshift");
  }));
  ws_.read_message_max(context_.options.ws_max_message_bytes);
  ws_.async_accept(upgrade_request_,
                   beast::bind_front_handler(&WebSocketSession::on_accept, shared_from_this()));
}

void WebSocketSession::on_accept(beast::error_code error) {
  if (error) return;  // the handshake failed; nothing was registered yet
  accepted_ = true;
  context_.metrics.websocket_opened();
  context_.metrics.count_response(101);
  // Joined before the snapshot is read: an event that comes in meanwhile is
  // queued behind where the snapshot will go, so it arrives after the
  // snapshot, never lost.
  context_.hub.join(shared_from_this());
  read_snapshot();
  read_next();
}

void WebSocketSession::read_snapshot() {
  net::post(context_.pool, [self = shared_from_this()] {
    const Context& context = self->context_;
    SharedBody body;
    try {
      HistoryQuery newest;
      newest.limit = context.options.ws_snapshot_history;
      std::vector<Run> active = context.runs.active();  // first: see leave_out_ended
      const auto history =
          context.history.get(newest, [&] { return context.runs.history(newest); });
      leave_out_ended(active, *history);
      body =
          make_body(wire::snapshot_body(wire::runs_array(active, now_ms()), history->history_json));
    } catch (const std::exception& failure) {
      spdlog::error("WebSocket snapshot failed: {}", failure.what());
    }
    net::post(self->strand_,
              [self, body = std::move(body)]() mutable { self->on_snapshot(std::move(body)); });
  });
}

void WebSocketSession::on_snapshot(SharedBody body) {
  if (closing_ || finished_) return;
  if (!body) {
    return close_with(websocket::close_code::internal_error, "the snapshot could not be read");
  }
  // First in the queue, so it is seq 1 whatever was queued while it was read.
  count_queued(body);
  queue_.push_front(Outgoing{"snapshot", std::move(body)});
  context_.metrics.websocket_message_sent();
  snapshot_queued_ = true;
  if (over_bound()) return close_slow_client();
  write_next();
}

void WebSocketSession::read_next() {
  ws_.async_read(read_buffer_,
                 beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this()));
}

void WebSocketSession::on_read(beast::error_code error, std::size_t) {
  if (error) return finish();  // closed, timed out, too big (1009 sent by Beast), or reset
  const std::string text = beast::buffers_to_string(read_buffer_.data());
  read_buffer_.consume(read_buffer_.size());
  if (!ws_.got_text()) {
    send_error("bad_message", "send text frames, each one JSON object");
  } else if (!handle_message(text)) {
    return;  // read on once the pool has answered
  }
  read_next();
}

bool WebSocketSession::handle_message(std::string_view text) {
  auto message = wire::parse_client_message(text);
  if (std::holds_alternative<wire::PingMessage>(message)) {
    enqueue("pong", make_body(std::string(wire::empty_body())));
  } else if (auto* bad = std::get_if<wire::BadMessage>(&message)) {
    send_error("bad_message", bad->reason);
  } else if (auto* unsubscribe_message = std::get_if<wire::UnsubscribeMessage>(&message)) {
    unsubscribe(unsubscribe_message->instance_id);
  } else if (auto* subscribe_message = std::get_if<wire::SubscribeMessage>(&message)) {
    if (!is_uuid(subscribe_message->instance_id)) {
      send_error("run_not_found", "no run has the id '" + subscribe_message->instance_id + "'");
      return true;
    }
    subscribe(std::move(subscribe_message->instance_id), subscribe_message->after);
    return false;
  }
  return true;
}

// Whether the run exists is a store read: asked on the pool. Client messages
// are handled one at a time, so a later unsubscribe cannot overtake it.
void WebSocketSession::subscribe(std::string instance_id, std::uint64_t after) {
  net::post(context_.pool, [self = shared_from_this(), id = std::move(instance_id), after] {
    bool exists = false;
    try {
      exists = self->context_.runs.get(id).has_value();
    } catch (const std::exception& failure) {
      spdlog::error("WebSocket subscribe to {}: {}", id, failure.what());
    }
    net::post(self->strand_, [self, id, after, exists] {
      self->on_run_checked(id, after, exists);
      if (!self->finished_) self->read_next();
    });
  });
}

void WebSocketSession::on_run_checked(const std::string& instance_id, std::uint64_t after,
                                      bool exists) {
  if (finished_) return;
  if (!exists) return send_error("run_not_found", "no run has the id '" + instance_id + "'");
  // Subscribed on the bus before the backlog is read, so nothing committed
  // in between can be missed; the seq check drops what comes twice.
  context_.hub.subscribe_logs(instance_id, shared_from_this());
  log_subscriptions_[instance_id] = LogSubscription{after, 0, true, next_generation_++};
  pump_backlogs();
}

void WebSocketSession::unsubscribe(const std::string& instance_id) {
  log_subscriptions_.erase(instance_id);
  context_.hub.unsubscribe_logs(instance_id, this);
}

std::size_t WebSocketSession::queued_bytes(const SharedBody& body) {
  return body->size() + kPrefixBytes;
}

void WebSocketSession::count_queued(const SharedBody& body) {
  const std::size_t bytes = queued_bytes(body);
  queue_bytes_ += bytes;
  context_.metrics.websocket_queued(static_cast<std::int64_t>(bytes));
}

void WebSocketSession::count_sent(std::size_t bytes) {
  queue_bytes_ -= bytes;
  context_.metrics.websocket_queued(-static_cast<std::int64_t>(bytes));
}

std::size_t WebSocketSession::fair_share() const {
  const auto clients =
      static_cast<std::size_t>(std::max<std::int64_t>(1, context_.metrics.websocket_clients()));
  return context_.options.ws_total_send_queue_bytes / clients;
}

bool WebSocketSession::over_bound() const {
  if (queue_bytes_ > context_.options.ws_send_queue_bytes ||
      queue_.size() > context_.options.ws_send_queue_messages) {
    return true;
  }
  const auto total = static_cast<std::size_t>(
      std::max<std::int64_t>(0, context_.metrics.websocket_queued_bytes()));
  return total > context_.options.ws_total_send_queue_bytes && queue_bytes_ > fair_share();
}

// Room for another page of backlog: the queue is under half of its own
// bound and under half of its share of the bound of all sessions. An empty
// queue always has room, so a backlog never stalls; it is only paced.
bool WebSocketSession::has_room_for_backlog() const {
  if (closing_) return false;
  if (queue_.empty()) return true;
  return queue_bytes_ < std::min(context_.options.ws_send_queue_bytes, fair_share()) / 2 &&
         queue_.size() < context_.options.ws_send_queue_messages / 2;
}

// Reads the store for subscriptions still catching up, one page at a time
// and one read at a time, only while the send queue is at most half full: a
// long backlog is paced by the client's reading instead of filling the queue
// at once.
void WebSocketSession::pump_backlogs() {
  if (backlog_read_pending_ || finished_ || !has_room_for_backlog()) return;
  for (const auto& [id, subscription] : log_subscriptions_) {
    if (subscription.catching_up) return read_backlog(id, subscription);
  }
}

void WebSocketSession::read_backlog(const std::string& instance_id,
                                    const LogSubscription& subscription) {
  backlog_read_pending_ = true;
  net::post(context_.pool, [self = shared_from_this(), id = instance_id,
                            after = subscription.last_seq, generation = subscription.generation] {
    LogPage page;
    bool run_gone = false;
    try {
      page = self->context_.runs.logs(id, after, kBacklogPageEntries);
    } catch (const RunError&) {
      run_gone = true;  // deleted meanwhile: nothing more will come
    } catch (const std::exception& failure) {
      spdlog::error("WebSocket log backlog of {}: {}", id, failure.what());
      run_gone = true;
    }
    net::post(self->strand_, [self, id, generation, page = std::move(page), run_gone]() mutable {
      self->on_backlog(id, generation, std::move(page), run_gone);
    });
  });
}

void WebSocketSession::on_backlog(const std::string& instance_id, std::uint64_t generation,
                                  LogPage page, bool run_gone) {
  const HeldWrites held(*this);
  backlog_read_pending_ = false;
  if (finished_) return;
  const auto it = log_subscriptions_.find(instance_id);
  if (it != log_subscriptions_.end() && it->second.generation == generation) {
    LogSubscription& subscription = it->second;
    if (run_gone) {
      context_.hub.unsubscribe_logs(instance_id, this);
      log_subscriptions_.erase(it);
    } else {
      if (!page.entries.empty()) {
        send_logs(instance_id, page.entries);
        subscription.last_seq = page.entries.back().seq;
      }
      if (page.entries.size() < kBacklogPageEntries &&
          subscription.live_seen_seq <= subscription.last_seq) {
        subscription.catching_up = false;
      }
    }
  }
  // Else unsubscribed (or subscribed afresh) meanwhile: the result is stale.
  pump_backlogs();
}

void WebSocketSession::deliver_run_event(std::shared_ptr<const SharedRunEvent> event) {
  deliver(std::move(event));
}

void WebSocketSession::deliver_logs(std::shared_ptr<const SharedLogEvent> event) {
  deliver(std::move(event));
}

void WebSocketSession::deliver_message(std::string_view type, SharedBody body) {
  deliver(OtherMessage{type, std::move(body)});
}

void WebSocketSession::deliver(Delivery delivery) {
  bool post = false;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.push_back(std::move(delivery));
    post = !drain_posted_;
    drain_posted_ = true;
  }
  if (post) net::post(strand_, [self = shared_from_this()] { self->drain_inbox(); });
}

void WebSocketSession::drain_inbox() {
  // Everything drained goes to the socket together: a run's `started` and
  // `finished` that arrived while the session waited for the strand leave
  // in one write, not one each.
  const HeldWrites held(*this);
  {
    std::lock_guard lock(inbox_mutex_);
    draining_.swap(inbox_);  // both keep their capacity for the next burst
    drain_posted_ = false;
  }
  for (const Delivery& delivery : draining_) {
    if (const auto* run = std::get_if<std::shared_ptr<const SharedRunEvent>>(&delivery)) {
      on_run_event(**run);
    } else if (const auto* logs = std::get_if<std::shared_ptr<const SharedLogEvent>>(&delivery)) {
      on_logs(**logs);
    } else if (const auto* other = std::get_if<OtherMessage>(&delivery)) {
      if (accepted_ && !finished_ && !closing_) enqueue(other->type, other->body);
    }
  }
  draining_.clear();
}

void WebSocketSession::close_going_away() {
  net::post(strand_, [self = shared_from_this()] {
    self->close_with(websocket::close_code::going_away, "the server is shutting down");
  });
}

void WebSocketSession::on_run_event(const SharedRunEvent& event) {
  if (accepted_ && !finished_ && !closing_) enqueue("run", event.body());
}

void WebSocketSession::on_logs(const SharedLogEvent& shared) {
  const LogEvent& event = shared.event();
  auto it = log_subscriptions_.find(event.instance_id);
  if (it == log_subscriptions_.end() || finished_ || closing_ || event.entries.empty()) return;
  LogSubscription& subscription = it->second;
  const std::uint64_t first = event.entries.front().seq;
  const std::uint64_t last = event.entries.back().seq;
  if (subscription.catching_up) {
    // The store read will include these entries; note how far they go.
    subscription.live_seen_seq = std::max(subscription.live_seen_seq, last);
    return;
  }
  if (last <= subscription.last_seq) return;  // all sent already
  if (first == subscription.last_seq + 1) {
    // In step: the shared bodies, serialized once for every subscriber.
    for (const SharedLogEvent::Chunk& chunk : shared.chunks()) enqueue("logs", chunk.body);
    subscription.last_seq = last;
    return;
  }
  if (first <= subscription.last_seq) {
    // Partly sent by the backlog read that just caught up: the rest only.
    const auto fresh =
        std::find_if(event.entries.begin(), event.entries.end(),
                     [&](const LogEntry& e) { return e.seq > subscription.last_seq; });
    if (fresh->seq == subscription.last_seq + 1) {
      send_logs(event.instance_id, std::span<const LogEntry>(fresh, event.entries.end()));
      subscription.last_seq = last;
      return;
    }
  }
  // A gap (should not happen): fill it from the store rather than skip.
  subscription.catching_up = true;
  subscription.live_seen_seq = last;
  pump_backlogs();
}

void WebSocketSession::send_logs(const std::string& instance_id,
                                 std::span<const LogEntry> entries) {
  for (std::size_t first = 0; first < entries.size(); first += kLogEntriesPerMessage) {
    const auto part =
        entries.subspan(first, std::min(kLogEntriesPerMessage, entries.size() - first));
    enqueue("logs", make_body(wire::logs_body(instance_id, part)));
  }
}

void WebSocketSession::send_error(std::string_view code, std::string_view message) {
  enqueue("error", make_body(wire::error_message_body(code, message)));
}

void WebSocketSession::enqueue(std::string_view type, SharedBody body) {
  if (closing_ || finished_) return;
  count_queued(body);
  queue_.push_back(Outgoing{type, std::move(body)});
  context_.metrics.websocket_message_sent();
  if (over_bound()) return close_slow_client();
  if (writes_held_ == 0) write_next();
}

WebSocketSession::HeldWrites::HeldWrites(WebSocketSession& session) : session_(session) {
  ++session_.writes_held_;
}

WebSocketSession::HeldWrites::~HeldWrites() {
  if (--session_.writes_held_ == 0 && !session_.closing_) session_.write_next();
}

void WebSocketSession::write_next() {
  BatchingStream& socket = ws_.next_layer();
  bool written_at_once = false;
  // Nothing goes out before the snapshot, which is put at the front.
  while (writing_ == 0 && !queue_.empty() && snapshot_queued_) {
    std::size_t bytes = 0;
    for (const Outgoing& message : queue_) {
      if (writing_ == kBatchMessages || bytes >= kBatchBytes) break;
      prefix_.clear();
      wire::append_message_prefix(prefix_, message.type, next_seq_++);
      socket.queue_text_message(prefix_, message.body);
      bytes += message.body->size();
      ++writing_;
    }
    if (!socket.write_now()) {
      socket.async_flush(
          [self = shared_from_this()](const beast::error_code& error) { self->on_write(error); });
      return;
    }
    take_written();
    written_at_once = true;
  }
  if (written_at_once) pump_backlogs();
}

void WebSocketSession::take_written() {
  // One update of the sessions' shared count for the whole batch.
  std::size_t sent = 0;
  for (; writing_ != 0; --writing_) {
    sent += queued_bytes(queue_.front().body);
    queue_.pop_front();
  }
  count_sent(sent);
}

void WebSocketSession::on_write(const beast::error_code& error) {
  take_written();
  if (error) {
    // The read side sees the failure too and finishes the session.
    drop_unwritten();
    closing_ = true;
    return;
  }
  if (closing_) return;
  pump_backlogs();
  write_next();
}

void WebSocketSession::drop_unwritten() {
  // The messages being written stay alive until their write completes.
  std::size_t dropped = 0;
  while (queue_.size() > writing_) {
    dropped += queued_bytes(queue_.back().body);
    queue_.pop_back();
  }
  count_sent(dropped);
}

void WebSocketSession::close_slow_client() {
  context_.metrics.websocket_slow_client_closed();
  drop_unwritten();
  close_with(websocket::close_code::try_again_later,
             "the client did not keep up with its messages; reconnect for a fresh snapshot");
}

void WebSocketSession::close_with(websocket::close_code code, std::string_view reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  // A peer that reads nothing would hold the close handshake forever: after
  // the idle time the socket is simply closed.
  close_deadline_.expires_after(context_.options.ws_idle_timeout);
  close_deadline_.async_wait([self = shared_from_this()](beast::error_code error) {
    if (error) return;  // cancelled: the session ended in time
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().close(ignored);
  });
  ws_.async_close(websocket::close_reason(code, reason),
                  [self = shared_from_this()](beast::error_code) {});
}

void WebSocketSession::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  close_deadline_.cancel();
  log_subscriptions_.clear();
  context_.hub.leave(this);
  if (accepted_) context_.metrics.websocket_closed();
  // Nothing more is written: what waits in the queue is dropped now.
  drop_unwritten();
  // After many slow clients, the last to go with nothing else queued gives
  // the freed memory back to the system.
  if (context_.metrics.websocket_queued_bytes() <= static_cast<std::int64_t>(queue_bytes_) &&
      context_.metrics.take_websocket_trim()) {
    net::post(context_.pool, [] { malloc_trim(0); });
  }
}

}  // namespace nightshift::api
