#include "api/batching_stream.hpp"

#include <sys/socket.h>

#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <climits>
#include <cstdint>

namespace nightshift::api {

namespace net = boost::asio;
using boost::beast::error_code;

namespace {

// What a batch keeps of its buffers between writes; a burst's larger ones
// are given back, so that an idle session holds a few hundred bytes here.
constexpr std::size_t kKeptBytes = 1024;
constexpr std::size_t kKeptPieces = 16;

template <class Container>
void give_back_if_over(Container& container, std::size_t kept) {
  if (container.capacity() > kept) Container().swap(container);
}

}  // namespace

void append_text_frame_header(std::string& out, std::uint64_t payload_size) {
  out.push_back(static_cast<char>(0x81));  // FIN, opcode 1 (text)
  if (payload_size < 126) {
    out.push_back(static_cast<char>(payload_size));  // not masked: a server's frame
    return;
  }
  const int length_bytes = payload_size <= 0xFFFF ? 2 : 8;
  out.push_back(static_cast<char>(length_bytes == 2 ? 126 : 127));
  for (int shift = 8 * (length_bytes - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((payload_size >> shift) & 0xFF));
  }
}

void BatchingStream::Batch::clear() {
  bytes.clear();
  pieces.clear();
  flushes.clear();
}

BatchingStream::BatchingStream(TcpStream&& stream)
    : stream_(std::move(stream)), state_(std::make_shared<State>()) {
  state_->owner = this;
}

BatchingStream::~BatchingStream() {
  // The socket closes with stream_; a write in flight then completes with
  // an error and finds no owner. (With keep_alive_while_writing, the owner
  // cannot be gone while a write is in flight.)
  state_->owner = nullptr;
}

void BatchingStream::keep_alive_while_writing(std::weak_ptr<void> owner) {
  state_->keep_alive = std::move(owner);
}

void BatchingStream::queue_bytes(std::string_view bytes) {
  Batch& batch = state_->filling;
  if (!batch.pieces.empty() && !batch.pieces.back().body &&
      batch.pieces.back().offset + batch.pieces.back().size == batch.bytes.size()) {
    batch.pieces.back().size += bytes.size();  // right after the previous bytes-only piece
  } else {
    batch.pieces.push_back(Piece{batch.bytes.size(), bytes.size(), nullptr});
  }
  batch.bytes.append(bytes);
}

void BatchingStream::queue_text_message(std::string_view prefix,
                                        std::shared_ptr<const std::string> body) {
  if (state_->error) return;
  Batch& batch = state_->filling;
  const std::size_t offset = batch.bytes.size();
  append_text_frame_header(batch.bytes, prefix.size() + body->size());
  batch.bytes.append(prefix);
  batch.pieces.push_back(Piece{offset, batch.bytes.size() - offset, std::move(body)});
}

bool BatchingStream::write_now() {
  State& state = *state_;
  if (state.error || state.in_flight) return false;
  start_write();
  return !state.in_flight && !state.error;
}

void BatchingStream::async_flush(FlushHandler done) {
  State& state = *state_;
  if (state.error) {
    net::post(get_executor(), [done = std::move(done), error = state.error] { done(error); });
    return;
  }
  if (state.in_flight && state.filling.pieces.empty()) {
    state.writing.flushes.push_back(std::move(done));  // the write in flight holds it all
    return;
  }
  state.filling.flushes.push_back(std::move(done));
  start_write();
}

void BatchingStream::start_write() {
  State& state = *state_;
  if (state.in_flight || (state.filling.pieces.empty() && state.filling.flushes.empty())) return;
  std::swap(state.filling, state.writing);  // `filling` gets the cleared buffers, capacity kept
  state.buffers.clear();
  std::size_t total = 0;
  for (const Piece& piece : state.writing.pieces) {
    if (piece.size != 0)
      state.buffers.emplace_back(state.writing.bytes.data() + piece.offset, piece.size);
    if (piece.body && !piece.body->empty()) state.buffers.emplace_back(net::buffer(*piece.body));
    total += piece.size + (piece.body ? piece.body->size() : 0);
  }
  // What the kernel takes now needs no asynchronous write, no handler and
  // no trip through the strand; only what it has no room for waits.
  std::size_t sent = 0;
  while (sent < total) {
    const std::size_t more = send_at_once();
    if (more == 0) break;
    sent += more;
    consume_buffers(more);
  }
  if (sent == total) {
    if (!state.writing.flushes.empty()) {
      // Someone waits for this batch (Beast's teardown): told on the strand,
      // never from inside this call.
      net::post(get_executor(), [flushes = std::move(state.writing.flushes)] {
        for (const FlushHandler& done : flushes) done({});
      });
    }
    recycle(state);
    return;
  }
  state.in_flight = true;
  net::async_write(stream_.socket(), state.buffers,
                   [state = state_, owner = state.keep_alive.lock()](
                       const error_code& error, std::size_t) { on_written(state, error); });
}

std::size_t BatchingStream::send_at_once() {
  State& state = *state_;
  const std::size_t count = std::min<std::size_t>(state.buffers.size(), IOV_MAX);
  state.iovecs.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    state.iovecs[i].iov_base = const_cast<void*>(state.buffers[i].data());
    state.iovecs[i].iov_len = state.buffers[i].size();
  }
  msghdr message{};
  message.msg_iov = state.iovecs.data();
  message.msg_iovlen = count;
  for (;;) {
    const ssize_t sent =
        ::sendmsg(stream_.socket().native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return static_cast<std::size_t>(sent);
    if (errno != EINTR) return 0;  // EAGAIN: no room; anything else: async_write reports it
  }
}

void BatchingStream::consume_buffers(std::size_t bytes) {
  auto& buffers = state_->buffers;
  auto first = buffers.begin();
  while (first != buffers.end() && bytes >= first->size()) {
    bytes -= first->size();
    ++first;
  }
  if (first != buffers.end()) *first += bytes;
  buffers.erase(buffers.begin(), first);
}

void BatchingStream::recycle(State& state) {
  state.writing.clear();
  give_back_if_over(state.writing.bytes, kKeptBytes);
  give_back_if_over(state.writing.pieces, kKeptPieces);
  give_back_if_over(state.buffers, 2 * kKeptPieces);
  give_back_if_over(state.iovecs, 2 * kKeptPieces);
}

void BatchingStream::on_written(const std::shared_ptr<State>& state, error_code error) {
  state->in_flight = false;
  if (state->owner == nullptr) {
    // The stream is gone: nobody waits that may still be called.
    state->writing.clear();
    state->filling.clear();
    return;
  }
  if (error && !state->error) state->error = error;
  std::vector<FlushHandler> flushes = std::move(state->writing.flushes);
  recycle(*state);
  if (state->error) {
    // Nothing more can be written: whoever waits for what was queued hears so.
    for (FlushHandler& done : state->filling.flushes) flushes.push_back(std::move(done));
    state->filling.clear();
  }
  // Called before the next write starts, so that what they queue in
  // answer leaves with it.
  for (FlushHandler& done : flushes) done(state->error);
  if (!state->error && state->owner != nullptr) state->owner->start_write();
}

void teardown(boost::beast::role_type role, BatchingStream& stream, error_code& error) {
  boost::beast::websocket::teardown(role, stream.next_layer().socket(), error);
}

}  // namespace nightshift::api
