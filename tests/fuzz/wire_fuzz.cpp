// Fuzz target: what API clients send that the wire layer parses itself: a
// WebSocket client message (subscribe, unsubscribe, ping), a start body and a
// message body. The first byte picks the parser, the rest is the text. Each
// parser must answer with a value or its ApiError, never crash or throw
// anything else; what it accepts must hold what the contract promises.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "api/api_error.hpp"
#include "api/wire.hpp"
#include "fuzz_check.hpp"

namespace wire = nightshift::api::wire;
using nightshift::fuzz::expect_storable;
using nightshift::fuzz::fail;

namespace {

constexpr std::size_t kMaxTask = 4096;
constexpr std::size_t kMaxText = 512;

void client_message(std::string_view text) {
  const wire::ClientMessage message = wire::parse_client_message(text);
  if (const auto* subscribe = std::get_if<wire::SubscribeMessage>(&message)) {
    // What was accepted reads back the same when sent again.
    boost::json::object again{
        {"type", "subscribe"}, {"instanceId", subscribe->instance_id}, {"after", subscribe->after}};
    const auto reparsed = wire::parse_client_message(boost::json::serialize(again));
    const auto* same = std::get_if<wire::SubscribeMessage>(&reparsed);
    if (same == nullptr || same->instance_id != subscribe->instance_id ||
        same->after != subscribe->after) {
      fail("an accepted subscribe message does not read back the same");
    }
  } else if (const auto* bad = std::get_if<wire::BadMessage>(&message)) {
    if (bad->reason.empty()) fail("a bad message without a reason");
  }
}

void start_body(std::string_view text) {
  try {
    const nightshift::StartRequest request = wire::parse_start_body(text, kMaxTask);
    if (request.agent_id.empty()) fail("a start accepted without an agentId");
    if (request.task && request.task->size() > kMaxTask) fail("a task over its bound accepted");
    expect_storable(request.params, "start params that cannot be stored");
  } catch (const nightshift::api::ApiError& refused) {
    if (refused.code().empty() || std::string_view(refused.what()).empty()) {
      fail("a refusal without a code or a message");
    }
  }
}

void message_body(std::string_view text) {
  try {
    const std::string accepted = wire::parse_message_body(text, kMaxText);
    if (accepted.empty() || accepted.size() > kMaxText) fail("a message text out of bounds");
  } catch (const nightshift::api::ApiError& refused) {
    if (std::string_view(refused.what()).empty()) fail("a refusal without a message");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      client_message(text);
      break;
    case 1:
      start_body(text);
      break;
    default:
      message_body(text);
      break;
  }
  return 0;
}
