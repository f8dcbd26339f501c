#include "isolation/protocol.hpp"

#include <bit>
#include <cstring>

namespace nightshift::isolation {

namespace {

// Appends little-endian integers and sized strings to a payload.
class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  void str(std::string_view s) {
    if (s.size() > kMaxPayload) throw ProtocolError("a string is larger than a frame may be");
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  void rest(std::string_view s) { out_.append(s); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads a payload front to back; every read checks the bytes are there.
class Reader {
 public:
  Reader(std::string_view payload, const char* what) : in_(payload), what_(what) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint32_t u32() {
    const std::string_view b = take(4);
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b[i]);
    return v;
  }
  std::uint64_t u64() {
    const std::string_view b = take(8);
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b[i]);
    return v;
  }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  double f64() { return std::bit_cast<double>(u64()); }
  bool flag() {
    const std::uint8_t v = u8();
    if (v > 1) fail("a flag that is neither 0 nor 1");
    return v == 1;
  }
  std::string str() {
    const std::uint32_t size = u32();
    return std::string(take(size));
  }
  std::string rest() {
    std::string out(in_);
    in_ = {};
    return out;
  }
  void end() const {
    if (!in_.empty()) fail(std::to_string(in_.size()) + " bytes too many");
  }

 private:
  std::string_view take(std::size_t n) {
    if (in_.size() < n) fail("cut short");
    std::string_view out = in_.substr(0, n);
    in_.remove_prefix(n);
    return out;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw ProtocolError(std::string("malformed ") + what_ + " frame: " + why);
  }

  std::string_view in_;
  const char* what_;
};

bool known_type(std::uint8_t type) {
  return is_host_to_worker(static_cast<FrameType>(type)) ||
         is_worker_to_host(static_cast<FrameType>(type));
}

}  // namespace

bool is_host_to_worker(FrameType type) {
  return type == FrameType::start || type == FrameType::stop || type == FrameType::message;
}

bool is_worker_to_host(FrameType type) {
  const auto v = static_cast<std::uint8_t>(type);
  return v >= static_cast<std::uint8_t>(FrameType::hello) &&
         v <= static_cast<std::uint8_t>(FrameType::message_read);
}

void FrameDecoder::feed(std::string_view bytes) {
  // Compact before growing: the buffer never keeps consumed frames.
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameDecoder::next() {
  const std::string_view in = std::string_view(buffer_).substr(offset_);
  if (in.size() < kHeaderSize) return std::nullopt;
  std::uint32_t size = 0;
  for (int i = 3; i >= 0; --i) size = (size << 8) | static_cast<std::uint8_t>(in[i]);
  const auto type = static_cast<std::uint8_t>(in[4]);
  if (size > kMaxPayload) {
    throw ProtocolError("a frame of " + std::to_string(size) + " bytes is over the limit of " +
                        std::to_string(kMaxPayload));
  }
  if (!known_type(type)) throw ProtocolError("unknown frame type " + std::to_string(type));
  if (in.size() - kHeaderSize < size) return std::nullopt;
  Frame frame{static_cast<FrameType>(type), std::string(in.substr(kHeaderSize, size))};
  offset_ += kHeaderSize + size;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  return frame;
}

void FrameDecoder::finish() const {
  if (buffered() > 0) {
    throw ProtocolError("the stream ended inside a frame (" + std::to_string(buffered()) +
                        " bytes left over)");
  }
}

std::string encode_frame(FrameType type, std::string_view payload) {
  if (payload.size() > kMaxPayload) {
    throw ProtocolError("a frame of " + std::to_string(payload.size()) +
                        " bytes is over the limit of " + std::to_string(kMaxPayload));
  }
  Writer w;
  w.u32(static_cast<std::uint32_t>(payload.size()));
  w.u8(static_cast<std::uint8_t>(type));
  w.rest(payload);
  return w.take();
}

std::string encode(const StartFrame& f) {
  Writer w;
  w.u32(f.version);
  w.u64(f.memory_mib);
  w.u64(f.cpu_seconds);
  w.u32(f.kill_grace_ms);
  w.str(f.plugin_path);
  w.str(f.plugin_name);
  w.str(f.instance_id);
  w.str(f.workspace);
  w.str(f.params_json);
  w.u8(f.task ? 1 : 0);
  if (f.task) w.str(*f.task);
  return encode_frame(FrameType::start, w.take());
}

std::string encode(const HelloFrame& f) {
  Writer w;
  w.u32(f.version);
  w.u32(f.pid);
  return encode_frame(FrameType::hello, w.take());
}

std::string encode(const LogFrame& f) {
  Writer w;
  w.i32(f.level);
  w.rest(f.text);
  return encode_frame(FrameType::log, w.take());
}

std::string encode_progress(double fraction) {
  Writer w;
  w.f64(fraction);
  return encode_frame(FrameType::progress, w.take());
}

std::string encode(const UsageFrame& f) {
  Writer w;
  w.u64(f.prompt_tokens);
  w.u64(f.completion_tokens);
  return encode_frame(FrameType::usage, w.take());
}

std::string encode_done(std::int32_t rc) {
  Writer w;
  w.i32(rc);
  return encode_frame(FrameType::done, w.take());
}

std::string encode(const ExitFrame& f) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(f.how));
  w.i32(f.code);
  w.u64(f.cpu_ms);
  w.u8(f.memory_exhausted ? 1 : 0);
  w.u8(f.killed ? 1 : 0);
  return encode_frame(FrameType::exit, w.take());
}

