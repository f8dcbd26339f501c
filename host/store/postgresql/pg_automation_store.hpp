// The PostgreSQL implementation of AutomationStore: schedules, webhooks,
// deliveries and waiting retries in the database every host shares (tables
// of schema step 2, applied when the run store opens), so that they are one
// set whichever host is asked, and each piece of due work is claimed by
// exactly one host:
//   - a schedule's firing: compare and set of its next time, which also
//     marks the run the claiming host will start; a mark left by a host that
//     stopped heartbeating for a host lease is moved to one living host;
//   - a waiting retry: marked taken by one host, then started (the row
//     stays as a marker, so that a host that sees the failure late cannot
//     queue it again; started rows are deleted a day later); one taken by a
//     host that died before starting or releasing it is free again after
//     ten minutes;
//   - a webhook delivery: its id is made from the webhook, run and event, so
//     every host that saw the event makes the same row and only the host
//     whose insert created it attempts it; it holds the row (claimed_by,
//     claimed_until) while it retries, and a host that stops renewing its
//     hold (it died) leaves it to another.
//
// Thread safety: every member is [thread-safe]; one mutex serializes the
// store's one connection (automation writes are few and small).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "store/automation_store.hpp"
#include "store/postgresql/pg_connection.hpp"

namespace nightshift {

class PgAutomationStore final : public AutomationStore {
 public:
  // Connects to `conninfo` as the host `host_name`. The tables must exist
  // (the run store migrates first); throws naming what to fix. A host whose
  // heartbeat is older than `host_lease` is gone: its claimed schedule times
  // (adopt_schedule_firings) and the retries it took go to other hosts.
  PgAutomationStore(const std::string& conninfo, std::string host_name,
                    std::chrono::milliseconds host_lease = std::chrono::seconds(30));
  ~PgAutomationStore() override;
  PgAutomationStore(const PgAutomationStore&) = delete;
  PgAutomationStore& operator=(const PgAutomationStore&) = delete;

  bool shared() const noexcept override { return true; }

  void put_schedule(const Schedule& schedule) override;
  bool delete_schedule(const std::string& id) override;
  std::vector<Schedule> list_schedules() const override;
  std::optional<Schedule> get_schedule(const std::string& id) const override;
  std::optional<Schedule> claim_schedule_time(const std::string& id, std::optional<Timestamp> due,
                                              std::optional<Timestamp> next,
                                              const std::string& firing_run_id,
                                              const std::string& firing_host) override;
  void set_schedule_last_run(const std::string& id, const std::string& run_id) override;
  void clear_schedule_firing(const std::string& id, const std::string& run_id) override;
  std::vector<Schedule> adopt_schedule_firings(const std::string& host) override;

  void add_pending_retry(const PendingRetry& retry) override;
  std::vector<PendingRetry> list_pending_retries() const override;
  std::optional<PendingRetry> take_pending_retry(const std::string& failed_run_id) override;
  void release_pending_retry(const std::string& failed_run_id, Timestamp due_at) override;
  void finish_pending_retry(const std::string& failed_run_id) override;

  void add_webhook(const Webhook& webhook) override;
  bool delete_webhook(const std::string& id) override;
  std::vector<Webhook> list_webhooks() const override;
  std::optional<Webhook> get_webhook(const std::string& id) const override;

  std::vector<Delivery> add_deliveries(const std::vector<Delivery>& deliveries,
                                       std::chrono::milliseconds hold) override;
  void update_delivery(const Delivery& delivery, std::size_t keep,
                       std::chrono::milliseconds hold) override;
  std::vector<Delivery> list_deliveries(const std::string& webhook_id,
                                        std::size_t limit) const override;
  std::vector<Delivery> claim_pending_deliveries(std::chrono::milliseconds hold) override;

 private:
  // Runs one statement on the connection (reconnecting first if it was
  // lost). Callers hold mutex_.
  pg::Result exec(const std::string& sql, const std::vector<pg::Param>& params = {}) const;

  const std::string host_name_;
  const std::chrono::milliseconds host_lease_;
  mutable std::mutex mutex_;  // guards conn_
  std::unique_ptr<pg::Connection> conn_;
};

}  // namespace nightshift
