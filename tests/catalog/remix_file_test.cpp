// Reading a remix file: front matter, YAML values as JSON, the body.
#include "catalog/remix_file.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

namespace nightshift {
namespace {

namespace json = boost::json;

TEST(RemixFile, ReadsFrontMatterParamsLimitsAndBody) {
  const RemixFile remix = parse_remix(R"(---
name: quick-nap            # a comment
description: A two-second sleep.
base: installed:sleep
version: 1.0.0
params:
  seconds: 2
  ratio: 0.5
  label: "007"
  quiet: true
  nothing: ~
  list: [1, two, 3.5]
  nested: {a: 1, b: yes}
limits:
  timeoutSeconds: 60
---

Sleep briefly.
Then wake.

)",
                                      "file-stem");
  ASSERT_FALSE(remix.error) << *remix.error;
  EXPECT_EQ(remix.name, "quick-nap");
  EXPECT_EQ(remix.description, "A two-second sleep.");
  EXPECT_EQ(remix.base, "installed:sleep");
  EXPECT_EQ(remix.version, "1.0.0");
  EXPECT_EQ(remix.limits.timeout_seconds, 60.0);
  EXPECT_EQ(remix.instructions, "Sleep briefly.\nThen wake.");
  // Plain scalars are typed as YAML 1.2's core schema says; quoted ones and
  // words YAML 1.1 would call booleans ("yes") stay strings.
  EXPECT_EQ(json::value(remix.params), json::parse(R"({
    "seconds": 2, "ratio": 0.5, "label": "007", "quiet": true, "nothing": null,
    "list": [1, "two", 3.5], "nested": {"a": 1, "b": "yes"}})"));
  EXPECT_TRUE(remix.params.at("seconds").is_int64());
}

TEST(RemixFile, NameDefaultsToTheFileStem) {
  const RemixFile remix = parse_remix("---\nbase: installed:echo\n---\n", "my-remix");
  ASSERT_FALSE(remix.error) << *remix.error;
  EXPECT_EQ(remix.name, "my-remix");
  EXPECT_EQ(remix.instructions, "");
}

TEST(RemixFile, MalformedYamlIsAnErrorNamingTheLine) {
  const RemixFile remix =
      parse_remix("---\nbase: installed:echo\nparams: [1, 2\n---\nbody\n", "broken");
  ASSERT_TRUE(remix.error);
  EXPECT_NE(remix.error->find("not valid YAML"), std::string::npos) << *remix.error;
  EXPECT_NE(remix.error->find("line "), std::string::npos) << *remix.error;
  EXPECT_EQ(remix.name, "broken");
}

TEST(RemixFile, MissingOrUnclosedFrontMatterIsAnError) {
  EXPECT_NE(parse_remix("just text\n", "x").error.value_or("").find("no front matter"),
            std::string::npos);
  EXPECT_NE(parse_remix("---\nbase: installed:echo\n", "x").error.value_or("").find("not closed"),
            std::string::npos);
}

TEST(RemixFile, ReadsTheAutomationLimits) {
  const RemixFile remix = parse_remix(
      "---\nbase: installed:sleep\nlimits:\n  retries: 3\n  retryBackoffSeconds: 0.5\n"
      "  maxConcurrent: 2\n---\n",
      "x");
  ASSERT_FALSE(remix.error) << *remix.error;
  EXPECT_EQ(remix.limits.automation.retries, 3u);
  EXPECT_EQ(remix.limits.automation.retry_backoff_seconds, 0.5);
  EXPECT_EQ(remix.limits.automation.max_concurrent, 2u);
  for (const char* bad : {"retries: -1", "retries: 1.5", "maxConcurrent: 0",
                          "retryBackoffSeconds: -2", "retries: many"}) {
    const RemixFile refused =
        parse_remix(std::string("---\nbase: installed:sleep\nlimits:\n  ") + bad + "\n---\n", "x");
    ASSERT_TRUE(refused.error) << bad;
    EXPECT_NE(refused.error->find(std::string(bad).substr(0, std::string(bad).find(':'))),
              std::string::npos)
        << *refused.error;
  }
}

TEST(RemixFile, MistypedFieldsAreErrors) {
  EXPECT_NE(parse_remix("---\nbase: installed:echo\nparams: 3\n---\n", "x")
                .error.value_or("")
                .find("'params' must be a mapping"),
            std::string::npos);
  EXPECT_NE(parse_remix("---\nbase: installed:echo\nlimits: {timeoutSeconds: -1}\n---\n", "x")
                .error.value_or("")
                .find("timeoutSeconds"),
            std::string::npos);
  EXPECT_NE(parse_remix("---\ndescription: no base\n---\n", "x").error.value_or("").find("base"),
            std::string::npos);
  EXPECT_NE(parse_remix("---\n- a\n- b\n---\n", "x").error.value_or("").find("mapping"),
            std::string::npos);
}

std::string error_of(const std::string& text) {
  return parse_remix(text, "x").error.value_or("(no error)");
}

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

TEST(RemixFile, BillionLaughsIsRefusedBeforeItGrows) {
  // 589 bytes that would expand to 387,420,489 strings: refused after the
  // first 100,000 values, so this finishes at once in a few MB.
  const RemixFile remix =
      read_remix_file(std::filesystem::path(CATALOG_TEST_DATA_DIR) / "billion-laughs.md");
  ASSERT_TRUE(remix.error);
  EXPECT_EQ(*remix.error,
            "the front matter expands to more than 100000 values (each use of a YAML alias "
            "repeats what it names; line 6)");
  EXPECT_EQ(remix.name, "billion-laughs");
}

TEST(RemixFile, AliasesThatRepeatMuchTextAreRefused) {
  // Few values, but each a copy of one 32 KiB string.
  std::string text =
      "---\nbase: installed:echo\nbig: &big " + std::string(32 * 1024, 'x') + "\ncopies: [";
  for (int i = 0; i < 40; ++i) text += "*big, ";
  text += "*big]\n---\n";
  EXPECT_CONTAINS(error_of(text), "the front matter expands to more than 1 MiB of text");
}

TEST(RemixFile, AFewAliasesStillWork) {
  const RemixFile remix = parse_remix(R"(---
base: installed:echo
shared: &shared {color: blue, size: 3}
params:
  first: *shared
  second: [*shared, *shared]
---
)",
                                      "x");
  ASSERT_FALSE(remix.error) << *remix.error;
  EXPECT_EQ(json::value(remix.params), json::parse(R"({"first": {"color": "blue", "size": 3},
    "second": [{"color": "blue", "size": 3}, {"color": "blue", "size": 3}]})"));
}

