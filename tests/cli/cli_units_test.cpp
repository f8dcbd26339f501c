// The client's pure pieces, without a host: formatting, --param parsing,
// id prefixes and the remix file it writes.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

#include "cli/exit_codes.hpp"
#include "cli/format.hpp"
#include "cli/params.hpp"
#include "cli/remix_writer.hpp"
#include "cli/resolve.hpp"
#include "test_support.hpp"

namespace nightshift::cli {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

TEST(CliFormat, DurationsReadTheWayPeopleSayThem) {
  EXPECT_EQ(format_duration(0), "0ms");
  EXPECT_EQ(format_duration(450), "450ms");
  EXPECT_EQ(format_duration(3200), "3.2s");
  EXPECT_EQ(format_duration(42'000), "42s");
  EXPECT_EQ(format_duration(192'000), "3m 12s");
  EXPECT_EQ(format_duration(2 * 3600'000 + 5 * 60'000), "2h 05m");
  EXPECT_EQ(format_duration(3 * 86400'000LL + 4 * 3600'000), "3d 4h");
}

TEST(CliFormat, TimestampsParseAsUtcWithMilliseconds) {
  const auto parsed = parse_timestamp("2026-11-24T05:46:31.482Z");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::milliseconds>(parsed->time_since_epoch()).count(),
      1795499191482);
  EXPECT_FALSE(parse_timestamp("yesterday"));
}

TEST(CliFormat, RecentTimesAreRelative) {
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(format_relative(now - 1s, now), "just now");
  EXPECT_EQ(format_relative(now - 42s, now), "42 s ago");
  EXPECT_EQ(format_relative(now - 2min - 5s, now), "2 min ago");
  EXPECT_EQ(format_relative(now - 3h, now), "3 h ago");
  EXPECT_EQ(format_relative(now - 72h, now), format_local(now - 72h).substr(0, 16));
}

TEST(CliFormat, ZonedTimesNameTheTerminalsZone) {
  const char* saved = std::getenv("TZ");
  const std::optional<std::string> previous =
      saved ? std::optional<std::string>(saved) : std::nullopt;
  ::setenv("TZ", "America/New_York", 1);
  ::tzset();
  const auto when = parse_timestamp("2026-12-03T02:00:00.000Z");
  ASSERT_TRUE(when);
  EXPECT_EQ(format_local_zoned(*when), "2026-12-02 21:00:00 EST");
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  EXPECT_EQ(format_local_zoned(*when), "2026-12-03 02:00:00 UTC");
  if (previous) {
    ::setenv("TZ", previous->c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
}

TEST(CliFormat, LongTextIsCutToOneLineWithAnEllipsis) {
  EXPECT_EQ(truncate_text("short", 10), "short");
  EXPECT_EQ(truncate_text("two\nlines", 20), "two lines");
  EXPECT_EQ(truncate_text("abcdefghij", 5), "abcd…");
  EXPECT_EQ(truncate_text("ééééé", 3), "éé…");
  EXPECT_EQ(display_width("éé…"), 3u);
}

TEST(CliFormat, TablesAlignColumnsWithoutTrailingBlanks) {
  Table table({"ID", "STATUS", "TASK"});
  table.add_row({{"abc"}, {"running", Style::cyan}, {""}});
  table.add_row({{"a"}, {"done"}, {"x"}});
  std::ostringstream out;
  table.print(out, false);
  EXPECT_EQ(out.str(),
            "ID   STATUS   TASK\n"
            "abc  running\n"
            "a    done     x\n");
}

TEST(CliFormat, ColourOnlyWhenAsked) {
  EXPECT_EQ(paint("x", Style::red, false), "x");
  EXPECT_EQ(paint("x", Style::red, true), "\033[31mx\033[0m");
}

TEST(CliParams, ValuesAreJsonWhenTheyParseElseStrings) {
  const auto params = parse_params({"n=5", "f=1.5", "b=true", "s=hello world", "q=\"5\"",
                                    "o={\"k\":[1]}", "a.b.c=1", "a.b.d=x", "empty="});
  EXPECT_EQ(params.at("n"), 5);
  EXPECT_EQ(params.at("f"), 1.5);
  EXPECT_EQ(params.at("b"), true);
  EXPECT_EQ(params.at("s"), "hello world");
  EXPECT_EQ(params.at("q"), "5");
  EXPECT_EQ(params.at("o").at("k").at(0), 1);
  EXPECT_EQ(params.at("a").at("b").at("c"), 1);
  EXPECT_EQ(params.at("a").at("b").at("d"), "x");
  EXPECT_EQ(params.at("empty"), "");
}

TEST(CliParams, MalformedArgumentsAreUsageErrors) {
  for (const std::string bad : {"no-equals", "=value", "a..b=1"}) {
    try {
      parse_params({bad});
      ADD_FAILURE() << bad << " was accepted";
    } catch (const CliError& error) {
      EXPECT_EQ(error.code(), ExitCode::usage) << bad;
    }
  }
  EXPECT_THROW(parse_params({"a=1", "a.b=2"}), CliError);
}

TEST(CliIds, TheShownPrefixIsTheShortestUniqueOneOfAtLeastEight) {
  EXPECT_EQ(unique_prefix_length({}), 8u);
  EXPECT_EQ(unique_prefix_length({"0190aaaa-1111", "0190bbbb-2222"}), 8u);
  EXPECT_EQ(unique_prefix_length({"0190aaaa-1111", "0190aaaa-2222", "ffff"}), 10u);
}

TEST(CliRemix, NamesFollowTheAgentNamePattern) {
  EXPECT_TRUE(is_valid_agent_name("quick-nap"));
  EXPECT_TRUE(is_valid_agent_name("a1.b_c-d"));
  EXPECT_TRUE(is_valid_agent_name(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_agent_name(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_agent_name("Upper"));
  EXPECT_FALSE(is_valid_agent_name(".hidden"));
  EXPECT_FALSE(is_valid_agent_name(""));
}

TEST(CliRemix, TheFileIsFrontMatterThenInstructions) {
  RemixSpec spec;
  spec.name = "quick-nap";
  spec.base_agent = "installed:sleep";
  spec.description = "A \"short\" nap";
  spec.params = parse_params({"seconds=0.5", "nested.key=v"});
  spec.instructions = "Sleep briefly.";
  EXPECT_EQ(render_remix(spec),
            "---\n"
            "name: \"quick-nap\"\n"
            "description: \"A \\\"short\\\" nap\"\n"
            "base: \"installed:sleep\"\n"
            "version: 1.0.0\n"
            "params:\n"
            "  seconds: 0.5\n"
            "  nested: {\"key\": \"v\"}\n"
            "---\n"
            "Sleep briefly.\n");
}

TEST(CliRemix, WritingRefusesToOverwriteUnlessAsked) {
  testing::TempDir workspace;
  RemixSpec spec;
  spec.name = "nap";
  spec.base_agent = "installed:sleep";
  const auto path = write_remix(workspace.path(), spec, false);
  EXPECT_EQ(path, workspace.path() / ".nightshift" / "remix" / "nap.md");
  try {
    write_remix(workspace.path(), spec, false);
    ADD_FAILURE() << "overwrote without being asked";
  } catch (const CliError& error) {
    EXPECT_EQ(error.code(), ExitCode::already_exists);
  }
  spec.instructions = "new body";
  write_remix(workspace.path(), spec, true);
  EXPECT_NE(testing::read_file(path).find("new body"), std::string::npos);
}

}  // namespace
}  // namespace nightshift::cli
