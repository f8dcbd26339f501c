// Reading a remix file: front matter, YAML values as JSON, the body.
#include "catalog/remix_file.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

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
  EXPECT_EQ(remix.timeout_seconds, 60.0);
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

}  // namespace
}  // namespace nightshift
