// Fuzz target: a model server's whole (non-streamed) answer from raw bytes,
// through the llm agent's parse_answer and describe_error_body. Whatever the
// bytes, it returns or refuses with BadAnswer; what it accepts can be sent
// back to the server as JSON.
#include <boost/json/string.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat.hpp"
#include "fuzz_check.hpp"
#include "model/utf8.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  // The description may hold any bytes the server sent (cut at a length);
  // the host cleans an agent's text to UTF-8 at the boundary, after which
  // it must be storable.
  nightshift::fuzz::expect_storable(
      boost::json::string(nightshift::to_valid_utf8(nightshift::llm::describe_error_body(body))),
      "error description");
  try {
    const nightshift::llm::Answer answer = nightshift::llm::parse_answer(body);
    nightshift::fuzz::expect_storable(boost::json::string(answer.content), "answer text");
    for (const auto& call : answer.tool_calls) {
      nightshift::fuzz::expect_storable(boost::json::string(call.arguments), "tool arguments");
    }
  } catch (const nightshift::llm::BadAnswer&) {
    // Not an answer: the run is told so.
  }
  return 0;
}
