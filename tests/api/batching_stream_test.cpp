// BatchingStream under a Beast WebSocket server, read by a plain Beast
// client: the frames it writes itself are valid in all three length
// encodings, what the socket has room for is written at once and the rest
// later, Beast's control frames go between messages and never inside one,
// and a client's close is answered after everything queued before it.
#include "api/batching_stream.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nightshift::api {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using Body = std::shared_ptr<const std::string>;

Body body_of(std::size_t size, char fill) {
  return std::make_shared<const std::string>(size, fill);
}

// The server end of one connection, on its own io_context thread. Tests
// hand it work with run(), which executes on the connection's strand.
class Server : public std::enable_shared_from_this<Server> {
 public:
  explicit Server(StrandSocket&& socket) : ws_(TcpStream(std::move(socket))) {}

  void accept(std::promise<void>& accepted) {
    ws_.next_layer().keep_alive_while_writing(weak_from_this());
    ws_.async_accept([self = shared_from_this(), &accepted](beast::error_code error) {
      ASSERT_FALSE(error) << error.message();
      accepted.set_value();
      self->read();
    });
  }

  // Queues `prefix` + `body` as one message each, then flushes.
  void send(
      const std::vector<std::pair<std::string, Body>>& messages,
      std::function<void(beast::error_code)> written = [](beast::error_code) {}) {
    for (const auto& [prefix, body] : messages) ws_.next_layer().queue_text_message(prefix, body);
    ws_.next_layer().async_flush([self = shared_from_this(), written = std::move(written)](
                                     beast::error_code error) { written(error); });
  }

  std::function<void(const std::string&)> on_message = [](const std::string&) {};
  beast::error_code read_error;
  std::promise<void> read_ended;

  websocket::stream<BatchingStream>& ws() { return ws_; }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code error, std::size_t) {
      if (error) {
        self->read_error = error;
        self->read_ended.set_value();
        return;
      }
      const std::string text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->on_message(text);
      self->read();
    });
  }

  websocket::stream<BatchingStream> ws_;
  beast::flat_buffer buffer_;
};

class BatchingStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client_.next_layer().connect(acceptor.local_endpoint());
    StrandSocket socket(strand_);
    acceptor.accept(socket);
    server_ = std::make_shared<Server>(std::move(socket));
    std::promise<void> accepted;
    run([&] { server_->accept(accepted); });
    thread_ = std::thread([this] { ioc_.run(); });
    client_.handshake("127.0.0.1", "/");
    accepted.get_future().wait();
  }

  void TearDown() override {
    work_.reset();
    run([server = std::move(server_)] { beast::get_lowest_layer(server->ws()).close(); });
    thread_.join();
  }

  // Runs `task` on the server connection's strand.
  void run(std::function<void()> task) { net::post(strand_, std::move(task)); }

  // Queues one message on the strand and hands it over with write_now;
  // returns what write_now said.
  bool write_at_once(const std::string& prefix, const Body& body) {
    std::promise<bool> written;
    run([&] {
      server_->ws().next_layer().queue_text_message(prefix, body);
      written.set_value(server_->ws().next_layer().write_now());
    });
    return written.get_future().get();
  }

  std::string read_text() {
    beast::flat_buffer buffer;
    client_.read(buffer);
    return beast::buffers_to_string(buffer.data());
  }

  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      net::make_work_guard(ioc_)};
  IoStrand strand_{net::make_strand(ioc_)};
  net::io_context client_ioc_;
  websocket::stream<tcp::socket> client_{client_ioc_};
  std::shared_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(BatchingStreamTest, MessagesOfEveryLengthEncodingArriveWholeAndInOrder) {
  // Payloads (prefix + body) at the edges of the 7-bit, 16-bit and 64-bit
  // lengths of RFC 6455.
  const std::vector<std::size_t> payloads{4, 125, 126, 65535, 65536, 300000};
  std::vector<std::pair<std::string, Body>> messages;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    messages.emplace_back("m" + std::to_string(i) + ":",
                          body_of(payloads[i] - 3, static_cast<char>('a' + i)));
  }
  std::promise<beast::error_code> written;
  run([&] { server_->send(messages, [&](beast::error_code error) { written.set_value(error); }); });
  for (const auto& [prefix, body] : messages) {
    const std::string text = read_text();
    EXPECT_TRUE(client_.got_text());
    ASSERT_EQ(text.size(), prefix.size() + body->size());
    EXPECT_EQ(text, prefix + *body);
  }
  EXPECT_FALSE(written.get_future().get());
}

