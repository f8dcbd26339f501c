// Durable state of automation: schedules, webhooks, their deliveries, and
// retries waiting for their time, in the same SQLite database as the runs
// (tables made by schema step 7, which RunStore applies when it opens).
//
// Writes here are few and small (a schedule edited, a delivery attempted),
// so this store keeps one connection of its own rather than going through
// the run writer's batches; WAL and the busy timeout let both commit.
//
// Thread safety: every member is [thread-safe]; one mutex serializes the
// connection. Each call is short (one statement or one small transaction).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/automation.hpp"

namespace nightshift {

class AutomationStore {
 public:
  // Opens the database, which RunStore has already created and migrated.
  // Throws when it cannot be opened or lacks the automation tables.
  explicit AutomationStore(const std::filesystem::path& database);
  ~AutomationStore();
  AutomationStore(const AutomationStore&) = delete;
  AutomationStore& operator=(const AutomationStore&) = delete;

  // ---- schedules ----
  void put_schedule(const Schedule& schedule);  // insert or replace
  bool delete_schedule(const std::string& id);  // false: none had that id
  std::vector<Schedule> list_schedules() const;
  std::optional<Schedule> get_schedule(const std::string& id) const;

  // ---- retries waiting for their time ----
  // Keeps the first one for a failed run (a second finished event adds none).
  void add_pending_retry(const PendingRetry& retry);
  void delete_pending_retry(const std::string& failed_run_id);
  std::vector<PendingRetry> list_pending_retries() const;

  // ---- webhooks ----
  void add_webhook(const Webhook& webhook);
  bool delete_webhook(const std::string& id);  // its deliveries go with it
  std::vector<Webhook> list_webhooks() const;  // oldest first
  std::optional<Webhook> get_webhook(const std::string& id) const;

  // ---- deliveries ----
  void add_deliveries(const std::vector<Delivery>& deliveries);  // one transaction
  // Records an attempt's outcome (attempts, status, codes, times). Keeps at
  // most `keep` finished deliveries per webhook, deleting the oldest.
  void update_delivery(const Delivery& delivery, std::size_t keep);
  // The newest first, at most `limit`.
  std::vector<Delivery> list_deliveries(const std::string& webhook_id, std::size_t limit) const;
  // Every pending delivery, oldest first (after a restart).
  std::vector<Delivery> list_pending_deliveries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nightshift
