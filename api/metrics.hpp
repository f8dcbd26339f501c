// Counters of the API layer, rendered with the run manager's figures as the
// Prometheus text format for GET /metrics.
//
// Thread safety: every member is [thread-safe] (atomics only).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "automation/automation.hpp"
#include "runs/run_manager.hpp"

namespace nightshift::api {

class Metrics {
 public:
  void count_response(unsigned status) noexcept;
  void websocket_opened() noexcept { websocket_clients_.fetch_add(1, std::memory_order_relaxed); }
  void websocket_closed() noexcept { websocket_clients_.fetch_sub(1, std::memory_order_relaxed); }
  void websocket_slow_client_closed() noexcept {
    websocket_slow_closes_.fetch_add(1, std::memory_order_relaxed);
  }
  void websocket_message_sent() noexcept {
    websocket_messages_.fetch_add(1, std::memory_order_relaxed);
  }
  // Bytes queued to WebSocket clients and not yet handed to their sockets,
  // all clients together; returns the new total.
  std::int64_t websocket_queued(std::int64_t delta) noexcept {
    const std::int64_t total =
        websocket_queued_bytes_.fetch_add(delta, std::memory_order_relaxed) + delta;
    if (total >= kTrimAfterQueuedBytes)
      websocket_trim_wanted_.store(true, std::memory_order_relaxed);
    return total;
  }
  // True once after the clients' queues held kTrimAfterQueuedBytes at some
  // point: the caller, seeing them drained, gives free memory back to the
  // system (the allocator's arenas keep it otherwise).
  bool take_websocket_trim() noexcept {
    return websocket_trim_wanted_.exchange(false, std::memory_order_relaxed);
  }
  std::int64_t websocket_queued_bytes() const noexcept {
    return websocket_queued_bytes_.load(std::memory_order_relaxed);
  }

  std::int64_t websocket_clients() const noexcept {
    return websocket_clients_.load(std::memory_order_relaxed);
  }
  std::uint64_t websocket_slow_client_closes() const noexcept {
    return websocket_slow_closes_.load(std::memory_order_relaxed);
  }
  std::uint64_t responses_with_status(unsigned status) const noexcept;

  std::string render(const RunManagerStats& runs) const;
  // Automation's families (retries, scheduled starts, webhook deliveries by
  // outcome), appended to render()'s text (metrics_automation.cpp).
  static std::string render_automation(const AutomationStats& automation);

 private:
  static constexpr unsigned kStatusCodes = 600;
  std::array<std::atomic<std::uint64_t>, kStatusCodes> responses_{};
  std::atomic<std::int64_t> websocket_clients_{0};
  std::atomic<std::uint64_t> websocket_slow_closes_{0};
  std::atomic<std::uint64_t> websocket_messages_{0};
  std::atomic<std::int64_t> websocket_queued_bytes_{0};
  static constexpr std::int64_t kTrimAfterQueuedBytes = 16 << 20;
  std::atomic<bool> websocket_trim_wanted_{false};
};

}  // namespace nightshift::api
