#include "runs/host_link.hpp"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>
#include <unordered_set>

namespace nightshift {

namespace {

// Claims are taken this many at a time at most: a batch is one statement.
constexpr std::size_t kClaimBatch = 64;
// Log entries re-read per run and change, at most; a WebSocket session
// fills a gap from the store itself.
constexpr std::size_t kFanInLogEntries = 1000;
// After a failure to reach the store, the link waits this long to retry.
constexpr std::chrono::milliseconds kRetryDelay{500};
// The maps of what was published are cleared past this many runs.
constexpr std::size_t kMaxTracked = 100000;

}  // namespace

std::string request_error(std::string_view code, std::string_view message) {
  std::string error(code);
  error += ": ";
  error += message;
  return error;
}

std::pair<std::string, std::string> split_request_error(const std::string& error) {
  const auto colon = error.find(": ");
  if (colon == std::string::npos) return {"", error};
  return {error.substr(0, colon), error.substr(colon + 2)};
}

HostLink::HostLink(Store& store, SharedQueue& queue, EventBus& bus, RunAnnouncements& announcements,
                   Callbacks callbacks, Options options)
    : store_(store),
      queue_(queue),
      bus_(bus),
      announcements_(announcements),
      callbacks_(std::move(callbacks)),
      options_(options) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

void HostLink::start() {
  thread_ = std::thread([this] { thread_main(); });
}

HostLink::~HostLink() {
  stop();
  ::close(wake_fd_);
}

void HostLink::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void HostLink::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  // Reservations still waiting for a count are refused: no more starts.
  std::vector<std::pair<std::size_t, std::function<void(bool)>>> waiting;
  {
    std::lock_guard lock(count_mutex_);
    waiting.swap(waiting_places_);
  }
  for (auto& [max_queued, placed] : waiting) placed(false);
}

bool HostLink::fits_locked(std::size_t max_queued) const {
  // Never below the runs waiting: runs claimed since the count only make it
  // higher than the truth, a run committed while the count ran is counted
  // twice at worst.
  const std::uint64_t since = committed_ - counted_from_;
  return queued_here_ + since + pending_ < max_queued;
}

void HostLink::reserve_queue_place(std::size_t max_queued, std::function<void(bool)> placed) {
  bool fits = false;
  {
    std::lock_guard lock(count_mutex_);
    fits = fits_locked(max_queued);
    if (fits) {
      ++pending_;
    } else if (!stopping_.load()) {
      // Full by the estimate: the link thread counts again, then answers.
      waiting_places_.emplace_back(max_queued, std::move(placed));
      wake();
      return;
    }
  }
  placed(fits);
}

// On the link thread: reservations that found the estimate full, answered
// after a fresh count (or, when the store cannot be counted, by the
// estimate, which is never below the truth).
void HostLink::answer_waiting_places() {
  {
    std::lock_guard lock(count_mutex_);
    if (waiting_places_.empty()) return;
  }
  try {
    refresh_queue_count(true);
  } catch (const std::exception& e) {
    spdlog::warn("could not count this host's queued runs (answering by the last count): {}",
                 e.what());
  }
  std::vector<std::pair<std::size_t, std::function<void(bool)>>> waiting;
  std::vector<bool> answers;
  {
    std::lock_guard lock(count_mutex_);
    waiting.swap(waiting_places_);
    for (const auto& [max_queued, placed] : waiting) {
      const bool fits = fits_locked(max_queued);
      if (fits) ++pending_;
      answers.push_back(fits);
    }
  }
  for (std::size_t i = 0; i < waiting.size(); ++i) waiting[i].second(answers[i]);
}

void HostLink::queue_place_settled(bool queued) {
  std::lock_guard lock(count_mutex_);
  if (pending_ > 0) --pending_;
  if (queued) ++committed_;
}

std::optional<RequestAnswer> HostLink::request(const std::string& host, const RunRequest& request,
                                               std::chrono::milliseconds timeout) {
  const std::int64_t id = queue_.send_request(host, request);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto answer = queue_.take_answer(id)) return answer;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
  // Not answered: the row is left for the store's clean-up.
  return std::nullopt;
}

void HostLink::thread_main() {
  auto next_poll = std::chrono::steady_clock::now();
  bool failing = false;
  while (!stopping_.load()) {
    const auto now = std::chrono::steady_clock::now();
    const bool poll_tick = now >= next_poll;
    if (poll_tick) next_poll = now + options_.poll;
    try {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::max(next_poll - now, std::chrono::steady_clock::duration::zero()));
      const std::vector<StoreChange> changes = queue_.wait_for_changes(wait, wake_fd_);
      if (stopping_.load()) break;
      pass(changes, poll_tick);
      if (failing) spdlog::info("the link to the shared store works again");
      failing = false;
    } catch (const std::exception& e) {
      if (!failing) spdlog::warn("the link to the shared store failed (retrying): {}", e.what());
      failing = true;
      answer_waiting_places();  // by the last count: starts do not wait out an outage
      std::this_thread::sleep_for(kRetryDelay);
      next_poll = std::chrono::steady_clock::now();
    }
  }
}

