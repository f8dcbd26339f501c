// The worker protocol: frames round-trip, and the decoder refuses what a
// hostile child could send (truncated, oversized, garbage, mistyped).
#include "isolation/protocol.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace iso = nightshift::isolation;
using iso::FrameType;

namespace {

std::vector<iso::Frame> decode_all(const std::string& bytes, std::size_t piece) {
  iso::FrameDecoder decoder;
  std::vector<iso::Frame> frames;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    decoder.feed(std::string_view(bytes).substr(at, piece));
    while (auto frame = decoder.next()) frames.push_back(std::move(*frame));
  }
  decoder.finish();
  return frames;
}

std::string header(std::uint32_t size, std::uint8_t type) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  out.push_back(static_cast<char>(type));
  return out;
}

}  // namespace

TEST(WorkerProtocol, EveryFrameRoundTripsWhateverPiecesTheStreamComesIn) {
  iso::StartFrame start;
  start.memory_mib = 64;
  start.cpu_seconds = 2;
  start.kill_grace_ms = 1500;
  start.plugin_path = "/agents/x/libx.so";
  start.plugin_name = "x";
  start.instance_id = "id";
  start.workspace = "/ws";
  start.params_json = R"({"a":1})";
  start.task = std::string("a task\nwith\0nul", 15);
  iso::ExitFrame exit;
  exit.how = iso::ExitFrame::How::signaled;
  exit.code = 11;
  exit.cpu_ms = 1234;
  exit.memory_exhausted = true;
  const std::string stream = iso::encode(start) + iso::encode(iso::HelloFrame{1, 42}) +
                             iso::encode(iso::LogFrame{3, "careful"}) + iso::encode_progress(0.25) +
                             iso::encode_text(FrameType::result, R"({"ok":true})") +
                             iso::encode(iso::UsageFrame{10, 20}) + iso::encode_done(1) +
                             iso::encode(exit) + iso::encode_empty(FrameType::stop);
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{7}, stream.size()}) {
    const auto frames = decode_all(stream, piece);
    ASSERT_EQ(frames.size(), 9u) << "pieces of " << piece;
    const iso::StartFrame s = iso::decode_start(frames[0].payload);
    EXPECT_EQ(s.memory_mib, 64u);
    EXPECT_EQ(s.cpu_seconds, 2u);
    EXPECT_EQ(s.kill_grace_ms, 1500u);
    EXPECT_EQ(s.plugin_path, start.plugin_path);
    EXPECT_EQ(s.task, start.task);
    EXPECT_EQ(iso::decode_hello(frames[1].payload).pid, 42u);
    EXPECT_EQ(iso::decode_log(frames[2].payload).text, "careful");
    EXPECT_EQ(iso::decode_log(frames[2].payload).level, 3);
    EXPECT_EQ(iso::decode_progress(frames[3].payload), 0.25);
    EXPECT_EQ(frames[4].type, FrameType::result);
    EXPECT_EQ(frames[4].payload, R"({"ok":true})");
    EXPECT_EQ(iso::decode_usage(frames[5].payload).completion_tokens, 20u);
    EXPECT_EQ(iso::decode_done(frames[6].payload), 1);
    const iso::ExitFrame e = iso::decode_exit(frames[7].payload);
    EXPECT_EQ(e.how, iso::ExitFrame::How::signaled);
    EXPECT_EQ(e.code, 11);
    EXPECT_EQ(e.cpu_ms, 1234u);
    EXPECT_TRUE(e.memory_exhausted);
    EXPECT_FALSE(e.killed);
    EXPECT_EQ(frames[8].type, FrameType::stop);
  }
}

TEST(WorkerProtocol, AStartWithoutTaskHasNone) {
  iso::StartFrame start;
  start.plugin_path = "p";
  iso::FrameDecoder decoder;
  decoder.feed(iso::encode(start));
  EXPECT_FALSE(iso::decode_start(decoder.next()->payload).task.has_value());
}

