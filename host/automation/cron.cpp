#include "automation/cron.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace nightshift {

namespace {

using std::chrono::minutes;

struct FieldSpec {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names for min, min+1, ... (nullptr: none)
};

constexpr std::array<const char*, 12> kMonthNames{"jan", "feb", "mar", "apr", "may", "jun",
                                                  "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 7> kDayNames{"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const FieldSpec kMinute{"minute", 0, 59, nullptr};
const FieldSpec kHour{"hour", 0, 23, nullptr};
const FieldSpec kDayOfMonth{"day-of-month", 1, 31, nullptr};
const FieldSpec kMonth{"month", 1, 12, kMonthNames.data()};
// 7 is Sunday too, as in every cron.
const FieldSpec kDayOfWeek{"day-of-week", 0, 7, kDayNames.data()};

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

std::string field_error(const FieldSpec& spec, std::string_view field, const std::string& why) {
  return "the " + std::string(spec.name) + " field '" + std::string(field) + "' " + why +
         " (allowed: *, a number from " + std::to_string(spec.min) + " to " +
         std::to_string(spec.max) + ", lists a,b, ranges a-b, steps */n or a-b/n)";
}

int parse_value(const FieldSpec& spec, std::string_view field, std::string_view text) {
  if (spec.names != nullptr && text.size() == 3) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const int count = spec.names == kMonthNames.data() ? 12 : 7;
    for (int i = 0; i < count; ++i) {
      if (lower == spec.names[i]) return spec.min + i;
    }
  }
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    throw CronError(field_error(spec, field, "has '" + std::string(text) + "', not a number"));
  }
  if (value < spec.min || value > spec.max) {
    throw CronError(field_error(spec, field, "has " + std::to_string(value) + ", out of range"));
  }
  return value;
}

// Sets the bits of `field` in `bits` (indexed by value). Returns whether the
// field starts with '*'.
template <std::size_t N>
bool parse_field(const FieldSpec& spec, std::string_view field, std::bitset<N>& bits) {
  if (field.empty()) throw CronError(field_error(spec, field, "is empty"));
  for (std::string_view item : split(field, ',')) {
    std::string_view range = item;
    int step = 1;
    if (const auto slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      const auto [end, error] =
          std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || error != std::errc() || end != step_text.data() + step_text.size() ||
          step < 1 || step > spec.max + 1) {
        throw CronError(
            field_error(spec, field, "has a bad step '" + std::string(step_text) + "'"));
      }
    }
    int first = spec.min;
    int last = spec.max;
    if (range == "*") {
      if (spec.max == 7) last = 6;  // Sunday once
    } else if (const auto dash = range.find('-'); dash != std::string_view::npos) {
      first = parse_value(spec, field, range.substr(0, dash));
      last = parse_value(spec, field, range.substr(dash + 1));
      if (first > last) {
        throw CronError(field_error(spec, field, "has a range that runs backwards"));
      }
    } else {
      first = parse_value(spec, field, range);
      // "5/15": from 5 to the end in steps, as Vixie and cronie read it.
      last = item.find('/') != std::string_view::npos ? spec.max : first;
      if (spec.max == 7 && item.find('/') != std::string_view::npos) last = 6;
    }
    if (range.empty()) throw CronError(field_error(spec, field, "has an empty item"));
    for (int value = first; value <= last; value += step) {
      bits.set(static_cast<std::size_t>(spec.max == 7 && value == 7 ? 0 : value));
    }
  }
  return field.front() == '*';
}

std::string expand_macro(std::string_view expression) {
  if (expression == "@hourly") return "0 * * * *";
  if (expression == "@daily") return "0 0 * * *";
  if (expression == "@weekly") return "0 0 * * 0";
  if (expression == "@monthly") return "0 0 1 * *";
  throw CronError("unknown cron shorthand '" + std::string(expression) +
                  "' (allowed: @hourly, @daily, @weekly, @monthly)");
}

std::vector<std::string_view> fields_of(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

const date::time_zone* find_zone(std::string_view timezone) {
  if (timezone.empty()) throw CronError("the time zone is empty; use an IANA name such as UTC");
  try {
    return date::locate_zone(timezone);
  } catch (const std::exception&) {
    throw CronError("unknown time zone '" + std::string(timezone) +
                    "'; use an IANA name such as UTC, Europe/Berlin or America/New_York");
  }
}

}  // namespace

void check_timezone(std::string_view timezone) {
  find_zone(timezone);
}

