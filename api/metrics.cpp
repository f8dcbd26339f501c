#include "api/metrics.hpp"

#include <sstream>

namespace nightshift::api {

void Metrics::count_response(unsigned status) noexcept {
  if (status < kStatusCodes) responses_[status].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Metrics::responses_with_status(unsigned status) const noexcept {
  return status < kStatusCodes ? responses_[status].load(std::memory_order_relaxed) : 0;
}

namespace {

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

}  // namespace

std::string Metrics::render(const RunManagerStats& runs) const {
  std::ostringstream out;
  family(out, "nightshift_runs", "gauge", "Runs in an active status, by status.");
  out << "nightshift_runs{status=\"queued\"} " << runs.queued << '\n'
      << "nightshift_runs{status=\"running\"} " << runs.running << '\n'
      << "nightshift_runs{status=\"stopping\"} " << runs.stopping << '\n';
  family(out, "nightshift_runs_finished_total", "counter",
         "Runs that reached a terminal status since the host started, by status.");
  out << "nightshift_runs_finished_total{status=\"completed\"} " << runs.completed << '\n'
      << "nightshift_runs_finished_total{status=\"failed\"} " << runs.failed << '\n'
      << "nightshift_runs_finished_total{status=\"cancelled\"} " << runs.cancelled << '\n';
  family(out, "nightshift_runs_queued", "gauge", "Runs waiting for a worker slot.");
  out << "nightshift_runs_queued " << runs.queued << '\n';
  family(out, "nightshift_run_starts_total", "counter", "Runs started since the host started.");
  out << "nightshift_run_starts_total " << runs.starts << '\n';
  family(out, "nightshift_run_stops_total", "counter", "Stops asked since the host started.");
  out << "nightshift_run_stops_total " << runs.stops << '\n';
  family(out, "nightshift_log_entries_written_total", "counter",
         "Log entries committed to the store.");
  out << "nightshift_log_entries_written_total " << runs.log_entries_written << '\n';
  family(out, "nightshift_log_entries_dropped_total", "counter",
         "Log entries dropped because a run reached its log cap.");
  out << "nightshift_log_entries_dropped_total " << runs.log_entries_dropped << '\n';
  family(out, "nightshift_store_ok", "gauge",
         "1 while the store commits; 0 while it cannot (writes held, starts refused).");
  out << "nightshift_store_ok " << (runs.store_ok ? 1 : 0) << '\n';
  family(out, "nightshift_store_failures_total", "counter",
         "Store commits (and retries of held writes) that failed since the host started.");
  out << "nightshift_store_failures_total " << runs.store_failures << '\n';
  family(out, "nightshift_http_requests_total", "counter", "HTTP responses sent, by status code.");
  for (unsigned code = 100; code < kStatusCodes; ++code) {
    const auto count = responses_[code].load(std::memory_order_relaxed);
    if (count > 0)
      out << "nightshift_http_requests_total{code=\"" << code << "\"} " << count << '\n';
  }
  family(out, "nightshift_websocket_clients", "gauge", "Connected WebSocket clients.");
  out << "nightshift_websocket_clients " << websocket_clients() << '\n';
  family(out, "nightshift_websocket_messages_total", "counter",
         "Messages queued to WebSocket clients.");
  out << "nightshift_websocket_messages_total "
      << websocket_messages_.load(std::memory_order_relaxed) << '\n';
  family(out, "nightshift_websocket_queued_bytes", "gauge",
         "Bytes queued to WebSocket clients, not yet handed to their sockets.");
  out << "nightshift_websocket_queued_bytes " << websocket_queued_bytes() << '\n';
  family(out, "nightshift_websocket_slow_client_closes_total", "counter",
         "WebSocket clients closed (1013) because they could not keep up.");
  out << "nightshift_websocket_slow_client_closes_total " << websocket_slow_client_closes() << '\n';
  return out.str();
}

}  // namespace nightshift::api
