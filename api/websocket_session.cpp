#include "api/websocket_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace nightshift::api {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::size_t kBacklogPageEntries = 500;
constexpr std::size_t kEntriesPerMessage = 500;

std::string json_quoted(std::string_view text) {
  return json::serialize(json::string(text));
}

}  // namespace

WebSocketSession::WebSocketSession(beast::tcp_stream&& stream, Context context)
    : ws_(std::move(stream)), context_(context), close_deadline_(ws_.get_executor()) {}

WebSocketSession::~WebSocketSession() {
  context_.hub.leave(this);
  if (accepted_ && !finished_) context_.metrics.websocket_closed();
}

void WebSocketSession::start(beast::http::request<beast::http::string_body> request) {
  upgrade_request_ = std::move(request);
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
  ws_.auto_fragment(false);
  ws_.text(true);
  ws_.async_accept(upgrade_request_,
                   beast::bind_front_handler(&WebSocketSession::on_accept, shared_from_this()));
}

void WebSocketSession::on_accept(beast::error_code error) {
  if (error) return;  // the handshake failed; nothing was registered yet
  accepted_ = true;
  context_.metrics.websocket_opened();
  context_.metrics.count_response(101);
  // Joined before the snapshot is read: an event that comes in meanwhile is
  // posted behind this handler, so it arrives after the snapshot, never lost.
  context_.hub.join(shared_from_this());
  try {
    send_snapshot();
  } catch (const std::exception& failure) {
    spdlog::error("WebSocket snapshot failed: {}", failure.what());
    close_with(websocket::close_code::internal_error, "the snapshot could not be read");
  }
  read_next();
}

void WebSocketSession::send_snapshot() {
  HistoryQuery newest;
  newest.limit = context_.options.ws_snapshot_history;
  const auto history = context_.history.get(newest, [&] { return context_.runs.history(newest); });
  json::array active;
  const Timestamp now = now_ms();
  for (const Run& run : context_.runs.active()) active.emplace_back(to_json(run, now));
  enqueue("snapshot",
          "\"active\":" + json::serialize(active) + ",\"history\":" + history->history_json);
}

void WebSocketSession::read_next() {
  ws_.async_read(read_buffer_,
                 beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this()));
}

void WebSocketSession::on_read(beast::error_code error, std::size_t) {
  if (error) return finish();  // closed, timed out, too big (1009 sent by Beast), or reset
  std::string text = beast::buffers_to_string(read_buffer_.data());
  read_buffer_.consume(read_buffer_.size());
  if (!ws_.got_text()) {
    send_error("bad_message", "send text frames, each one JSON object");
  } else {
    handle_message(text);
  }
  read_next();
}

void WebSocketSession::handle_message(const std::string& text) {
  boost::system::error_code error;
  const json::value message = json::parse(text, error);
  const json::object* object = error ? nullptr : message.if_object();
  const json::value* type = object ? object->if_contains("type") : nullptr;
  if (type == nullptr || !type->is_string()) {
    return send_error("bad_message", "each message must be a JSON object with a string 'type'");
  }
  const json::string& name = type->get_string();
  if (name == "ping") return enqueue("pong", "");
  if (name == "subscribe") return subscribe(*object);
  if (name == "unsubscribe") return unsubscribe(*object);
  send_error("bad_message", "unknown message type '" + std::string(name) +
                                "'; expected subscribe, unsubscribe or ping");
}

void WebSocketSession::subscribe(const json::object& message) {
  const json::value* id_value = message.if_contains("instanceId");
  if (id_value == nullptr || !id_value->is_string()) {
    return send_error("bad_message", "subscribe needs a string 'instanceId'");
  }
  std::uint64_t after = 0;
  if (const json::value* after_value = message.if_contains("after")) {
    if (after_value->is_uint64()) {
      after = after_value->get_uint64();
    } else if (after_value->is_int64() && after_value->get_int64() >= 0) {
      after = static_cast<std::uint64_t>(after_value->get_int64());
    } else if (!after_value->is_null()) {
      return send_error("bad_message", "'after' must be a non-negative integer (a log seq)");
    }
  }
  const std::string id(id_value->get_string());
  if (!is_uuid(id) || !context_.runs.get(id)) {
    return send_error("run_not_found", "no run has the id '" + id + "'");
  }
  // Subscribed on the bus before the backlog is read, so nothing committed
  // in between can be missed; the seq check drops what comes twice.
  context_.hub.subscribe_logs(id, shared_from_this());
  log_subscriptions_[id] = LogSubscription{after, true};
  pump_backlogs();
}

void WebSocketSession::unsubscribe(const json::object& message) {
  const json::value* id_value = message.if_contains("instanceId");
  if (id_value == nullptr || !id_value->is_string()) {
    return send_error("bad_message", "unsubscribe needs a string 'instanceId'");
  }
  const std::string id(id_value->get_string());
  log_subscriptions_.erase(id);
  context_.hub.unsubscribe_logs(id, this);
}