TEST(WorkerProtocol, AStreamCutInsideAFrameIsRefusedAtItsEnd) {
  const std::string frame = iso::encode(iso::LogFrame{2, "hello"});
  for (std::size_t cut = 1; cut < frame.size(); ++cut) {
    iso::FrameDecoder decoder;
    decoder.feed(frame.substr(0, cut));
    EXPECT_FALSE(decoder.next().has_value());
    EXPECT_THROW(decoder.finish(), iso::ProtocolError) << "cut at " << cut;
  }
}

TEST(WorkerProtocol, AFrameOverTheCapIsRefusedFromItsHeaderAlone) {
  iso::FrameDecoder decoder;
  decoder.feed(header(static_cast<std::uint32_t>(iso::kMaxPayload + 1), 17));
  EXPECT_THROW(decoder.next(), iso::ProtocolError);
  iso::FrameDecoder at_cap;
  at_cap.feed(header(static_cast<std::uint32_t>(iso::kMaxPayload), 17));
  EXPECT_FALSE(at_cap.next().has_value());  // allowed: waits for the bytes
  EXPECT_THROW(iso::encode_frame(FrameType::log, std::string(iso::kMaxPayload + 1, 'x')),
               iso::ProtocolError);
}

TEST(WorkerProtocol, GarbageIsRefused) {
  iso::FrameDecoder unknown_type;
  unknown_type.feed(header(3, 99) + "abc");
  EXPECT_THROW(unknown_type.next(), iso::ProtocolError);
  iso::FrameDecoder zero_type;
  zero_type.feed(header(0, 0));
  EXPECT_THROW(zero_type.next(), iso::ProtocolError);
  iso::FrameDecoder huge;
  huge.feed("\xff\xff\xff\xff\x11");
  EXPECT_THROW(huge.next(), iso::ProtocolError);
}

TEST(WorkerProtocol, PayloadsOfTheWrongSizeAreRefused) {
  EXPECT_THROW(iso::decode_hello("abc"), iso::ProtocolError);
  EXPECT_THROW(iso::decode_hello(std::string(9, '\0')), iso::ProtocolError);
  EXPECT_THROW(iso::decode_progress(std::string(7, '\0')), iso::ProtocolError);
  EXPECT_THROW(iso::decode_usage(std::string(15, '\0')), iso::ProtocolError);
  EXPECT_THROW(iso::decode_done(""), iso::ProtocolError);
  EXPECT_THROW(iso::decode_log("abc"), iso::ProtocolError);
  EXPECT_THROW(iso::decode_empty("x"), iso::ProtocolError);
  // A string whose size runs past the payload.
  std::string start = iso::encode(iso::StartFrame{});
  start = start.substr(iso::kHeaderSize);
  start[24] = '\x7f';  // the plugin path's size
  EXPECT_THROW(iso::decode_start(start), iso::ProtocolError);
  // An exit frame with a flag that is neither 0 nor 1, or an unknown way of ending.
  std::string exit = iso::encode(iso::ExitFrame{}).substr(iso::kHeaderSize);
  exit[13] = 2;
  EXPECT_THROW(iso::decode_exit(exit), iso::ProtocolError);
  exit[13] = 0;
  exit[0] = 5;
  EXPECT_THROW(iso::decode_exit(exit), iso::ProtocolError);
}

TEST(WorkerProtocol, FramesAreTaggedByDirection) {
  EXPECT_TRUE(iso::is_host_to_worker(FrameType::stop));
  EXPECT_FALSE(iso::is_worker_to_host(FrameType::stop));
  EXPECT_TRUE(iso::is_worker_to_host(FrameType::exit));
  EXPECT_TRUE(iso::is_worker_to_host(FrameType::message_read));
  EXPECT_FALSE(iso::is_host_to_worker(FrameType::message_read));
  EXPECT_FALSE(iso::is_host_to_worker(FrameType::log));
  // One past the last type is no frame at all.
  iso::FrameDecoder decoder;
  decoder.feed(std::string("\0\0\0\0", 4) +
               static_cast<char>(static_cast<int>(FrameType::message_read) + 1));
  EXPECT_THROW(decoder.next(), iso::ProtocolError);
}
