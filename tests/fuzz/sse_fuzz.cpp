// Fuzz target: a model server's streamed answer (SSE) from raw bytes, cut
// into chunks where the input says, through the llm agent's SseParser and
// StreamAccumulator (tool-call fragments keyed by index and id, usage
// counted once). Whatever the bytes, parsing returns, or refuses with
// BadAnswer or std::length_error; what it accepts is an answer whose text
// and tool calls can be sent back to the server as JSON.
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "chat.hpp"
#include "fuzz_check.hpp"
#include "sse_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte says how the stream is cut into reads (1..256 bytes).
  const std::size_t cut = static_cast<std::size_t>(data[0]) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  nightshift::llm::SseParser parser(64 * 1024);
  nightshift::llm::StreamAccumulator answer;
  std::string text;
  const auto on_event = [&](std::string_view event) {
    if (!answer.done()) answer.apply(event, [&](std::string_view piece) { text += piece; });
  };
  try {
    for (std::size_t at = 0; at < stream.size(); at += cut) {
      parser.feed(stream.substr(at, cut), on_event);
    }
    parser.finish(on_event);
    const nightshift::llm::Answer whole = answer.take();
    if (whole.content.size() > text.size() && answer.done()) {
      nightshift::fuzz::fail("the answer holds more text than was streamed");
    }
    for (const auto& call : whole.tool_calls) {
      nightshift::fuzz::expect_storable(boost::json::string(call.name), "tool name");
      nightshift::fuzz::expect_storable(boost::json::string(call.arguments), "tool arguments");
    }
    nightshift::fuzz::expect_storable(boost::json::string(whole.content), "answer text");
  } catch (const nightshift::llm::BadAnswer&) {
    // Not an answer: the run is told so.
  } catch (const std::length_error&) {
    // A line past the parser's bound.
  }
  return 0;
}
