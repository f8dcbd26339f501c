// Cron next times against tables worked out by hand from the zone rules:
// fields, lists, ranges, steps, names, the day-of-month/day-of-week rule,
// the shorthands, and daylight-saving changes in Europe/Berlin (2026: clocks
// go 02:00 -> 03:00 on 29 March, 03:00 -> 02:00 on 25 October, both at
// 01:00 UTC) and America/New_York (2026: 02:00 -> 03:00 EST->EDT on 8 March
// at 07:00 UTC, 02:00 -> 01:00 EDT->EST on 1 November at 06:00 UTC).
#include "automation/cron.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "model/run.hpp"

namespace nightshift {
namespace {

SysSeconds at(const char* rfc3339) {
  const auto parsed = parse_rfc3339(rfc3339);
  EXPECT_TRUE(parsed) << rfc3339;
  return std::chrono::floor<std::chrono::seconds>(*parsed);
}

std::string text(SysSeconds t) {
  return format_rfc3339(std::chrono::time_point_cast<std::chrono::milliseconds>(t));
}

// The next `count` times after `after`, as RFC 3339 text.
std::vector<std::string> next_times(const char* cron, const char* zone, const char* after,
                                    int count) {
  const CronSchedule schedule(cron, zone);
  std::vector<std::string> out;
  SysSeconds t = at(after);
  for (int i = 0; i < count; ++i) {
    const auto next = schedule.next_after(t);
    if (!next) {
      out.emplace_back("none");
      break;
    }
    out.push_back(text(*next));
    t = *next;
  }
  return out;
}

using Times = std::vector<std::string>;

TEST(CronTest, EveryFifteenMinutesInUtc) {
  EXPECT_EQ(next_times("*/15 * * * *", "UTC", "2026-05-04T10:07:30.000Z", 4),
            (Times{"2026-05-04T10:15:00.000Z", "2026-05-04T10:30:00.000Z",
                   "2026-05-04T10:45:00.000Z", "2026-05-04T11:00:00.000Z"}));
}

TEST(CronTest, NextTimeIsStrictlyAfterEvenOnAMatchingMinute) {
  EXPECT_EQ(next_times("30 * * * *", "UTC", "2026-05-04T10:30:00.000Z", 1),
            (Times{"2026-05-04T11:30:00.000Z"}));
}

TEST(CronTest, RangesWithStepsOnWeekdays) {
  // 9, 11, 13, 15, 17 o'clock, Monday to Friday; 2026-05-08 is a Friday.
  EXPECT_EQ(next_times("0 9-17/4 * * 1-5", "UTC", "2026-05-08T12:00:00.000Z", 4),
            (Times{"2026-05-08T13:00:00.000Z", "2026-05-08T17:00:00.000Z",
                   "2026-05-11T09:00:00.000Z", "2026-05-11T13:00:00.000Z"}));
}

TEST(CronTest, ListsAndNames) {
  EXPECT_EQ(next_times("5,35 6 1,15 jan,Jul *", "UTC", "2026-01-01T07:00:00.000Z", 4),
            (Times{"2026-01-15T06:05:00.000Z", "2026-01-15T06:35:00.000Z",
                   "2026-07-01T06:05:00.000Z", "2026-07-01T06:35:00.000Z"}));
  EXPECT_EQ(next_times("0 12 * * SAT,sun", "UTC", "2026-05-04T00:00:00.000Z", 2),
            (Times{"2026-05-09T12:00:00.000Z", "2026-05-10T12:00:00.000Z"}));
}

TEST(CronTest, SundayIsZeroOrSeven) {
  EXPECT_EQ(next_times("0 0 * * 7", "UTC", "2026-05-04T00:00:00.000Z", 1),
            next_times("0 0 * * 0", "UTC", "2026-05-04T00:00:00.000Z", 1));
}

TEST(CronTest, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // The 13th, or any Friday: Friday 2026-02-06, Friday the 13th, Friday 20th.
  EXPECT_EQ(
      next_times("0 0 13 * 5", "UTC", "2026-02-01T00:00:00.000Z", 3),
      (Times{"2026-02-06T00:00:00.000Z", "2026-02-13T00:00:00.000Z", "2026-02-20T00:00:00.000Z"}));
  // With a star in one day field, both must match: Fridays in February only.
  EXPECT_EQ(next_times("0 0 * 2 5", "UTC", "2026-02-21T00:00:00.000Z", 2),
            (Times{"2026-02-27T00:00:00.000Z", "2027-02-05T00:00:00.000Z"}));
}

TEST(CronTest, ThirtyFirstSkipsShortMonthsAndLeapDayWaits) {
  EXPECT_EQ(
      next_times("0 0 31 * *", "UTC", "2026-01-31T00:00:00.000Z", 3),
      (Times{"2026-03-31T00:00:00.000Z", "2026-05-31T00:00:00.000Z", "2026-07-31T00:00:00.000Z"}));
  EXPECT_EQ(next_times("0 0 29 2 *", "UTC", "2026-01-01T00:00:00.000Z", 1),
            (Times{"2028-02-29T00:00:00.000Z"}));
  EXPECT_EQ(next_times("0 0 30 2 *", "UTC", "2026-01-01T00:00:00.000Z", 1), (Times{"none"}));
}

TEST(CronTest, Shorthands) {
  const char* after = "2026-05-06T10:20:00.000Z";  // a Wednesday
  EXPECT_EQ(next_times("@hourly", "UTC", after, 1), (Times{"2026-05-06T11:00:00.000Z"}));
  EXPECT_EQ(next_times("@daily", "UTC", after, 1), (Times{"2026-05-07T00:00:00.000Z"}));
  EXPECT_EQ(next_times("@weekly", "UTC", after, 1), (Times{"2026-05-10T00:00:00.000Z"}));
  EXPECT_EQ(next_times("@monthly", "UTC", after, 1), (Times{"2026-06-01T00:00:00.000Z"}));
}

TEST(CronTest, LocalTimesInAZone) {
  // 03:00 in Berlin is 01:00 UTC in winter (CET) and 02:00 UTC in summer (CEST).
  EXPECT_EQ(next_times("0 3 * * *", "Europe/Berlin", "2026-01-10T12:00:00.000Z", 1),
            (Times{"2026-01-11T02:00:00.000Z"}));
  EXPECT_EQ(next_times("0 3 * * *", "Europe/Berlin", "2026-07-10T12:00:00.000Z", 1),
            (Times{"2026-07-11T01:00:00.000Z"}));
}

TEST(CronTest, BerlinSpringForwardRunsASkippedFixedTimeOnceAtTheChange) {
  // 02:30 does not exist on 29 March: it runs at 03:00 CEST (01:00 UTC), once.
  EXPECT_EQ(
      next_times("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00.000Z", 3),
      (Times{"2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"}));
}

TEST(CronTest, BerlinFallBackRunsARepeatedFixedTimeOnce) {
  // 02:30 happens twice on 25 October (00:30 and 01:30 UTC): the first only.
  EXPECT_EQ(
      next_times("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00.000Z", 3),
      (Times{"2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"}));
}

TEST(CronTest, BerlinHourlyJobKeepsItsRhythmThroughBothChanges) {
  // Spring: 01:30 CET, then 02:30 does not exist, then 03:30 CEST.
  EXPECT_EQ(
      next_times("30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00.000Z", 3),
      (Times{"2026-03-29T00:30:00.000Z", "2026-03-29T01:30:00.000Z", "2026-03-29T02:30:00.000Z"}));
  // Autumn: 02:30 CEST, 02:30 CET (the repeated hour runs again), 03:30 CET.
  EXPECT_EQ(
      next_times("30 * * * *", "Europe/Berlin", "2026-10-24T23:45:00.000Z", 3),
      (Times{"2026-10-25T00:30:00.000Z", "2026-10-25T01:30:00.000Z", "2026-10-25T02:30:00.000Z"}));
}

TEST(CronTest, BerlinQuarterHoursThroughTheRepeatedHour) {
  EXPECT_EQ(
      next_times("*/30 * * * *", "Europe/Berlin", "2026-10-25T00:15:00.000Z", 5),
      (Times{"2026-10-25T00:30:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T01:30:00.000Z",
             "2026-10-25T02:00:00.000Z", "2026-10-25T02:30:00.000Z"}));
}

TEST(CronTest, NewYorkSpringForward) {
  // 02:00 does not exist on 8 March: runs at 03:00 EDT (07:00 UTC), once;
  // the next day 02:00 EDT is 06:00 UTC.
  EXPECT_EQ(next_times("0 2 * * *", "America/New_York", "2026-03-07T12:00:00.000Z", 2),
            (Times{"2026-03-08T07:00:00.000Z", "2026-03-09T06:00:00.000Z"}));
  EXPECT_EQ(next_times("30 2 * * *", "America/New_York", "2026-03-07T12:00:00.000Z", 2),
            (Times{"2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"}));
}

TEST(CronTest, NewYorkFallBack) {
  // 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST) on 1 November: once.
  EXPECT_EQ(next_times("30 1 * * *", "America/New_York", "2026-10-31T12:00:00.000Z", 2),
            (Times{"2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"}));
  // An hourly job runs in both 01:xx hours.
  EXPECT_EQ(
      next_times("15 * * * *", "America/New_York", "2026-11-01T04:20:00.000Z", 3),
      (Times{"2026-11-01T05:15:00.000Z", "2026-11-01T06:15:00.000Z", "2026-11-01T07:15:00.000Z"}));
}

TEST(CronTest, RefusesMalformedExpressionsWithTheReason) {
  const auto reason = [](const char* cron) {
    try {
      CronSchedule schedule(cron, "UTC");
    } catch (const CronError& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(reason("60 * * * *").find("minute"), std::string::npos);
  EXPECT_NE(reason("* * *").find("five fields"), std::string::npos);
  EXPECT_NE(reason("*/0 * * * *").find("step"), std::string::npos);
  EXPECT_NE(reason("5-1 * * * *").find("backwards"), std::string::npos);
  EXPECT_NE(reason("* 24 * * *").find("hour"), std::string::npos);
  EXPECT_NE(reason("* * 0 * *").find("day-of-month"), std::string::npos);
  EXPECT_NE(reason("* * * 13 *").find("month"), std::string::npos);
  EXPECT_NE(reason("* * * * 8").find("day-of-week"), std::string::npos);
  EXPECT_NE(reason("@yearly").find("@hourly"), std::string::npos);
  EXPECT_NE(reason("a * * * *").find("not a number"), std::string::npos);
  EXPECT_NE(reason("1,,2 * * * *").find("minute"), std::string::npos);
}

TEST(CronTest, RefusesAnUnknownTimeZone) {
  EXPECT_THROW(CronSchedule("* * * * *", "Mars/Olympus_Mons"), CronError);
  EXPECT_THROW(check_timezone(""), CronError);
  EXPECT_NO_THROW(check_timezone("America/New_York"));
}

}  // namespace
}  // namespace nightshift
