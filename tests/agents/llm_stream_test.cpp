// The llm agent's stream parsing on its own (nightshift_llm_core): SSE split
// at every possible point, and answers assembled from chunks.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "chat.hpp"
#include "sse_parser.hpp"

namespace {

using nightshift::llm::Answer;
using nightshift::llm::BadAnswer;
using nightshift::llm::SseParser;
using nightshift::llm::StreamAccumulator;

std::vector<std::string> parse_in_pieces(const std::string& stream, std::size_t piece) {
  SseParser parser;
  std::vector<std::string> events;
  const auto on_event = [&](std::string_view data) { events.emplace_back(data); };
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    parser.feed(std::string_view(stream).substr(at, piece), on_event);
  }
  parser.finish(on_event);
  return events;
}

TEST(SseParser, GivesTheSameEventsHoweverTheStreamIsCut) {
  const std::string stream =
      "\xEF\xBB\xBF: a comment\r\nevent: x\r\ndata: {\"a\": \"\xC3\xA9\"}\r\n\r\n"
      "data:first\ndata: second\n\nid: 7\rdata: cr only\r\rdata: [DONE]\n\n";
  const std::vector<std::string> expected{"{\"a\": \"\xC3\xA9\"}", "first\nsecond", "cr only",
                                          "[DONE]"};
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    EXPECT_EQ(parse_in_pieces(stream, piece), expected) << "pieces of " << piece << " bytes";
  }
}

TEST(SseParser, AnEventWithoutItsBlankLineIsGivenAtTheEnd) {
  EXPECT_EQ(parse_in_pieces("data: last", 3), std::vector<std::string>{"last"});
  EXPECT_EQ(parse_in_pieces("\xEF\xBB", 1), std::vector<std::string>{});
}

TEST(SseParser, RefusesAnEndlessLine) {
  SseParser parser(64);
  EXPECT_THROW(parser.feed(std::string(100, 'x'), [](std::string_view) {}), std::length_error);
}

TEST(StreamAccumulator, CountsUsageOnceAndKeysToolCallsOnIndexAndId) {
  StreamAccumulator accumulator;
  std::string text;
  const auto on_text = [&](std::string_view piece) { text += piece; };
  for (
      const char* chunk :
      {R"({"choices":[{"delta":{"content":"Hi"}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"read_file","arguments":"{\"pa"}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\":1}"}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"b","function":{"name":"search","arguments":"{}"}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c","function":{"name":"list_files","arguments":""}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}}]})",
       R"({"choices":[{"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":7,"completion_tokens":3}})",
       R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}})", "[DONE]"}) {
    accumulator.apply(chunk, on_text);
  }
  EXPECT_TRUE(accumulator.done());
  const Answer answer = accumulator.take();
  EXPECT_EQ(text, "Hi");
  EXPECT_EQ(answer.content, "Hi");
  EXPECT_EQ(answer.finish_reason, "tool_calls");
  ASSERT_TRUE(answer.usage.has_value());
  EXPECT_EQ(answer.usage->prompt, 7u);
  EXPECT_EQ(answer.usage->completion, 3u);
  ASSERT_EQ(answer.tool_calls.size(), 3u);
  EXPECT_EQ(answer.tool_calls[0].id, "a");
  EXPECT_EQ(answer.tool_calls[0].arguments, "{\"path\":1}");
  EXPECT_EQ(answer.tool_calls[1].id, "b");
  EXPECT_EQ(answer.tool_calls[1].name, "search");
  EXPECT_EQ(answer.tool_calls[1].arguments, "{}");
  EXPECT_EQ(answer.tool_calls[2].id, "c");
  EXPECT_EQ(answer.tool_calls[2].arguments, "{}");
}

TEST(StreamAccumulator, AnErrorChunkOrTextThatIsNotJsonIsABadAnswer) {
  StreamAccumulator accumulator;
  EXPECT_THROW(accumulator.apply("not json", {}), BadAnswer);
  EXPECT_THROW(accumulator.apply(R"({"error":{"message":"overloaded"}})", {}), BadAnswer);
}

TEST(ParseAnswer, ReadsAWholeAnswer) {
  const Answer answer = nightshift::llm::parse_answer(
      R"({"choices":[{"message":{"content":null,"tool_calls":[{"id":"x","type":"function","function":{"name":"search","arguments":"{\"pattern\":\"a\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":2}})");
  ASSERT_EQ(answer.tool_calls.size(), 1u);
  EXPECT_EQ(answer.tool_calls[0].name, "search");
  EXPECT_EQ(answer.usage->prompt, 5u);
  EXPECT_THROW(nightshift::llm::parse_answer(R"({"choices":[]})"), BadAnswer);
}

// Found by the answer fuzzer: a token count past what an integer holds was
// converted from a double (undefined behaviour); it is capped instead.
TEST(ParseAnswer, AnAbsurdTokenCountIsCappedNotOverflowed) {
  const Answer answer = nightshift::llm::parse_answer(
      R"({"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5.9e119,"completion_tokens":-3}})");
  ASSERT_TRUE(answer.usage);
  EXPECT_EQ(answer.usage->prompt, 1000000000000000u);
  EXPECT_EQ(answer.usage->completion, 0u);
}

}  // namespace