TEST(RemixFile, AliasInsideWhatItNamesIsRefusedNotFollowedForever) {
  // yaml-cpp makes a cycle of this: the sequence contains itself.
  EXPECT_EQ(error_of("---\nbase: installed:echo\nloop: &loop [1, *loop]\n---\n"),
            "the front matter has an alias that names a mapping or sequence containing it "
            "(line 3)");
  EXPECT_CONTAINS(error_of("---\nbase: installed:echo\nloop: &m {a: {b: *m}}\n---\n"),
                  "names a mapping or sequence containing it");
}

TEST(RemixFile, DeepNestingAndBigFrontMatterAreRefused) {
  auto nested = [](int depth) {
    return "---\nbase: installed:echo\nparams: {deep: " + std::string(depth, '[') +
           std::string(depth, ']') + "}\n---\n";
  };
  // 62 levels of sequences under the root mapping and params: 64 in all.
  EXPECT_EQ(parse_remix(nested(62), "x").error, std::nullopt);
  EXPECT_CONTAINS(error_of(nested(63)),
                  "the front matter nests mappings and sequences deeper than 64 levels");
  // Deeper than yaml-cpp's own parser goes: its refusal, not a crash.
  EXPECT_CONTAINS(error_of(nested(5000)), "not valid YAML");

  const std::string big =
      "---\nbase: installed:echo\ndescription: " + std::string(64 * 1024, 'x') + "\n---\n";
  EXPECT_EQ(error_of(big), "the front matter is larger than 64 KiB");
}