void HostLink::pass(const std::vector<StoreChange>& changes, bool poll_tick) {
  bool resync = false, queued = false, requests = false;
  for (const StoreChange& change : changes) {
    resync = resync || change.kind == StoreChange::Kind::resync;
    queued = queued || change.kind == StoreChange::Kind::queued;
    requests = requests || change.kind == StoreChange::Kind::request;
  }
  fan_in(changes, resync);
  answer_waiting_places();
  if (requests || resync || poll_tick) answer_requests();
  // Woken here (a slot freed, a run queued here: no change) or told of a
  // queued run: a claim pass. Other hosts' run changes alone need none.
  const bool woken = changes.empty();
  if (queued || resync || poll_tick || woken) claim_while_free();
  refresh_queue_count(false);
}

void HostLink::claim_while_free() {
  while (!stopping_.load()) {
    const std::size_t free = callbacks_.free_slots();
    if (free == 0) return;
    std::vector<Run> claimed = queue_.claim_queued(std::min(free, kClaimBatch));
    if (claimed.empty()) return;
    callbacks_.execute(std::move(claimed));
  }
}

void HostLink::answer_requests() {
  for (const RunRequest& request : queue_.take_requests()) {
    RequestAnswer answer;
    try {
      answer = callbacks_.handle_request(request);
    } catch (const std::exception& e) {
      answer.error = request_error("internal_error", e.what());
    }
    queue_.answer_request(request.id, answer);
  }
}

void HostLink::fan_in(const std::vector<StoreChange>& changes, bool resync) {
  std::vector<std::string> to_read;
  std::unordered_set<std::string> seen;
  std::unordered_map<std::string, std::uint64_t> logs;
  std::vector<std::string> deleted;
  for (const StoreChange& change : changes) {
    switch (change.kind) {
      case StoreChange::Kind::run:
        if (seen.insert(change.instance_id).second) to_read.push_back(change.instance_id);
        break;
      case StoreChange::Kind::logs: {
        auto& seq = logs[change.instance_id];
        seq = std::max(seq, change.seq);
        break;
      }
      case StoreChange::Kind::deleted:
        deleted.push_back(change.instance_id);
        break;
      default:
        break;
    }
  }
  if (resync) {
    // Whatever was missed: every active run as it is now.
    for (const Run& run : store_.list_active(std::nullopt)) {
      if (seen.insert(run.instance_id).second) to_read.push_back(run.instance_id);
    }
  }
  if (published_seq_.size() > kMaxTracked) published_seq_.clear();
  const bool listening = bus_.subscriber_count() > 0;
  if (!listening) {
    // Nobody to tell: only this host's own runs are re-read (another host
    // may have taken one over), not every run the other hosts changed.
    std::erase_if(to_read, [this](const std::string& id) { return !callbacks_.is_local(id); });
  }

  for (Run& run : queue_.get_runs(to_read)) {
    if (callbacks_.is_local(run.instance_id)) {
      // This host publishes its own runs' events, unless another host has
      // taken the run over meanwhile.
      if (is_terminal(run.status) || run.host != queue_.host_name()) callbacks_.taken_over(run);
      continue;
    }
    announcements_.announce(run);
  }
  for (const auto& [id, seq] : logs) {
    std::uint64_t& published = published_seq_[id];
    if (!listening || callbacks_.is_local(id)) {
      published = std::max(published, seq);
      continue;
    }
    while (published < seq) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(seq - published, kFanInLogEntries));
      std::vector<LogEntry> entries = store_.read_logs(id, published, want);
      if (entries.empty()) break;
      published = entries.back().seq;
      bus_.publish(std::make_shared<const Event>(LogEvent{id, std::move(entries)}));
    }
  }
  if (deleted.empty()) return;
  for (const std::string& id : deleted) published_seq_.erase(id);
  if (!listening) {
    for (const std::string& id : deleted) announcements_.forget(id);
    return;
  }
  // The rows are gone; the store keeps each deleted run's last record for a
  // while, so the event carries the run as the deleting host's does.
  std::unordered_map<std::string, Run> records;
  for (Run& run : queue_.get_deleted_runs(deleted)) {
    std::string id = run.instance_id;
    records.emplace(std::move(id), std::move(run));
  }
  for (const std::string& id : deleted) {
    const auto it = records.find(id);
    if (it != records.end()) {
      announcements_.deleted(it->second);
      continue;
    }
    Run gone;  // deleted longer ago than the store keeps the record: the id alone
    gone.instance_id = id;
    announcements_.deleted(gone);
  }
}

// Counts this host's unclaimed runs in the store: every `now`, else at most
// every queue_count_refresh (keeping the estimate close, so that few starts
// need a count of their own).
void HostLink::refresh_queue_count(bool now) {
  const auto started = std::chrono::steady_clock::now();
  std::uint64_t from = 0;
  {
    std::lock_guard lock(count_mutex_);
    if (!now && started - counted_at_ < options_.queue_count_refresh) return;
    from = committed_;  // every commit counted so far has landed: the count sees it
  }
  const std::size_t counted = queue_.count_queued_admitted_here();
  std::lock_guard lock(count_mutex_);
  if (from < counted_from_) return;  // a newer count finished first
  queued_here_ = counted;
  counted_from_ = from;
  counted_at_ = started;
}

}  // namespace nightshift