CronSchedule::CronSchedule(std::string_view expression, std::string_view timezone)
    : expression_(expression), timezone_(timezone), zone_(find_zone(timezone)) {
  std::string text(expression);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
  if (!text.empty() && text.front() == '@') text = expand_macro(text);
  const auto fields = fields_of(text);
  if (fields.size() != 5) {
    throw CronError(
        "a cron expression has five fields (minute hour day-of-month month "
        "day-of-week) or is @hourly, @daily, @weekly or @monthly; '" +
        std::string(expression) + "' has " + std::to_string(fields.size()));
  }
  const bool minute_star = parse_field(kMinute, fields[0], minutes_);
  const bool hour_star = parse_field(kHour, fields[1], hours_);
  day_of_month_star_ = parse_field(kDayOfMonth, fields[2], days_of_month_);
  parse_field(kMonth, fields[3], months_);
  day_of_week_star_ = parse_field(kDayOfWeek, fields[4], days_of_week_);
  wildcard_time_ = minute_star || hour_star;
}

bool CronSchedule::day_matches(int day_of_month, int day_of_week) const {
  const bool dom = days_of_month_.test(static_cast<std::size_t>(day_of_month));
  const bool dow = days_of_week_.test(static_cast<std::size_t>(day_of_week));
  if (day_of_month_star_ || day_of_week_star_) return dom && dow;
  return dom || dow;
}

std::optional<CronSchedule::LocalMinutes> CronSchedule::next_local_match(LocalMinutes from,
                                                                         LocalMinutes limit) const {
  LocalMinutes t = from;
  while (t < limit) {
    const auto day = std::chrono::floor<date::days>(t);
    const date::year_month_day ymd{date::local_days{day.time_since_epoch()}};
    const auto next_day = day + date::days{1};
    if (!months_.test(static_cast<unsigned>(ymd.month()))) {
      const date::year_month_day first_of_next =
          date::year_month_day{(ymd.year() / ymd.month() / date::day{1}) + date::months{1}};
      t = LocalMinutes{
          std::chrono::duration_cast<minutes>(date::local_days{first_of_next}.time_since_epoch())};
      continue;
    }
    const int weekday =
        static_cast<int>(date::weekday{date::local_days{day.time_since_epoch()}}.c_encoding());
    if (!day_matches(static_cast<int>(static_cast<unsigned>(ymd.day())), weekday)) {
      t = next_day;
      continue;
    }
    const auto in_day = t - day;
    const int hour = static_cast<int>(std::chrono::floor<std::chrono::hours>(in_day).count());
    const int minute = static_cast<int>((in_day - std::chrono::hours(hour)).count());
    if (!hours_.test(static_cast<std::size_t>(hour))) {
      t = day + std::chrono::hours(hour + 1);
      continue;
    }
    int next_minute = minute;
    while (next_minute < 60 && !minutes_.test(static_cast<std::size_t>(next_minute))) ++next_minute;
    if (next_minute == 60) {
      t = day + std::chrono::hours(hour + 1);
      continue;
    }
    return day + std::chrono::hours(hour) + minutes(next_minute);
  }
  return std::nullopt;
}

std::optional<SysSeconds> CronSchedule::instant_of(LocalMinutes candidate, SysSeconds after) const {
  const auto local = date::local_seconds{candidate};
  const date::local_info info = zone_->get_info(local);
  switch (info.result) {
    case date::local_info::unique: {
      const SysSeconds instant{(local - info.first.offset).time_since_epoch()};
      if (instant > after) return instant;
      return std::nullopt;
    }
    case date::local_info::nonexistent:
      // Skipped by a change: a fixed-time job runs at the change itself.
      if (!wildcard_time_ && info.second.begin > after) return info.second.begin;
      return std::nullopt;
    case date::local_info::ambiguous: {
      const SysSeconds first{(local - info.first.offset).time_since_epoch()};
      const SysSeconds second{(local - info.second.offset).time_since_epoch()};
      if (first > after) return first;
      // A wildcard job runs in the repeated hour again.
      if (wildcard_time_ && second > after) return second;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<SysSeconds> CronSchedule::next_after(SysSeconds after) const {
  constexpr auto kNear = std::chrono::hours(3);  // more than any zone's change
  const auto local_after = std::chrono::floor<minutes>(zone_->to_local(after));
  const date::sys_info around = zone_->get_info(after);
  std::optional<SysSeconds> best;
  LocalMinutes from = local_after + minutes(1);
  if (around.begin > after - kNear || around.end < after + kNear) {
    // Near a change, local times do not follow real time in order: take the
    // earliest instant of every candidate a few hours either side.
    const LocalMinutes window_end = local_after + kNear;
    for (LocalMinutes at = local_after - kNear;;) {
      const auto candidate = next_local_match(at, window_end);
      if (!candidate) break;
      if (const auto instant = instant_of(*candidate, after);
          instant && (!best || *instant < *best)) {
        best = instant;
      }
      at = *candidate + minutes(1);
    }
    from = window_end;
  }
  // Away from a change local times map to real times in order, so the first
  // candidate that maps to a time after `after` is the answer.
  const LocalMinutes limit = local_after + date::days{366 * 8};
  while (true) {
    const auto candidate = next_local_match(from, limit);
    if (!candidate) return best;
    if (const auto instant = instant_of(*candidate, after)) {
      return best && *best < *instant ? best : instant;
    }
    from = *candidate + minutes(1);
  }
}

}  // namespace nightshift
