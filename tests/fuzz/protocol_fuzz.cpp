// Fuzz target: the byte stream a worker process sends the host (process
// isolation). Whatever the bytes, the decoder hands out whole frames or
// throws ProtocolError, never holds more than one frame over the cap, and
// each frame's payload decodes or throws ProtocolError; a frame that
// decodes encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "isolation/protocol.hpp"

namespace iso = nightshift::isolation;

namespace {

void decode_payload(const iso::Frame& frame) {
  using iso::FrameType;
  std::string again;
  switch (frame.type) {
    case FrameType::start:
      again = iso::encode(iso::decode_start(frame.payload));
      break;
    case FrameType::hello:
      again = iso::encode(iso::decode_hello(frame.payload));
      break;
    case FrameType::log:
      again = iso::encode(iso::decode_log(frame.payload));
      break;
    case FrameType::progress:
      again = iso::encode_progress(iso::decode_progress(frame.payload));
      break;
    case FrameType::usage:
      again = iso::encode(iso::decode_usage(frame.payload));
      break;
    case FrameType::done:
      again = iso::encode_done(iso::decode_done(frame.payload));
      break;
    case FrameType::exit:
      again = iso::encode(iso::decode_exit(frame.payload));
      break;
    case FrameType::stop:
      iso::decode_empty(frame.payload);
      again = iso::encode_empty(frame.type);
      break;
    default:
      again = iso::encode_text(frame.type, frame.payload);
      break;
  }
  if (again != iso::encode_frame(frame.type, frame.payload)) {
    nightshift::fuzz::fail("a decoded frame does not encode back to its bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  iso::FrameDecoder decoder;
  try {
    // In uneven pieces, as a socket delivers them.
    std::size_t piece = 1;
    while (!bytes.empty()) {
      const std::size_t n = std::min(piece, bytes.size());
      decoder.feed(bytes.substr(0, n));
      bytes.remove_prefix(n);
      piece = piece * 3 + 1;
      while (auto frame = decoder.next()) {
        if (frame->payload.size() > iso::kMaxPayload) nightshift::fuzz::fail("frame over the cap");
        try {
          decode_payload(*frame);
        } catch (const iso::ProtocolError&) {
          // A malformed payload: the host ends the run.
        }
      }
      if (decoder.buffered() > iso::kMaxPayload + iso::kHeaderSize) {
        nightshift::fuzz::fail("the decoder holds more than one frame");
      }
    }
    decoder.finish();
  } catch (const iso::ProtocolError&) {
    // A broken stream: the host ends the run.
  }
  return 0;
}
