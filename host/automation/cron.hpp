// Cron expressions and their next times in an IANA time zone.
//
// The expression is the standard five fields (minute hour day-of-month month
// day-of-week) with `*`, lists, ranges, steps and the English month and day
// names, or one of @hourly, @daily, @weekly, @monthly. As in Vixie cron,
// when both day fields are restricted a day matching either one matches.
//
// Time zones come from the system's zoneinfo through Howard Hinnant's date
// library (Debian's libhowardhinnant-date-dev; GCC 12's std::chrono has no
// time-zone database). Daylight-saving changes are handled the way cron
// users expect (Vixie cron's rule):
//   - a job with a fixed time (neither the minute nor the hour field starts
//     with `*`): a time skipped by the change runs once, at the instant of
//     the change; a time that happens twice runs once, the first time;
//   - a job with a wildcard minute or hour (e.g. `*/15 * * * *`,
//     `30 * * * *`): it keeps its rhythm in real time: local times that do
//     not exist are not run, and a repeated hour runs again.
//
// Cron parsing is written here (Debian has no C++ cron library); it is
// checked against tables in tests/automation/cron_test.cpp.
//
// Thread safety: a CronSchedule is immutable once made; its members are
// [thread-safe]. date's zone database is loaded once, thread-safely.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace date {
class time_zone;
struct local_t;
}  // namespace date

namespace nightshift {

// A malformed cron expression or an unknown time zone; the message says
// which field is wrong and what is allowed.
class CronError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

using SysSeconds = std::chrono::sys_seconds;

class CronSchedule {
 public:
  // Throws CronError.
  CronSchedule(std::string_view expression, std::string_view timezone);

  // The first time strictly after `after` (whole minutes) at which the
  // schedule fires; none when no time in the next eight years matches
  // (e.g. "0 0 30 2 *").
  std::optional<SysSeconds> next_after(SysSeconds after) const;

  const std::string& expression() const { return expression_; }
  const std::string& timezone() const { return timezone_; }

 private:
  using LocalMinutes = std::chrono::time_point<date::local_t, std::chrono::minutes>;
  // The first local minute at or after `from` whose fields match.
  std::optional<LocalMinutes> next_local_match(LocalMinutes from, LocalMinutes limit) const;
  bool day_matches(int day_of_month, int day_of_week) const;
  // The real time `candidate` fires at, if after `after` (see the rules above).
  std::optional<SysSeconds> instant_of(LocalMinutes candidate, SysSeconds after) const;

  std::string expression_;
  std::string timezone_;
  const date::time_zone* zone_ = nullptr;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> days_of_week_;    // 0 = Sunday
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
  bool wildcard_time_ = false;  // minute or hour field starts with '*'
};

// Checks a time-zone name (throws CronError naming it when unknown).
void check_timezone(std::string_view timezone);

}  // namespace nightshift
