#include "store/automation_store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <mutex>
#include <stdexcept>

#include "store/queries.hpp"
#include "store/run_row.hpp"

namespace nightshift {

namespace json = boost::json;
using store::from_ms;
using store::to_ms;

namespace {

constexpr int kBusyTimeoutMs = 5000;

void bind_text(SQLite::Statement& statement, int index, const std::optional<std::string>& text) {
  if (text) {
    statement.bind(index, *text);
  } else {
    statement.bind(index);
  }
}

void bind_time(SQLite::Statement& statement, int index, const std::optional<Timestamp>& t) {
  if (t) {
    statement.bind(index, to_ms(*t));
  } else {
    statement.bind(index);
  }
}

std::optional<std::string> text_at(const SQLite::Statement& statement, int index) {
  if (statement.isColumnNull(index)) return std::nullopt;
  return statement.getColumn(index).getString();
}

std::optional<Timestamp> time_at(const SQLite::Statement& statement, int index) {
  if (statement.isColumnNull(index)) return std::nullopt;
  return from_ms(statement.getColumn(index).getInt64());
}

json::object object_from(const std::string& text) {
  json::value value = json::parse(text);
  if (!value.is_object()) throw std::runtime_error("stored params are not a JSON object");
  return std::move(value.get_object());
}

// put_schedule writes the first 11; the firing mark is written by claims.
constexpr const char* kScheduleColumns =
    "id, agent_id, task, params, cron, timezone, enabled, overlap, created_at, next_run_at, "
    "last_run_id, firing_run_id, firing_host";
constexpr const char* kScheduleWrittenColumns =
    "id, agent_id, task, params, cron, timezone, enabled, overlap, created_at, next_run_at, "
    "last_run_id";

Schedule read_schedule(const SQLite::Statement& s) {
  Schedule out;
  out.id = s.getColumn(0).getString();
  out.agent_id = s.getColumn(1).getString();
  out.task = text_at(s, 2);
  out.params = object_from(s.getColumn(3).getString());
  out.cron = s.getColumn(4).getString();
  out.timezone = s.getColumn(5).getString();
  out.enabled = s.getColumn(6).getInt() != 0;
  out.overlap = parse_overlap(s.getColumn(7).getString()).value_or(Overlap::skip);
  out.created_at = from_ms(s.getColumn(8).getInt64());
  out.next_run_at = time_at(s, 9);
  out.last_run_id = text_at(s, 10);
  out.firing_run_id = text_at(s, 11);
  out.firing_host = text_at(s, 12);
  return out;
}

constexpr const char* kWebhookColumns = "id, url, events, agent_id, secret, created_at";

Webhook read_webhook(const SQLite::Statement& s) {
  Webhook out;
  out.id = s.getColumn(0).getString();
  out.url = s.getColumn(1).getString();
  const json::value events = json::parse(s.getColumn(2).getString());
  for (const json::value& event : events.as_array()) {
    out.events.emplace_back(event.as_string());
  }
  out.agent_id = text_at(s, 3);
  out.secret = text_at(s, 4);
  out.created_at = from_ms(s.getColumn(5).getInt64());
  return out;
}

constexpr const char* kDeliveryColumns =
    "id, webhook_id, event, instance_id, body, attempts, status, last_status_code, last_error, "
    "created_at, delivered_at, next_attempt_at";

Delivery read_delivery(const SQLite::Statement& s) {
  Delivery out;
  out.id = s.getColumn(0).getString();
  out.webhook_id = s.getColumn(1).getString();
  out.event = s.getColumn(2).getString();
  out.instance_id = s.getColumn(3).getString();
  out.body = s.getColumn(4).getString();
  out.attempts = static_cast<std::uint32_t>(s.getColumn(5).getInt64());
  out.status = parse_delivery_status(s.getColumn(6).getString()).value_or(DeliveryStatus::failed);
  if (!s.isColumnNull(7)) out.last_status_code = s.getColumn(7).getInt();
  out.last_error = text_at(s, 8);
  out.created_at = from_ms(s.getColumn(9).getInt64());
  out.delivered_at = time_at(s, 10);
  out.next_attempt_at = time_at(s, 11);
  return out;
}

// The columns of a pending retry, as pending_retry_at reads them.
constexpr const char* kPendingRetrySelect =
    "SELECT failed_run_id, due_at, attempt, agent_id, task, params FROM pending_retries";

PendingRetry pending_retry_at(const SQLite::Statement& s) {
  PendingRetry retry;
  retry.failed_run_id = s.getColumn(0).getString();
  retry.due_at = from_ms(s.getColumn(1).getInt64());
  retry.attempt = static_cast<std::uint32_t>(s.getColumn(2).getInt64());
  retry.agent_id = s.getColumn(3).getString();
  retry.task = text_at(s, 4);
  retry.params = object_from(s.getColumn(5).getString());
  return retry;
}

}  // namespace

struct SqliteAutomationStore::Impl {
  explicit Impl(const std::filesystem::path& file)
      : db(file.string(), SQLite::OPEN_READWRITE, kBusyTimeoutMs) {
    db.exec("PRAGMA foreign_keys = ON");
    if (!db.tableExists("schedules") || !db.tableExists("deliveries")) {
      throw std::runtime_error("database " + file.string() +
                               " has no automation tables; open it with the run store first");
    }
  }
  mutable std::mutex mutex;  // guards db
  SQLite::Database db;
};

SqliteAutomationStore::SqliteAutomationStore(const std::filesystem::path& database)
    : impl_(std::make_unique<Impl>(database)) {}
SqliteAutomationStore::~SqliteAutomationStore() = default;

// ---- schedules ----

void SqliteAutomationStore::put_schedule(const Schedule& schedule) {
  std::lock_guard lock(impl_->mutex);
  // An upsert, not INSERT OR REPLACE: a replace would drop the firing mark.
  SQLite::Statement s(
      impl_->db,
      std::string("INSERT INTO schedules (") + kScheduleWrittenColumns +
          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
          "ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, task = excluded.task, "
          "params = excluded.params, cron = excluded.cron, timezone = excluded.timezone, "
          "enabled = excluded.enabled, overlap = excluded.overlap, "
          "created_at = excluded.created_at, next_run_at = excluded.next_run_at, "
          "last_run_id = excluded.last_run_id");
  s.bind(1, schedule.id);
  s.bind(2, schedule.agent_id);
  bind_text(s, 3, schedule.task);
  s.bind(4, json::serialize(schedule.params));
  s.bind(5, schedule.cron);
  s.bind(6, schedule.timezone);
  s.bind(7, schedule.enabled ? 1 : 0);
  s.bind(8, std::string(to_string(schedule.overlap)));
  s.bind(9, to_ms(schedule.created_at));
  bind_time(s, 10, schedule.next_run_at);
  bind_text(s, 11, schedule.last_run_id);
  s.exec();
}

bool SqliteAutomationStore::delete_schedule(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, "DELETE FROM schedules WHERE id = ?1");
  s.bind(1, id);
  return s.exec() > 0;
}