// Reads the store for subscriptions still catching up, one page at a time,
// only while the send queue is at most half full: a long backlog is paced by
// the client's reading instead of filling the queue at once.
void WebSocketSession::pump_backlogs() {
  const auto room = [this] {
    return !closing_ && queue_bytes_ < context_.options.ws_send_queue_bytes / 2 &&
           queue_.size() < context_.options.ws_send_queue_messages / 2;
  };
  for (auto it = log_subscriptions_.begin(); it != log_subscriptions_.end();) {
    auto& [id, subscription] = *it;
    bool run_gone = false;
    while (subscription.catching_up && room()) {
      LogPage page;
      try {
        page = context_.runs.logs(id, subscription.last_seq, kBacklogPageEntries);
      } catch (const RunError&) {
        run_gone = true;  // deleted meanwhile: nothing more will come
        break;
      }
      if (!page.entries.empty()) {
        send_logs(id, page.entries);
        subscription.last_seq = page.entries.back().seq;
      }
      if (page.entries.size() < kBacklogPageEntries) subscription.catching_up = false;
    }
    if (run_gone) {
      context_.hub.unsubscribe_logs(id, this);
      it = log_subscriptions_.erase(it);
    } else {
      ++it;
    }
  }
}

void WebSocketSession::deliver_run_event(std::shared_ptr<const std::string> tail) {
  net::post(ws_.get_executor(),
            [self = shared_from_this(), tail = std::move(tail)] { self->on_run_event(tail); });
}

void WebSocketSession::deliver_logs(EventPtr event) {
  net::post(ws_.get_executor(), [self = shared_from_this(), event = std::move(event)] {
    self->on_logs(std::get<LogEvent>(*event));
  });
}

void WebSocketSession::close_going_away() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->close_with(websocket::close_code::going_away, "the server is shutting down");
  });
}

void WebSocketSession::on_run_event(const std::shared_ptr<const std::string>& tail) {
  if (accepted_ && !finished_) enqueue("run", *tail);
}

void WebSocketSession::on_logs(const LogEvent& event) {
  auto it = log_subscriptions_.find(event.instance_id);
  // While catching up, the store read will include these entries.
  if (it == log_subscriptions_.end() || it->second.catching_up || finished_) return;
  LogSubscription& subscription = it->second;
  std::vector<LogEntry> fresh;
  for (const LogEntry& entry : event.entries) {
    if (entry.seq > subscription.last_seq) fresh.push_back(entry);
  }
  if (fresh.empty()) return;
  if (fresh.front().seq != subscription.last_seq + 1) {
    // A gap (should not happen): fill it from the store rather than skip.
    subscription.catching_up = true;
    return pump_backlogs();
  }
  send_logs(event.instance_id, fresh);
  subscription.last_seq = fresh.back().seq;
}

void WebSocketSession::send_logs(const std::string& instance_id,
                                 const std::vector<LogEntry>& entries) {
  for (std::size_t first = 0; first < entries.size(); first += kEntriesPerMessage) {
    json::array chunk;
    const std::size_t last = std::min(entries.size(), first + kEntriesPerMessage);
    for (std::size_t i = first; i < last; ++i) chunk.emplace_back(to_json(entries[i]));
    enqueue("logs", "\"instanceId\":" + json_quoted(instance_id) +
                        ",\"entries\":" + json::serialize(chunk));
  }
}

void WebSocketSession::send_error(std::string_view code, std::string_view message) {
  enqueue("error", "\"code\":" + json_quoted(code) + ",\"message\":" + json_quoted(message));
}

void WebSocketSession::enqueue(std::string_view type, std::string_view members) {
  if (closing_ || finished_) return;
  std::string text;
  text.reserve(members.size() + type.size() + 40);
  text += "{\"type\":\"";
  text += type;
  text += "\",\"seq\":";
  text += std::to_string(next_seq_++);
  if (!members.empty()) {
    text += ',';
    text += members;
  }
  text += '}';
  queue_bytes_ += text.size();
  queue_.push_back(std::move(text));
  context_.metrics.websocket_message_sent();
  if (queue_bytes_ > context_.options.ws_send_queue_bytes ||
      queue_.size() > context_.options.ws_send_queue_messages) {
    return close_slow_client();
  }
  if (!writing_) write_next();
}

void WebSocketSession::write_next() {
  writing_ = true;
  ws_.async_write(net::buffer(queue_.front()),
                  beast::bind_front_handler(&WebSocketSession::on_write, shared_from_this()));
}

void WebSocketSession::on_write(beast::error_code error, std::size_t) {
  writing_ = false;
  queue_bytes_ -= queue_.front().size();
  queue_.pop_front();
  if (error) {
    // The read side sees the failure too and finishes the session.
    queue_.clear();
    queue_bytes_ = 0;
    closing_ = true;
    return;
  }
  if (closing_) return;
  pump_backlogs();
  if (!queue_.empty() && !writing_) write_next();
}

void WebSocketSession::close_slow_client() {
  context_.metrics.websocket_slow_client_closed();
  // Drop what was not handed to the socket yet; the message being written
  // must stay alive until its write completes.
  while (queue_.size() > (writing_ ? 1u : 0u)) {
    queue_bytes_ -= queue_.back().size();
    queue_.pop_back();
  }
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
}

}  // namespace nightshift::api
