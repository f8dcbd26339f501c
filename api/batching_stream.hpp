// The socket under a WebSocket session's Beast stream (its next layer), whose
// writes leave in batches: everything written while the socket is busy goes
// out together in the next gathered write, so a client that is behind by a
// hundred messages costs a few `sendmsg` calls, not a hundred.
//
// Two kinds of writes share one queue, in the order they were made:
// - Beast's own (the handshake's answer, ping, pong, close): copied into the
//   queue, and complete as soon as they are queued;
// - the session's messages (queue_text_message): a text frame, framed here
//   (RFC 6455: one unmasked final frame, as a server sends them), made of a
//   small per-session prefix and a body shared with every other session
//   (never copied). The session hands a queued batch over with write_now:
//   what the kernel has room for is written at once, with one non-blocking
//   `sendmsg` and no asynchronous operation at all; only a batch the socket
//   cannot take whole becomes an asynchronous write, and async_flush says
//   when it has reached the socket.
// Every frame is queued whole, so Beast's control frames only ever go between
// two messages, as RFC 6455 allows. The session never writes a message
// through Beast, so Beast is never in the middle of one of its own either.
//
// Beast finds this type's teardown by argument-dependent lookup: it first
// waits for the queue to be written (a close frame answering the client's is
// in it), then tears the TCP connection down as for a plain socket.
//
// Thread safety: none; everything runs on the session's strand (the executor
// of the socket), as Beast's stream requires of its next layer anyway.
#pragma once

#include <sys/uio.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/io_types.hpp"

namespace nightshift::api {

// Appends the header of a final, unmasked text frame (RFC 6455, 5.2: what
// a server sends) whose payload is `payload_size` bytes.
void append_text_frame_header(std::string& out, std::uint64_t payload_size);

class BatchingStream {
 public:
  using executor_type = TcpStream::executor_type;
  using next_layer_type = TcpStream;
  using FlushHandler = std::function<void(const boost::beast::error_code&)>;

  explicit BatchingStream(TcpStream&& stream);
  ~BatchingStream();
  BatchingStream(const BatchingStream&) = delete;
  BatchingStream& operator=(const BatchingStream&) = delete;

  executor_type get_executor() noexcept { return stream_.get_executor(); }
  TcpStream& next_layer() noexcept { return stream_; }
  const TcpStream& next_layer() const noexcept { return stream_; }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return stream_.async_read_some(buffers, std::forward<ReadHandler>(handler));
  }

  // Beast's writes: the bytes are copied into the queue and the write
  // completes at once (with the socket's error if it has failed).
  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return boost::asio::async_initiate<WriteHandler, void(boost::beast::error_code, std::size_t)>(
        [this](auto completion, const ConstBufferSequence& data) {
          std::size_t written = 0;
          if (!state_->error) {
            for (auto it = boost::asio::buffer_sequence_begin(data);
                 it != boost::asio::buffer_sequence_end(data); ++it) {
              const boost::asio::const_buffer piece(*it);
              queue_bytes(std::string_view(static_cast<const char*>(piece.data()), piece.size()));
              written += piece.size();
            }
            start_write();
          }
          boost::asio::post(get_executor(), boost::beast::bind_handler(std::move(completion),
                                                                       state_->error, written));
        },
        handler, buffers);
  }

  // What a write in flight keeps alive (the owner of this stream), so that
  // the stream is never destroyed, on whatever thread, while its write
  // completes. Set before the first write.
  void keep_alive_while_writing(std::weak_ptr<void> owner);

  // Queues one text message: `prefix`, then `body`, in one frame.
  void queue_text_message(std::string_view prefix, std::shared_ptr<const std::string> body);
  // Hands the socket everything queued. Returns true when the socket took
  // all of it at once (the common case: the kernel has room), so nothing is
  // in flight and no handler will be called for it; false when some of it
  // waits for the socket (or the socket has failed): async_flush then says
  // when it is written.
  bool write_now();
  // Calls `done` on the strand once everything queued so far has been
  // written to the socket, or with the error that ended the socket. Never
  // calls it from inside this call.
  void async_flush(FlushHandler done);

 private:
  // A part of a write: bytes of the batch's own buffer, then an optional
  // shared body.
  struct Piece {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::shared_ptr<const std::string> body;
  };
  struct Batch {
    std::string bytes;  // frame headers, prefixes and Beast's writes
    std::vector<Piece> pieces;
    std::vector<FlushHandler> flushes;  // called when this batch is written
    void clear();
  };
  // What the write in flight uses.
  struct State {
    Batch filling;  // queued while `writing` is on the socket
    Batch writing;
    std::vector<boost::asio::const_buffer> buffers;  // of `writing`
    std::vector<iovec> iovecs;                       // for the write at once
    boost::beast::error_code error;                  // the socket's, once it failed
    BatchingStream* owner = nullptr;
    std::weak_ptr<void> keep_alive;  // locked by the write in flight
    bool in_flight = false;
  };

  void queue_bytes(std::string_view bytes);
  // Writes `filling`: at once as far as the socket takes it without
  // waiting, the rest (if any) asynchronously.
  void start_write();
  // One non-blocking sendmsg of state_->buffers; returns the bytes the
  // kernel took (0 when it had no room or the socket failed: the
  // asynchronous write that follows then meets the same error).
  std::size_t send_at_once();
  // Drops the first `bytes` of state_->buffers.
  void consume_buffers(std::size_t bytes);
  // Gives back a written batch's larger buffers.
  static void recycle(State& state);
  static void on_written(const std::shared_ptr<State>& state, boost::beast::error_code error);

  TcpStream stream_;
  std::shared_ptr<State> state_;
};

// Beast's teardown hooks for a WebSocket over a BatchingStream (found by
// argument-dependent lookup).
void teardown(boost::beast::role_type role, BatchingStream& stream,
              boost::beast::error_code& error);

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, BatchingStream& stream,
                    TeardownHandler&& handler) {
  // The flush handler must be copyable; Beast's handlers are move-only.
  auto held =
      std::make_shared<std::decay_t<TeardownHandler>>(std::forward<TeardownHandler>(handler));
  stream.async_flush([&stream, role, held](const boost::beast::error_code&) {
    boost::beast::websocket::async_teardown(role, stream.next_layer().socket(), std::move(*held));
  });
}

}  // namespace nightshift::api