std::vector<Schedule> SqliteAutomationStore::list_schedules() const {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, std::string("SELECT ") + kScheduleColumns +
                                     " FROM schedules ORDER BY created_at, id");
  std::vector<Schedule> out;
  while (s.executeStep()) out.push_back(read_schedule(s));
  return out;
}

std::optional<Schedule> SqliteAutomationStore::get_schedule(const std::string& id) const {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db,
                      std::string("SELECT ") + kScheduleColumns + " FROM schedules WHERE id = ?1");
  s.bind(1, id);
  if (!s.executeStep()) return std::nullopt;
  return read_schedule(s);
}

std::optional<Schedule> SqliteAutomationStore::claim_schedule_time(const std::string& id,
                                                                   std::optional<Timestamp> due,
                                                                   std::optional<Timestamp> next,
                                                                   const std::string& firing_run_id,
                                                                   const std::string& firing_host) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Transaction transaction(impl_->db);
  SQLite::Statement update(impl_->db,
                           "UPDATE schedules SET next_run_at = ?3, firing_run_id = ?4, "
                           "firing_host = ?5 WHERE id = ?1 AND enabled = 1 AND next_run_at IS ?2");
  update.bind(1, id);
  bind_time(update, 2, due);
  bind_time(update, 3, next);
  update.bind(4, firing_run_id);
  update.bind(5, firing_host);
  if (update.exec() == 0) return std::nullopt;
  SQLite::Statement s(impl_->db,
                      std::string("SELECT ") + kScheduleColumns + " FROM schedules WHERE id = ?1");
  s.bind(1, id);
  if (!s.executeStep()) return std::nullopt;
  Schedule claimed = read_schedule(s);
  s.reset();
  transaction.commit();
  return claimed;
}