TEST_F(BatchingStreamTest, WhatTheSocketHasRoomForIsWrittenAtOnceTheRestWhenTheClientReads) {
  // A few bytes on a fresh connection: the kernel takes them in the call,
  // with nothing left in flight.
  EXPECT_TRUE(write_at_once("hello:", body_of(5, 'h')));
  EXPECT_EQ(read_text(), "hello:hhhhh");

  // Far more than the socket buffers hold while the client reads nothing:
  // the call writes what fits and the rest follows as the client reads,
  // whole and in order; async_flush says when the last byte is out.
  const Body big = body_of(64 * 1024, 'b');
  constexpr int kMessages = 400;
  std::promise<bool> big_written;
  std::promise<beast::error_code> flushed;
  run([&] {
    BatchingStream& stream = server_->ws().next_layer();
    for (int i = 0; i < kMessages; ++i) stream.queue_text_message(std::to_string(i) + ":", big);
    big_written.set_value(stream.write_now());
    stream.async_flush([&](const beast::error_code& error) { flushed.set_value(error); });
  });
  EXPECT_FALSE(big_written.get_future().get());
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(read_text(), std::to_string(i) + ":" + *big);
  }
  EXPECT_FALSE(flushed.get_future().get());

  // Written out, the socket takes a small message at once again.
  EXPECT_TRUE(write_at_once("again:", body_of(1, 'a')));
  EXPECT_EQ(read_text(), "again:a");
}

TEST_F(BatchingStreamTest, PongsGoBetweenMessagesNeverInsideOne) {
  int pongs = 0;
  client_.control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) ++pongs;
  });
  // The client pings while the server writes batches larger than the
  // socket buffers hold, so a batch is still being written when Beast
  // answers a ping: the pong is queued between two of the messages.
  constexpr int kBatches = 10;
  constexpr int kPerBatch = 200;
  constexpr std::size_t kBodyBytes = 16 * 1024;
  std::function<void(int)> send_batch = [&](int batch) {
    std::vector<std::pair<std::string, Body>> messages;
    for (int i = 0; i < kPerBatch; ++i) {
      messages.emplace_back(std::to_string(batch * kPerBatch + i) + ":", body_of(kBodyBytes, 'x'));
    }
    server_->send(messages, [&, batch](beast::error_code error) {
      ASSERT_FALSE(error) << error.message();
      if (batch + 1 < kBatches) send_batch(batch + 1);
    });
  };
  run([&] { send_batch(0); });
  int pings = 0;
  for (int n = 0; n < kBatches * kPerBatch; ++n) {
    if (n % 50 == 0) {
      client_.ping({});
      ++pings;
    }
    const std::string text = read_text();
    ASSERT_EQ(text, std::to_string(n) + ":" + std::string(kBodyBytes, 'x'));
  }
  // A last round trip: the server answers "done" after the pongs of every
  // ping sent before it, which the client's read below goes through.
  run([this] {
    server_->on_message = [this](const std::string& text) {
      if (text == "done") server_->send({{"bye", body_of(0, ' ')}});
    };
  });
  client_.write(net::buffer(std::string("done")));
  EXPECT_EQ(read_text(), "bye");
  EXPECT_EQ(pongs, pings);
}

TEST_F(BatchingStreamTest, AClientsCloseIsAnsweredAfterWhatWasQueuedBeforeIt) {
  // Far more than the socket buffers hold, so most of it is still queued
  // when the client's close arrives: the answer must wait behind it.
  std::vector<std::pair<std::string, Body>> messages;
  for (int i = 0; i < 400; ++i) messages.emplace_back("m:", body_of(64 * 1024, 'q'));
  run([&] { server_->send(messages); });
  ASSERT_EQ(read_text().size(), 2 + 64 * 1024u);
  // Beast's close reads (and drops) messages until the close answer comes;
  // it throws if the connection ends without one.
  EXPECT_NO_THROW(client_.close(websocket::close_code::normal));
  server_->read_ended.get_future().wait();
  EXPECT_EQ(server_->read_error, websocket::error::closed);
}

}  // namespace
}  // namespace nightshift::api
