#include "runs/host_link.hpp"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>

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

HostLink::HostLink(Store& store, SharedQueue& queue, EventBus& bus, Callbacks callbacks,
                   Options options)
    : store_(store), queue_(queue), bus_(bus), callbacks_(std::move(callbacks)), options_(options) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
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
}

bool HostLink::reserve_queue_place(std::size_t max_queued) {
  std::lock_guard lock(count_mutex_);
  if (queued_here_ + admitted_since_ >= max_queued) return false;
  ++admitted_since_;
  return true;
}

void HostLink::release_queue_place() {
  std::lock_guard lock(count_mutex_);
  if (admitted_since_ > 0) --admitted_since_;
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
  if (requests || resync || poll_tick) answer_requests();
  // Woken here (a slot freed, a run queued here: no change) or told of a
  // queued run: a claim pass. Other hosts' run changes alone need none.
  const bool woken = changes.empty();
  if (queued || resync || poll_tick || woken) claim_while_free();
  refresh_queue_count();
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
  if (announced_.size() > kMaxTracked) announced_.clear();
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
    RunEventKind kind = RunEventKind::updated;
    if (is_terminal(run.status)) {
      kind = RunEventKind::finished;
      announced_.erase(run.instance_id);
    } else if (announced_.insert(run.instance_id).second) {
      kind = RunEventKind::started;
    }
    if (listening) bus_.publish(std::make_shared<const Event>(RunEvent{kind, std::move(run)}));
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
  for (const std::string& id : deleted) {
    announced_.erase(id);
    published_seq_.erase(id);
    if (!listening) continue;
    Run gone;  // the row is gone: the event names the run
    gone.instance_id = id;
    bus_.publish(std::make_shared<const Event>(RunEvent{RunEventKind::deleted, std::move(gone)}));
  }
}

void HostLink::refresh_queue_count() {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(count_mutex_);
    if (now - counted_at_ < options_.queue_count_refresh) return;
  }
  const std::size_t counted = queue_.count_queued_admitted_here();
  std::lock_guard lock(count_mutex_);
  queued_here_ = counted;
  admitted_since_ = 0;
  counted_at_ = now;
}

}  // namespace nightshift