void SqliteAutomationStore::set_schedule_last_run(const std::string& id,
                                                  const std::string& run_id) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db,
                      "UPDATE schedules SET last_run_id = ?2, "
                      "firing_host = CASE WHEN firing_run_id = ?2 THEN NULL ELSE firing_host END, "
                      "firing_run_id = CASE WHEN firing_run_id = ?2 THEN NULL ELSE firing_run_id "
                      "END WHERE id = ?1");
  s.bind(1, id);
  s.bind(2, run_id);
  s.exec();
}

void SqliteAutomationStore::clear_schedule_firing(const std::string& id,
                                                  const std::string& run_id) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db,
                      "UPDATE schedules SET firing_run_id = NULL, firing_host = NULL "
                      "WHERE id = ?1 AND firing_run_id = ?2");
  s.bind(1, id);
  s.bind(2, run_id);
  s.exec();
}

// ---- pending retries ----

void SqliteAutomationStore::add_pending_retry(const PendingRetry& retry) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db,
                      "INSERT OR IGNORE INTO pending_retries (failed_run_id, due_at, attempt, "
                      "agent_id, task, params) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  s.bind(1, retry.failed_run_id);
  s.bind(2, to_ms(retry.due_at));
  s.bind(3, static_cast<std::int64_t>(retry.attempt));
  s.bind(4, retry.agent_id);
  bind_text(s, 5, retry.task);
  s.bind(6, json::serialize(retry.params));
  s.exec();
}

// One host: the retry is read, not marked; it stays until it is finished
// (deleted). A host that stopped between starting the retry's run and
// finishing the retry finds that run here, and finishes it instead of
// starting it again.
std::optional<PendingRetry> SqliteAutomationStore::take_pending_retry(
    const std::string& failed_run_id) {
  {
    std::lock_guard lock(impl_->mutex);
    SQLite::Statement started(impl_->db, store::retry_started_sql());
    started.bind(1, failed_run_id);
    if (started.executeStep()) {
      SQLite::Statement finish(impl_->db, "DELETE FROM pending_retries WHERE failed_run_id = ?1");
      finish.bind(1, failed_run_id);
      finish.exec();
      return std::nullopt;
    }
  }
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, std::string(kPendingRetrySelect) + " WHERE failed_run_id = ?1");
  s.bind(1, failed_run_id);
  if (!s.executeStep()) return std::nullopt;
  return pending_retry_at(s);
}

void SqliteAutomationStore::release_pending_retry(const std::string& failed_run_id,
                                                  Timestamp due_at) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, "UPDATE pending_retries SET due_at = ?2 WHERE failed_run_id = ?1");
  s.bind(1, failed_run_id);
  s.bind(2, to_ms(due_at));
  s.exec();
}

void SqliteAutomationStore::finish_pending_retry(const std::string& failed_run_id) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, "DELETE FROM pending_retries WHERE failed_run_id = ?1");
  s.bind(1, failed_run_id);
  s.exec();
}

std::vector<PendingRetry> SqliteAutomationStore::list_pending_retries() const {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, std::string(kPendingRetrySelect) + " ORDER BY due_at");
  std::vector<PendingRetry> out;
  while (s.executeStep()) out.push_back(pending_retry_at(s));
  return out;
}

// ---- webhooks ----

void SqliteAutomationStore::add_webhook(const Webhook& webhook) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, std::string("INSERT INTO webhooks (") + kWebhookColumns +
                                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  json::array events;
  for (const std::string& event : webhook.events) events.emplace_back(event);
  s.bind(1, webhook.id);
  s.bind(2, webhook.url);
  s.bind(3, json::serialize(events));
  bind_text(s, 4, webhook.agent_id);
  bind_text(s, 5, webhook.secret);
  s.bind(6, to_ms(webhook.created_at));
  s.exec();
}

bool SqliteAutomationStore::delete_webhook(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, "DELETE FROM webhooks WHERE id = ?1");
  s.bind(1, id);
  return s.exec() > 0;
}

