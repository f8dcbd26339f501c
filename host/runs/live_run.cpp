#include "runs/live_run.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cmath>
#include <limits>
#include <string_view>

#include "model/utf8.hpp"
#include "runs/run_manager.hpp"
#include "runs/watchdog.hpp"
#include "store/store_writer.hpp"

namespace nightshift {

namespace {

// A run's log entries are handed to the writer in batches of this many, or
// sooner by the watchdog's sweep.
constexpr std::size_t kLogBatchEntries = 1024;

LiveRun& live(const nightshift_run* c_run) {
  return *static_cast<LiveRun*>(c_run->host_data);
}

LogLevel level_from_abi(std::int32_t level) {
  if (level < NIGHTSHIFT_LOG_TRACE || level > NIGHTSHIFT_LOG_ERROR) return LogLevel::info;
  return static_cast<LogLevel>(level);
}

std::string_view text_of(const char* data, std::size_t size) {
  return data == nullptr ? std::string_view() : std::string_view(data, size);
}

// ---- the agent's callbacks (the C ABI): they never throw ----

void append_entry(LiveRun& run, LogLevel level, std::string_view text, LogSource source) {
  try {
    std::lock_guard run_lock(run.mutex);
    if (run.abandoned || is_terminal(run.record.status)) return;
    RunServices& services = *run.services;
    const RunManagerOptions& options = services.options;
    if (run.record.log_count >= options.log_max_entries ||
        run.accepted_bytes + text.size() > options.log_max_bytes) {
      services.budget.count_dropped();
      if (!run.drops) run.drops = std::make_unique<LiveRun::Drops>();
      ++run.drops->capped_entries;
      run.drops->capped_bytes += text.size();
      return;
    }
    if (!services.budget.reserve(text.size() + LogBudget::kEntryOverhead)) {
      services.budget.count_dropped();
      if (!run.drops) run.drops = std::make_unique<LiveRun::Drops>();
      ++run.drops->full_entries;
      run.drops->full_bytes += text.size();
      return;
    }
    run.pending_logs.push_back(
        LogEntry{run.record.log_count + 1, now_ms(), level, to_valid_utf8(text), source});
    run.record.log_count += 1;
    run.accepted_bytes += text.size();
    if (run.pending_logs.size() >= kLogBatchEntries) {
      run.submit_logs_locked();
    } else {
      run.schedule_sweep_locked();
    }
  } catch (...) {
    // Out of memory: the entry is lost, the agent carries on.
  }
}

void on_log(const nightshift_run* c_run, std::int32_t level, const char* message,
            std::size_t size) {
  append_entry(live(c_run), level_from_abi(level), text_of(message, size), LogSource::agent);
}

void on_progress(const nightshift_run* c_run, double fraction) {
  if (std::isnan(fraction)) return;
  fraction = std::clamp(fraction, 0.0, 1.0);
  LiveRun& run = live(c_run);
  try {
    std::lock_guard run_lock(run.mutex);
    if (run.abandoned || is_terminal(run.record.status)) return;
    run.record.progress = fraction;
    if (run.throttle.admit(std::chrono::steady_clock::now())) {
      run.submit_progress_locked();
    } else {
      run.progress_held = true;
      run.schedule_sweep_locked();
    }
  } catch (...) {
    // A progress update is advisory; the next one carries the value.
  }
}

bool on_cancelled(const nightshift_run* c_run) {
  return live(c_run).stop.stop_requested();
}

// A year is "forever" here and keeps the arithmetic far from overflow.
std::chrono::milliseconds bounded_wait(std::uint64_t milliseconds) {
  constexpr std::uint64_t kLongest = 365ull * 24 * 3600 * 1000;
  return std::chrono::milliseconds(std::min(milliseconds, kLongest));
}

// A wait at least this long first gives back the stack pages the agent is
// not using (see WorkerThread::release_unused_stack): thousands of runs
// sleeping at once then hold little more than bare threads.
constexpr std::uint64_t kLongWaitMs = 500;

bool on_sleep_for(const nightshift_run* c_run, std::uint64_t milliseconds) {
  LiveRun& run = live(c_run);
  std::stop_token token = run.stop.get_token();
  if (milliseconds == 0) return !token.stop_requested();
  if (milliseconds >= kLongWaitMs) WorkerThread::release_unused_stack();
  const auto deadline = std::chrono::steady_clock::now() + bounded_wait(milliseconds);
  // For a stop requested already it runs here, at once.
  const std::stop_callback on_stop(token, [&run]() noexcept { run.wake_waiter(); });
  for (;;) {
    const std::uint32_t ticket = run.wakeup.ticket();
    if (token.stop_requested()) return false;
    if (!run.wakeup.wait_until(ticket, deadline)) return !token.stop_requested();
  }
}

bool on_next_message(const nightshift_run* c_run, std::uint64_t timeout_ms,
                     void (*receive)(void* context, const char* text, std::size_t size),
                     void* context) {
  LiveRun& run = live(c_run);
  std::stop_token token = run.stop.get_token();
  std::string message;
  if (timeout_ms >= kLongWaitMs) WorkerThread::release_unused_stack();
  const auto deadline = std::chrono::steady_clock::now() + bounded_wait(timeout_ms);
  const std::stop_callback on_stop(token, [&run]() noexcept { run.wake_waiter(); });
  try {
    for (;;) {
      // Taken before the mailbox is looked at: a message delivered after the
      // look wakes the wait below.
      const std::uint32_t ticket = run.wakeup.ticket();
      if (token.stop_requested()) return false;
      {
        std::lock_guard lock(run.wait_mutex);
        if (std::optional<std::string> taken = run.take_message_locked()) {
          message = std::move(*taken);
          if (run.unread_messages > 0) --run.unread_messages;
          break;
        }
      }
      if (!run.wakeup.wait_until(ticket, deadline)) return false;
    }
  } catch (...) {
    return false;
  }
  if (receive != nullptr) receive(context, message.data(), message.size());
  return true;
}

void on_report_usage(const nightshift_run* c_run, std::uint64_t prompt_tokens,
                     std::uint64_t completion_tokens) {
  LiveRun& run = live(c_run);
  try {
    std::lock_guard run_lock(run.mutex);
    if (run.abandoned || is_terminal(run.record.status)) return;
    TokenUsage usage = run.record.usage.value_or(TokenUsage{});
    // Saturating at what the store's integer holds: an agent's absurd
    // report must not wrap the totals around.
    static constexpr std::uint64_t kMost = std::numeric_limits<std::int64_t>::max();
    const auto add = [](std::uint64_t total, std::uint64_t more) {
      return more >= kMost - std::min(total, kMost) ? kMost : total + more;
    };
    usage.prompt_tokens = add(usage.prompt_tokens, prompt_tokens);
    usage.completion_tokens = add(usage.completion_tokens, completion_tokens);
    run.record.usage = usage;
    // Shown with the next record the run writes (progress, status).
    run.progress_held = true;
    run.schedule_sweep_locked();
  } catch (...) {
    // Usage is advisory; the next report carries on from the same totals.
  }
}

bool on_set_result_json(const nightshift_run* c_run, const char* json, std::size_t size) {
  LiveRun& run = live(c_run);
  try {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(text_of(json, size), ec);
    if (ec) return false;
    std::lock_guard run_lock(run.mutex);
    run.record.result = std::move(value);
    run.result_unsent = true;
    return true;
  } catch (...) {
    return false;
  }
}

void on_set_error(const nightshift_run* c_run, const char* message, std::size_t size) {
  LiveRun& run = live(c_run);
  try {
    std::lock_guard run_lock(run.mutex);
    run.agent_error = to_valid_utf8(text_of(message, size));
  } catch (...) {
    // Out of memory: the run fails with the generic message instead.
  }
}

}  // namespace

bool LogBudget::reserve(std::size_t bytes) noexcept {
  const std::size_t before = used_.fetch_add(bytes, std::memory_order_relaxed);
  if (before + bytes <= capacity_) return true;
  used_.fetch_sub(bytes, std::memory_order_relaxed);
  return false;
}

void RunState::assign(const Run& run) {
  each_field([&](auto mine, auto theirs) { this->*mine = run.*theirs; });
}

Run RunState::applied_to(const Run& identity) const {
  Run run = identity;
  each_field([&](auto mine, auto theirs) { run.*theirs = this->*mine; });
  return run;
}

nightshift_run LiveRun::abi_view() {
  nightshift_run c{};
  c.struct_size = sizeof(nightshift_run);
  c.host_data = this;
  c.instance_id = record.instance_id.c_str();
  c.instance_id_size = record.instance_id.size();
  c.task = record.task ? record.task->data() : nullptr;
  c.task_size = record.task ? record.task->size() : 0;
  c.params_json = params_json.data();
  c.params_json_size = params_json.size();
  c.workspace = workspace ? workspace->data() : "";
  c.workspace_size = workspace ? workspace->size() : 0;
  c.log = &on_log;
  c.progress = &on_progress;
  c.cancelled = &on_cancelled;
  c.sleep_for = &on_sleep_for;
  c.set_result_json = &on_set_result_json;
  c.set_error = &on_set_error;
  c.next_message = &on_next_message;
  c.report_usage = &on_report_usage;
  return c;
}

void LiveRun::submit_logs_locked() {
  if (pending_logs.empty()) return;
  AppendLogs op{instance_id(), std::move(pending_logs)};
  pending_logs.clear();
  services->writer.submit(std::move(op));
}

void LiveRun::submit_record_locked() {
  submit_logs_locked();
  progress_held = false;
  result_unsent = false;
  if (committed.load(std::memory_order_acquire)) {
    // An update: the writer keeps at most one queued per run and status.
    services->writer.submit_update(UpsertRun{record});
  } else {
    services->writer.submit(UpsertRun{record});
  }
}

void LiveRun::submit_progress_locked() {
  if (!services->progress_alone || result_unsent || !committed.load(std::memory_order_acquire)) {
    submit_record_locked();
    return;
  }
  submit_logs_locked();
  progress_held = false;
  services->writer.submit_progress(record.instance_id, record.progress, record.log_count,
                                   record.usage);
}

void LiveRun::finish_locked(RunStatus status, std::optional<std::string> error) {
  record.status = status;
  record.ended_at = now_ms();
  record.error = std::move(error);
  submit_record_locked();
}

void LiveRun::append_dropped_entry_locked() {
  if (!drops) return;
  const auto [capped_entries, capped_bytes, full_entries, full_bytes] = *drops;
  const RunManagerOptions& options = services->options;
  std::string message;
  if (capped_entries > 0) {
    message = "log cap reached (" + std::to_string(options.log_max_entries) + " entries, " +
              std::to_string(options.log_max_bytes) + " bytes): dropped " +
              std::to_string(capped_entries) + " entries (" + std::to_string(capped_bytes) +
              " bytes)";
  }
  if (full_entries > 0) {
    if (!message.empty()) message += "; ";
    message += "the host's log buffer was full: dropped " + std::to_string(full_entries) +
               " entries (" + std::to_string(full_bytes) + " bytes)";
  }
  LogEntry entry{record.log_count + 1, now_ms(), LogLevel::warn, std::move(message),
                 LogSource::host};
  services->budget.force(LogBudget::cost(entry));
  record.log_count = entry.seq;
  pending_logs.push_back(std::move(entry));
}

void LiveRun::schedule_sweep_locked() {
  if (sweep_scheduled) return;
  sweep_scheduled = true;
  services->watchdog.soon([weak = weak_from_this()] {
    if (LivePtr run = weak.lock()) run->sweep();
  });
}

void LiveRun::sweep() {
  std::lock_guard run_lock(mutex);
  sweep_scheduled = false;
  if (abandoned || is_terminal(record.status)) return;
  if (progress_held) {
    if (throttle.admit(std::chrono::steady_clock::now())) {
      submit_progress_locked();  // carries the held-back progress and the entries before it
      return;
    }
    schedule_sweep_locked();  // try again on the next sweep
  }
  submit_logs_locked();
}

bool LiveRun::reserve_message(std::size_t max) {
  std::lock_guard lock(wait_mutex);
  if (unread_messages >= max || unread_messages == UINT32_MAX) return false;
  ++unread_messages;
  return true;
}

void LiveRun::unreserve_message() {
  std::lock_guard lock(wait_mutex);
  --unread_messages;
}

void LiveRun::message_read() {
  std::lock_guard lock(wait_mutex);
  if (unread_messages > 0) --unread_messages;
}

void LiveRun::deliver_message(std::string text) {
  {
    std::lock_guard lock(wait_mutex);
    if (!mailbox) mailbox = std::make_unique<Mailbox>();
    mailbox->messages.push_back(std::move(text));
    if (mailbox->waker) mailbox->waker();
  }
  wake_waiter();
}

std::optional<std::string> LiveRun::take_message_locked() {
  if (!has_message_locked()) return std::nullopt;
  std::string text = std::move(mailbox->messages.front());
  mailbox->messages.pop_front();
  return text;
}

void LiveRun::set_message_waker(std::function<void()> waker) {
  std::lock_guard lock(wait_mutex);
  if (!mailbox) {
    if (!waker) return;
    mailbox = std::make_unique<Mailbox>();
  }
  mailbox->waker = std::move(waker);
  // Messages sent before the process was up are forwarded now.
  if (mailbox->waker && !mailbox->messages.empty()) mailbox->waker();
}

void LiveRun::log_from_host(LogLevel level, std::string_view text) {
  append_entry(*this, level, text, LogSource::host);
}

}  // namespace nightshift