TEST(RemixFile, NumbersJsonCannotCarryAreRefusedNamingTheirPath) {
  EXPECT_EQ(error_of("---\nbase: installed:echo\nparams:\n  seconds: 1e400\n---\n"),
            "params.seconds is not a finite number");
  EXPECT_EQ(error_of("---\nbase: installed:echo\nparams:\n  list: [1, -2.5e999]\n---\n"),
            "params.list[1] is not a finite number");
  EXPECT_EQ(
      error_of("---\nbase: installed:echo\nparams:\n  n: " + std::string(400, '9') + "\n---\n"),
      "params.n is an integer too large to carry exactly (at most 64 bits)");
  EXPECT_EQ(error_of("---\nbase: installed:echo\nparams:\n  n: -9223372036854775809\n---\n"),
            "params.n is an integer too large to carry exactly (at most 64 bits)");
  EXPECT_EQ(error_of("---\nbase: installed:echo\nlimits: {timeoutSeconds: 1e400}\n---\n"),
            "limits.timeoutSeconds is not a finite number");
  // A huge but finite timeout would overflow the host's milliseconds.
  EXPECT_CONTAINS(error_of("---\nbase: installed:echo\nlimits: {timeoutSeconds: 1e300}\n---\n"),
                  "at most 31536000 (a year)");
  // A scalar of 60,000 digits is read without a regular expression's deep
  // recursion.
  EXPECT_EQ(
      error_of("---\nbase: installed:echo\nparams:\n  n: " + std::string(60'000, '7') + "\n---\n"),
      "params.n is an integer too large to carry exactly (at most 64 bits)");
}

TEST(RemixFile, TextThatIsNotUtf8IsRefused) {
  // Found by the remix fuzzer: a key of bytes that are not UTF-8 made params
  // whose JSON no parser reads back.
  EXPECT_EQ(error_of("---\nbase: installed:echo\nparams:\n  \x9b\x9b: 1\n---\n"),
            "the file is not valid UTF-8 (at byte 35); a remix is UTF-8 text");
  EXPECT_EQ(error_of("---\nbase: installed:echo\n---\nbody \xC0\xAF overlong\n"),
            "the file is not valid UTF-8 (at byte 34); a remix is UTF-8 text");
  EXPECT_EQ(error_of("---\nbase: installed:echo\n---\n\xED\xA0\x80 a surrogate\n"),
            "the file is not valid UTF-8 (at byte 29); a remix is UTF-8 text");
  // Valid multi-byte text is fine, in keys, values and the body.
  const RemixFile remix = parse_remix(
      "---\nbase: installed:echo\nparams:\n  \xC3\xA9t\xC3\xA9: \xF0\x9F\x98\x80\n"
      "---\nCaf\xC3\xA9\n",
      "x");
  ASSERT_FALSE(remix.error) << *remix.error;
  EXPECT_EQ(remix.params.at("\xC3\xA9t\xC3\xA9"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(remix.instructions, "Caf\xC3\xA9");
}

TEST(RemixFile, NumbersAtTheEdgesOfWhatJsonCarries) {
  const RemixFile remix = parse_remix(R"(---
base: installed:echo
params:
  biggest: 18446744073709551615
  smallest: -9223372036854775808
  plus: +12
  tiny: 1e-400
  point: 5.
  fraction: .5
  words: [.inf, .nan, 1e, 1.2.3, "1e400"]
---
)",
                                      "x");
  ASSERT_FALSE(remix.error) << *remix.error;
  EXPECT_EQ(remix.params.at("biggest").as_uint64(), 18446744073709551615u);
  EXPECT_EQ(remix.params.at("smallest").as_int64(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(remix.params.at("plus").as_int64(), 12);
  EXPECT_EQ(remix.params.at("tiny").as_double(), 0.0);
  EXPECT_EQ(remix.params.at("point").as_double(), 5.0);
  EXPECT_EQ(remix.params.at("fraction").as_double(), 0.5);
  EXPECT_EQ(remix.params.at("words"), json::parse(R"([".inf", ".nan", "1e", "1.2.3", "1e400"])"));
}

}  // namespace
}  // namespace nightshift