std::string encode_text(FrameType type, std::string_view text) {
  return encode_frame(type, text);
}

std::string encode_empty(FrameType type) {
  return encode_frame(type, {});
}

StartFrame decode_start(std::string_view payload) {
  Reader r(payload, "start");
  StartFrame f;
  f.version = r.u32();
  f.memory_mib = r.u64();
  f.cpu_seconds = r.u64();
  f.kill_grace_ms = r.u32();
  f.plugin_path = r.str();
  f.plugin_name = r.str();
  f.instance_id = r.str();
  f.workspace = r.str();
  f.params_json = r.str();
  if (r.flag()) f.task = r.str();
  r.end();
  return f;
}

HelloFrame decode_hello(std::string_view payload) {
  Reader r(payload, "hello");
  HelloFrame f;
  f.version = r.u32();
  f.pid = r.u32();
  r.end();
  return f;
}

LogFrame decode_log(std::string_view payload) {
  Reader r(payload, "log");
  LogFrame f;
  f.level = r.i32();
  f.text = r.rest();
  return f;
}

double decode_progress(std::string_view payload) {
  Reader r(payload, "progress");
  const double v = r.f64();
  r.end();
  return v;
}

UsageFrame decode_usage(std::string_view payload) {
  Reader r(payload, "usage");
  UsageFrame f;
  f.prompt_tokens = r.u64();
  f.completion_tokens = r.u64();
  r.end();
  return f;
}

std::int32_t decode_done(std::string_view payload) {
  Reader r(payload, "done");
  const std::int32_t rc = r.i32();
  r.end();
  return rc;
}

ExitFrame decode_exit(std::string_view payload) {
  Reader r(payload, "exit");
  ExitFrame f;
  const std::uint8_t how = r.u8();
  if (how > 1)
    throw ProtocolError("malformed exit frame: unknown way of ending " + std::to_string(how));
  f.how = static_cast<ExitFrame::How>(how);
  f.code = r.i32();
  f.cpu_ms = r.u64();
  f.memory_exhausted = r.flag();
  f.killed = r.flag();
  r.end();
  return f;
}

void decode_empty(std::string_view payload) {
  if (!payload.empty()) {
    throw ProtocolError("malformed frame: " + std::to_string(payload.size()) +
                        " bytes where none belong");
  }
}

}  // namespace nightshift::isolation
