#include "model/run.hpp"

#include <sys/random.h>

#include <array>
#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <system_error>

namespace nightshift {

Timestamp now_ms() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

std::string format_rfc3339(Timestamp t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return std::string(buf.data());
}

namespace {

bool read_digits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > text.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<Timestamp> parse_rfc3339(std::string_view text) {
  // Accepts exactly the form format_rfc3339 writes, with 0..9 fraction digits.
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (text.size() < 20 || !read_digits(text, 0, 4, y) || text[4] != '-' ||
      !read_digits(text, 5, 2, mo) || text[7] != '-' || !read_digits(text, 8, 2, d) ||
      (text[10] != 'T' && text[10] != 't') || !read_digits(text, 11, 2, h) || text[13] != ':' ||
      !read_digits(text, 14, 2, mi) || text[16] != ':' || !read_digits(text, 17, 2, s)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  int millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) millis *= 10;
  }
  if (pos + 1 != text.size() || (text[pos] != 'Z' && text[pos] != 'z')) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return Timestamp{sys_days{ymd}.time_since_epoch() + hours{h} + minutes{mi} + seconds{s} +
                   milliseconds{millis}};
}

std::string_view to_string(RunStatus status) {
  switch (status) {
    case RunStatus::queued:
      return "queued";
    case RunStatus::running:
      return "running";
    case RunStatus::stopping:
      return "stopping";
    case RunStatus::completed:
      return "completed";
    case RunStatus::failed:
      return "failed";
    case RunStatus::cancelled:
      return "cancelled";
  }
  return "failed";
}

std::optional<RunStatus> parse_run_status(std::string_view text) {
  for (auto s : {RunStatus::queued, RunStatus::running, RunStatus::stopping, RunStatus::completed,
                 RunStatus::failed, RunStatus::cancelled}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

bool is_terminal(RunStatus status) {
  return status == RunStatus::completed || status == RunStatus::failed ||
         status == RunStatus::cancelled;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  for (auto l :
       {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
    if (to_string(l) == text) return l;
  }
  return std::nullopt;
}

std::string_view to_string(AgentSource source) {
  switch (source) {
    case AgentSource::installed:
      return "installed";
    case AgentSource::local:
      return "local";
    case AgentSource::remix:
      return "remix";
  }
  return "installed";
}

std::string_view to_string(Isolation isolation) {
  return isolation == Isolation::process ? "process" : "thread";
}

std::optional<Isolation> parse_isolation(std::string_view text) {
  if (text == "process") return Isolation::process;
  if (text == "thread") return Isolation::thread;
  return std::nullopt;
}

std::string_view to_string(LogSource source) {
  switch (source) {
    case LogSource::agent:
      return "agent";
    case LogSource::user:
      return "user";
    case LogSource::host:
      return "host";
  }
  return "agent";
}

std::optional<AgentSource> parse_agent_source(std::string_view text) {
  for (auto s : {AgentSource::installed, AgentSource::local, AgentSource::remix}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

std::int64_t Run::duration_ms(Timestamp now) const {
  if (!started_at) return 0;
  const Timestamp end = ended_at.value_or(now);
  const auto ms = (end - *started_at).count();
  return ms < 0 ? 0 : ms;
}

namespace {

// Random bytes for ids, drawn from the kernel's generator (getrandom(2)) a
// block at a time: one system call per 25 ids instead of one per id. Each
// thread has its own block (plain bytes: nothing to construct or destroy).
struct RandomBlock {
  std::array<unsigned char, 250> bytes;
  std::size_t used = sizeof(bytes);
};
thread_local RandomBlock random_block;

void take_random(unsigned char* out, std::size_t count) {
  RandomBlock& block = random_block;
  if (block.used + count > block.bytes.size()) {
    std::size_t filled = 0;
    while (filled < block.bytes.size()) {
      const ssize_t got = ::getrandom(block.bytes.data() + filled, block.bytes.size() - filled, 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "getrandom");
      }
      filled += static_cast<std::size_t>(got);
    }
    block.used = 0;
  }
  std::memcpy(out, block.bytes.data() + block.used, count);
  block.used += count;  // each byte is used once
}

}  // namespace

std::string generate_uuid() {
  // A version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then 74
  // random bits. Ids made later sort later, so the store's index of run ids
  // grows at its end instead of at a random page per run. (Boost.UUID
  // makes version 7 only from 1.86; Debian 12 has 1.81.)
  boost::uuids::uuid id{};
  const auto ms = static_cast<std::uint64_t>(now_ms().time_since_epoch().count());
  for (int i = 0; i < 6; ++i) id.data[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  take_random(id.data + 6, 10);
  id.data[6] = static_cast<std::uint8_t>(0x70 | (id.data[6] & 0x0f));  // version 7
  id.data[8] = static_cast<std::uint8_t>(0x80 | (id.data[8] & 0x3f));  // RFC 9562 variant
  return boost::uuids::to_string(id);
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

}  // namespace nightshift
