// Durable state of automation: schedules, webhooks, their deliveries, and
// retries waiting for their time. One interface, two implementations:
//   - SqliteAutomationStore (below): in the same SQLite file as the runs
//     (tables made by schema step 7, which RunStore applies when it opens);
//     one host, so every claim below simply succeeds.
//   - PgAutomationStore (postgresql/pg_automation_store.hpp): in the
//     PostgreSQL database every host shares (schema step 2 there). Every
//     host runs the scheduler, the retrier and the webhooks over the same
//     rows, so their due work is claimed in the database (the claim_* and
//     take_* members) and only the host whose claim succeeded acts.
//
// Thread safety: every member is [thread-safe]; each implementation
// serializes its one connection. Each call is short (one statement or one
// small transaction).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/automation.hpp"

namespace nightshift {

struct StoreLocation;

class AutomationStore {
 public:
  virtual ~AutomationStore() = default;

  // True when other hosts act on the same rows (PostgreSQL): the automation
  // then re-reads what they changed, and claims before it acts.
  virtual bool shared() const noexcept { return false; }

  // ---- schedules ----
  // Insert or replace; the firing fields are left as they are (only the
  // calls below set and clear them).
  virtual void put_schedule(const Schedule& schedule) = 0;
  virtual bool delete_schedule(const std::string& id) = 0;  // false: none had that id
  virtual std::vector<Schedule> list_schedules() const = 0;
  virtual std::optional<Schedule> get_schedule(const std::string& id) const = 0;
  // A firing's claim: moves the enabled schedule's next time from `due` to
  // `next` only if it still is `due` (compare and set), marks the firing
  // (the run id it will start, the claiming host: firing_run_id and
  // firing_host), and returns the schedule as stored after the move;
  // nullopt when another host fired it first, or it was changed, disabled
  // or deleted meanwhile.
  virtual std::optional<Schedule> claim_schedule_time(const std::string& id,
                                                      std::optional<Timestamp> due,
                                                      std::optional<Timestamp> next,
                                                      const std::string& firing_run_id,
                                                      const std::string& firing_host) = 0;
  // Sets the schedule's last run; clears its firing mark when the mark
  // names that run.
  virtual void set_schedule_last_run(const std::string& id, const std::string& run_id) = 0;
  // Clears the firing mark naming `run_id` (the time was skipped, or its
  // run could not be started).
  virtual void clear_schedule_firing(const std::string& id, const std::string& run_id) = 0;
  // A shared store: the firing marks of hosts that have not heartbeated for
  // a host lease (they died or stopped between a claim and its run, and did
  // not come back) become `host`'s, which is to finish them; each mark goes
  // to one host, and a host that comes back meanwhile keeps its own. The
  // schedules as stored after the move. A single-host store has none to
  // give: its host finishes its own marks when it starts.
  virtual std::vector<Schedule> adopt_schedule_firings(const std::string& /*host*/) { return {}; }

  // ---- retries waiting for their time ----
  // Keeps the first one for a failed run (a second finished event, or the
  // same event seen by another host, adds none).
  virtual void add_pending_retry(const PendingRetry& retry) = 0;
  // Those waiting (not taken), soonest first.
  virtual std::vector<PendingRetry> list_pending_retries() const = 0;
  // Takes the waiting retry of `failed_run_id` to start it: only one host
  // gets it (the one that has it may take it again, e.g. when putting it
  // back failed); nullopt when another host took it, it was started, or it
  // is unknown. A retry whose run is already stored (its host stopped
  // between starting that run and finishing the retry) is finished here and
  // not handed out again.
  virtual std::optional<PendingRetry> take_pending_retry(const std::string& failed_run_id) = 0;
  // A taken retry that could not start now waits again, until `due_at`.
  virtual void release_pending_retry(const std::string& failed_run_id, Timestamp due_at) = 0;
  // A taken retry was started (or given up): it never waits again.
  virtual void finish_pending_retry(const std::string& failed_run_id) = 0;

  // ---- webhooks ----
  virtual void add_webhook(const Webhook& webhook) = 0;
  virtual bool delete_webhook(const std::string& id) = 0;  // its deliveries go with it
  virtual std::vector<Webhook> list_webhooks() const = 0;  // oldest first
  virtual std::optional<Webhook> get_webhook(const std::string& id) const = 0;

  // ---- deliveries ----
  // Stores new deliveries (one transaction where it can) and returns those
  // this host is to attempt: every one in a single-host store; in a shared
  // store those whose id no host had stored yet (a delivery's id is made
  // from its webhook, run and event, so every host that saw the event makes
  // the same one), held by this host until `hold` after now.
  virtual std::vector<Delivery> add_deliveries(const std::vector<Delivery>& deliveries,
                                               std::chrono::milliseconds hold) = 0;
  // Records an attempt's outcome (attempts, status, codes, times); a shared
  // store holds a pending one for this host until `hold` after its next
  // attempt. Keeps at most `keep` finished deliveries per webhook, deleting
  // the oldest.
  virtual void update_delivery(const Delivery& delivery, std::size_t keep,
                               std::chrono::milliseconds hold) = 0;
  // The newest first, at most `limit`.
  virtual std::vector<Delivery> list_deliveries(const std::string& webhook_id,
                                                std::size_t limit) const = 0;
  // Pending deliveries for this host to attempt, oldest first: in a
  // single-host store every pending one (after a restart); in a shared store
  // those no host holds (never held, or their host stopped renewing its
  // hold, e.g. it died), now held by this host until `hold` after their
  // next attempt.
  virtual std::vector<Delivery> claim_pending_deliveries(std::chrono::milliseconds hold) = 0;
};

// The SQLite implementation.
class SqliteAutomationStore final : public AutomationStore {
 public:
  // Opens the database, which RunStore has already created and migrated.
  // Throws when it cannot be opened or lacks the automation tables.
  explicit SqliteAutomationStore(const std::filesystem::path& database);
  ~SqliteAutomationStore() override;
  SqliteAutomationStore(const SqliteAutomationStore&) = delete;
  SqliteAutomationStore& operator=(const SqliteAutomationStore&) = delete;

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
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The automation store beside the run store `location` names: the shared
// PostgreSQL database (already migrated by the run store) or the SQLite file
// (already made and migrated by the run store). Throws with what to fix.
std::unique_ptr<AutomationStore> open_automation_store(const StoreLocation& location);

}  // namespace nightshift
