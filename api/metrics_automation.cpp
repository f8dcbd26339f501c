#include <sstream>

#include "api/metrics.hpp"

namespace nightshift::api {

std::string Metrics::render_automation(const AutomationStats& a) {
  std::ostringstream out;
  const auto family = [&out](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  family("nightshift_retries_started_total", "counter",
         "Retries of failed runs started since the host started (limits.retries).");
  out << "nightshift_retries_started_total " << a.retries_started << '\n';
  family("nightshift_retries_waiting", "gauge", "Retries waiting for their backoff to pass.");
  out << "nightshift_retries_waiting " << a.retries_waiting << '\n';
  family("nightshift_scheduled_starts_total", "counter",
         "Runs started by schedules at their time since the host started.");
  out << "nightshift_scheduled_starts_total " << a.scheduled_starts << '\n';
  family("nightshift_scheduled_skips_total", "counter",
         "Schedule times skipped because the previous run was still active (overlap skip).");
  out << "nightshift_scheduled_skips_total " << a.scheduled_skips << '\n';
  family("nightshift_schedules_enabled", "gauge", "Enabled schedules.");
  out << "nightshift_schedules_enabled " << a.schedules_enabled << '\n';
  family("nightshift_webhook_deliveries_total", "counter",
         "Webhook delivery attempts since the host started, by outcome: delivered (2xx), "
         "retried (failed, tried again later), failed (given up).");
  out << "nightshift_webhook_deliveries_total{outcome=\"delivered\"} " << a.webhooks.delivered
      << '\n'
      << "nightshift_webhook_deliveries_total{outcome=\"retried\"} " << a.webhooks.failed_attempts
      << '\n'
      << "nightshift_webhook_deliveries_total{outcome=\"failed\"} " << a.webhooks.failed << '\n';
  return out.str();
}

}  // namespace nightshift::api
