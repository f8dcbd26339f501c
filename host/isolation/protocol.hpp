// The protocol between the host and `nightshift-worker`, the child process a
// run executes in under process isolation. A stream of frames over a
// socketpair, each:
//
//   uint32 payload size (little-endian) | uint8 frame type | payload
//
// The payload of each type is fixed below; integers are little-endian,
// strings are a uint32 size and that many bytes. The host trusts nothing
// that comes from the child: sizes are capped, every payload is checked to
// be exactly what its type says, and any malformed frame ends the run.
//
// Thread safety: plain values and functions; a FrameDecoder belongs to the
// one thread that feeds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace nightshift::isolation {

// Bumped on any change to a frame's layout; the worker refuses a start of
// another version and the host a hello of another version.
inline constexpr std::uint32_t kProtocolVersion = 2;

// No frame may carry more: larger is malformed (a log entry, a result or a
// start's params fit well inside it).
inline constexpr std::size_t kMaxPayload = 16u << 20;
inline constexpr std::size_t kHeaderSize = 5;

enum class FrameType : std::uint8_t {
  // host -> worker
  start = 1,    // StartFrame
  stop = 2,     // empty: the run was asked to stop
  message = 3,  // text: a message sent to the run
  // worker -> host
  hello = 16,         // u32 version, u32 pid of the worker
  log = 17,           // i32 level, text
  progress = 18,      // f64 fraction
  result = 19,        // JSON text
  error = 20,         // text
  usage = 21,         // u64 prompt tokens, u64 completion tokens
  done = 22,          // i32 the agent's return code
  load_failed = 23,   // text: the plugin could not be loaded in the worker
  exit = 24,          // ExitFrame, from the worker's keeper once every process is gone
  message_read = 25,  // empty: the agent took a message (next_message returned it)
};

bool is_host_to_worker(FrameType type);
bool is_worker_to_host(FrameType type);

struct Frame {
  FrameType type{};
  std::string payload;
};

// A frame that breaks the protocol; what() says how.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Splits a byte stream into frames. Never holds more than one frame's worth
// of bytes beyond what was fed (the cap bounds it).
class FrameDecoder {
 public:
  // Appends bytes read from the stream.
  void feed(std::string_view bytes);
  // The next whole frame, or none until more bytes come. Throws
  // ProtocolError for a size over kMaxPayload or an unknown type.
  std::optional<Frame> next();
  // At end of stream: throws ProtocolError when a frame was cut short.
  void finish() const;
  std::size_t buffered() const noexcept { return buffer_.size() - offset_; }

 private:
  std::string buffer_;
  std::size_t offset_ = 0;
};

// Encodes one frame (header and payload). Throws ProtocolError when the
// payload is over the cap.
std::string encode_frame(FrameType type, std::string_view payload);

// ---- payloads ----

struct StartFrame {
  std::uint32_t version = kProtocolVersion;
  std::uint64_t memory_mib = 0;     // 0: no limit
  std::uint64_t cpu_seconds = 0;    // 0: no limit
  std::uint32_t kill_grace_ms = 0;  // SIGTERM to SIGKILL of the agent's group
  std::string plugin_path;          // the library as found in the agent's folder
  std::string plugin_name;          // the manifest's name, checked by the loader
  std::string instance_id;
  std::string workspace;
  std::string params_json;
  std::optional<std::string> task;
};

struct HelloFrame {
  std::uint32_t version = kProtocolVersion;
  std::uint32_t pid = 0;
};

struct LogFrame {
  std::int32_t level = 0;
  std::string text;
};

struct UsageFrame {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
};

struct ExitFrame {
  enum class How : std::uint8_t { exited = 0, signaled = 1 };
  How how = How::exited;
  std::int32_t code = 0;          // the exit status, or the signal
  std::uint64_t cpu_ms = 0;       // CPU time the agent process used
  bool memory_exhausted = false;  // an allocation failed under the memory limit
  bool killed = false;            // the keeper killed the agent (stop escalation, host gone)
};

std::string encode(const StartFrame& frame);
std::string encode(const HelloFrame& frame);
std::string encode(const LogFrame& frame);
std::string encode_progress(double fraction);
std::string encode(const UsageFrame& frame);
std::string encode_done(std::int32_t rc);
std::string encode(const ExitFrame& frame);
// Frames whose payload is a text alone (message, result, error, load_failed).
std::string encode_text(FrameType type, std::string_view text);
std::string encode_empty(FrameType type);

// Each throws ProtocolError when the payload is not exactly its type's.
StartFrame decode_start(std::string_view payload);
HelloFrame decode_hello(std::string_view payload);
LogFrame decode_log(std::string_view payload);
double decode_progress(std::string_view payload);
UsageFrame decode_usage(std::string_view payload);
std::int32_t decode_done(std::string_view payload);
ExitFrame decode_exit(std::string_view payload);
void decode_empty(std::string_view payload);

}  // namespace nightshift::isolation