std::vector<Webhook> SqliteAutomationStore::list_webhooks() const {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, std::string("SELECT ") + kWebhookColumns +
                                     " FROM webhooks ORDER BY created_at, id");
  std::vector<Webhook> out;
  while (s.executeStep()) out.push_back(read_webhook(s));
  return out;
}

std::optional<Webhook> SqliteAutomationStore::get_webhook(const std::string& id) const {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db,
                      std::string("SELECT ") + kWebhookColumns + " FROM webhooks WHERE id = ?1");
  s.bind(1, id);
  if (!s.executeStep()) return std::nullopt;
  return read_webhook(s);
}

// ---- deliveries ----

std::vector<Delivery> SqliteAutomationStore::add_deliveries(
    const std::vector<Delivery>& deliveries, std::chrono::milliseconds /*hold: one host*/) {
  if (deliveries.empty()) return {};
  std::lock_guard lock(impl_->mutex);
  SQLite::Transaction transaction(impl_->db);
  SQLite::Statement s(impl_->db, std::string("INSERT INTO deliveries (") + kDeliveryColumns +
                                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                                     "?12)");
  for (const Delivery& d : deliveries) {
    s.reset();
    s.clearBindings();
    s.bind(1, d.id);
    s.bind(2, d.webhook_id);
    s.bind(3, d.event);
    s.bind(4, d.instance_id);
    s.bind(5, d.body);
    s.bind(6, static_cast<std::int64_t>(d.attempts));
    s.bind(7, std::string(to_string(d.status)));
    if (d.last_status_code) {
      s.bind(8, *d.last_status_code);
    } else {
      s.bind(8);
    }
    bind_text(s, 9, d.last_error);
    s.bind(10, to_ms(d.created_at));
    bind_time(s, 11, d.delivered_at);
    bind_time(s, 12, d.next_attempt_at);
    s.exec();
  }
  transaction.commit();
  return deliveries;
}

void SqliteAutomationStore::update_delivery(const Delivery& d, std::size_t keep,
                                            std::chrono::milliseconds /*hold: one host*/) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Transaction transaction(impl_->db);
  SQLite::Statement s(impl_->db,
                      "UPDATE deliveries SET attempts = ?2, status = ?3, last_status_code = ?4, "
                      "last_error = ?5, delivered_at = ?6, next_attempt_at = ?7 WHERE id = ?1");
  s.bind(1, d.id);
  s.bind(2, static_cast<std::int64_t>(d.attempts));
  s.bind(3, std::string(to_string(d.status)));
  if (d.last_status_code) {
    s.bind(4, *d.last_status_code);
  } else {
    s.bind(4);
  }
  bind_text(s, 5, d.last_error);
  bind_time(s, 6, d.delivered_at);
  bind_time(s, 7, d.next_attempt_at);
  s.exec();
  if (d.status != DeliveryStatus::pending) {
    SQLite::Statement prune(impl_->db,
                            "DELETE FROM deliveries WHERE webhook_id = ?1 AND status != 'pending' "
                            "AND seq < (SELECT seq FROM deliveries WHERE webhook_id = ?1 "
                            "ORDER BY seq DESC LIMIT 1 OFFSET ?2)");
    prune.bind(1, d.webhook_id);
    prune.bind(2, static_cast<std::int64_t>(keep > 0 ? keep - 1 : 0));
    prune.exec();
  }
  transaction.commit();
}

std::vector<Delivery> SqliteAutomationStore::list_deliveries(const std::string& webhook_id,
                                                             std::size_t limit) const {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, std::string("SELECT ") + kDeliveryColumns +
                                     " FROM deliveries WHERE webhook_id = ?1 "
                                     "ORDER BY seq DESC LIMIT ?2");
  s.bind(1, webhook_id);
  s.bind(2, static_cast<std::int64_t>(limit));
  std::vector<Delivery> out;
  while (s.executeStep()) out.push_back(read_delivery(s));
  return out;
}

std::vector<Delivery> SqliteAutomationStore::claim_pending_deliveries(
    std::chrono::milliseconds /*hold: one host*/) {
  std::lock_guard lock(impl_->mutex);
  SQLite::Statement s(impl_->db, std::string("SELECT ") + kDeliveryColumns +
                                     " FROM deliveries WHERE status = 'pending' ORDER BY seq");
  std::vector<Delivery> out;
  while (s.executeStep()) out.push_back(read_delivery(s));
  return out;
}

}  // namespace nightshift
