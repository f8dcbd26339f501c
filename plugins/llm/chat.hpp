// The model's answers in the chat completions format: assembled from a
// stream of chunks (SSE events) or read from one JSON document, and turned
// back into the assistant message the next request carries.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift::llm {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the model wrote it
};

struct Usage {
  std::uint64_t prompt = 0;
  std::uint64_t completion = 0;
};

struct Answer {
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;  // empty when the server gave none
  std::optional<Usage> usage;
};

// An answer that cannot be understood: not JSON, not the expected shape, or
// an error the server reported in place of an answer.
class BadAnswer : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds one answer from the chunks of a streamed one, in order. Tool calls
// arrive in fragments keyed by `index`; some servers send each of several
// parallel calls whole, every one with index 0, so a fragment that names an
// id not seen yet starts a new call whatever its index, and one without an
// id continues the latest call with its index. Usage may come on several
// chunks (the finishing one and a last one with no choices): each holds the
// whole answer's counts, so the last one seen is kept, never a sum.
class StreamAccumulator {
 public:
  using OnText = std::function<void(std::string_view)>;

  // One event's data: a chunk, or "[DONE]". Text pieces go to on_text.
  // Throws BadAnswer.
  void apply(std::string_view data, const OnText& on_text);

  bool done() const noexcept { return done_; }                               // "[DONE]" came
  bool finished() const noexcept { return !answer_.finish_reason.empty(); }  // a finish_reason came
  Answer take() { return std::move(answer_); }

 private:
  void apply_tool_call(const boost::json::object& delta);

  Answer answer_;
  std::vector<std::optional<std::int64_t>> indexes_;  // beside answer_.tool_calls
  bool done_ = false;
};

// A whole (non-streamed) answer. Throws BadAnswer.
Answer parse_answer(std::string_view body);

// What an error answer's body says, short: the message of an OpenAI-style
// {"error": {"message": ...}} body, or the start of the text.
std::string describe_error_body(std::string_view body);

// The assistant message that records `answer` in the conversation.
boost::json::object assistant_message(const Answer& answer);

}  // namespace nightshift::llm
