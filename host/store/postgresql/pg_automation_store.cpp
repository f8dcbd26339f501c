#include "store/postgresql/pg_automation_store.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>

#include "store/run_row.hpp"
#include "store/store.hpp"

namespace nightshift {

namespace json = boost::json;
using store::from_ms;
using store::to_ms;

namespace {

// A started retry stays as a marker this long (a host that sees the
// failure later cannot queue it again), then is deleted.
constexpr std::chrono::hours kStartedRetryKept{24};
// A retry taken and neither started nor released for this long was taken by
// a host that died (a start takes seconds): any host may take it again. A
// host that stopped heartbeating for a host lease gives up its retries
// sooner (taken_by_a_gone_host).
constexpr std::chrono::minutes kTakenRetryLease{10};

// A host row whose host has not heartbeated (the run store's heartbeat) for
// the host lease, in milliseconds as parameter $`lease`, on the database's
// clock: the other hosts have failed its runs, and take over its claims.
std::string gone_for_lease(int lease) {
  return std::string("last_seen_at < ") + pg::kDbNowMs + " - $" + std::to_string(lease);
}

// A retry taken by a host gone for the lease ($`lease`).
std::string taken_by_a_gone_host(int lease) {
  return "taken_by IN (SELECT name FROM hosts WHERE " + gone_for_lease(lease) + ")";
}

pg::Param text_param(const std::optional<std::string>& text) {
  return text;
}

pg::Param time_param(const std::optional<Timestamp>& t) {
  if (!t) return std::nullopt;
  return std::to_string(to_ms(*t));
}

pg::Param ms_param(Timestamp t) {
  return std::to_string(to_ms(t));
}

std::optional<Timestamp> time_at(const pg::Result& r, int row, int column) {
  const auto ms = r.optional_int64(row, column);
  if (!ms) return std::nullopt;
  return from_ms(*ms);
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

Schedule read_schedule(const pg::Result& r, int row) {
  Schedule out;
  out.id = r.string(row, 0);
  out.agent_id = r.string(row, 1);
  out.task = r.optional_string(row, 2);
  out.params = object_from(r.string(row, 3));
  out.cron = r.string(row, 4);
  out.timezone = r.string(row, 5);
  out.enabled = r.boolean(row, 6);
  out.overlap = parse_overlap(r.text(row, 7)).value_or(Overlap::skip);
  out.created_at = from_ms(r.int64(row, 8));
  out.next_run_at = time_at(r, row, 9);
  out.last_run_id = r.optional_string(row, 10);
  out.firing_run_id = r.optional_string(row, 11);
  out.firing_host = r.optional_string(row, 12);
  return out;
}

constexpr const char* kWebhookColumns = "id, url, events, agent_id, secret, created_at";

Webhook read_webhook(const pg::Result& r, int row) {
  Webhook out;
  out.id = r.string(row, 0);
  out.url = r.string(row, 1);
  const json::value events = json::parse(r.text(row, 2));
  for (const json::value& event : events.as_array()) out.events.emplace_back(event.as_string());
  out.agent_id = r.optional_string(row, 3);
  out.secret = r.optional_string(row, 4);
  out.created_at = from_ms(r.int64(row, 5));
  return out;
}

constexpr const char* kDeliveryColumns =
    "id, webhook_id, event, instance_id, body, attempts, status, last_status_code, last_error, "
    "created_at, delivered_at, next_attempt_at";

// The delivery's columns from `first` on, in kDeliveryColumns' order.
Delivery read_delivery(const pg::Result& r, int row, int first = 0) {
  Delivery out;
  out.id = r.string(row, first);
  out.webhook_id = r.string(row, first + 1);
  out.event = r.string(row, first + 2);
  out.instance_id = r.string(row, first + 3);
  out.body = r.string(row, first + 4);
  out.attempts = static_cast<std::uint32_t>(r.int64(row, first + 5));
  out.status = parse_delivery_status(r.text(row, first + 6)).value_or(DeliveryStatus::failed);
  if (const auto code = r.optional_int64(row, first + 7)) {
    out.last_status_code = static_cast<int>(*code);
  }
  out.last_error = r.optional_string(row, first + 8);
  out.created_at = from_ms(r.int64(row, first + 9));
  out.delivered_at = time_at(r, row, first + 10);
  out.next_attempt_at = time_at(r, row, first + 11);
  return out;
}

constexpr const char* kRetryColumns =
    "failed_run_id, due_at, attempt, agent_id, task, params, run_id";
constexpr int kRetryColumnCount = 7;

PendingRetry read_retry(const pg::Result& r, int row) {
  PendingRetry retry;
  retry.failed_run_id = r.string(row, 0);
  retry.due_at = from_ms(r.int64(row, 1));
  retry.attempt = static_cast<std::uint32_t>(r.int64(row, 2));
  retry.agent_id = r.string(row, 3);
  retry.task = r.optional_string(row, 4);
  retry.params = object_from(r.string(row, 5));
  retry.run_id = r.optional_string(row, 6);
  return retry;
}

std::string hold_ms(std::chrono::milliseconds hold) {
  return std::to_string(hold.count());
}

}  // namespace

PgAutomationStore::PgAutomationStore(const std::string& conninfo, std::string host_name,
                                     std::chrono::milliseconds host_lease)
    : host_name_(std::move(host_name)),
      host_lease_(host_lease),
      conn_(std::make_unique<pg::Connection>(conninfo)) {
  const pg::Result tables = conn_->exec(
      "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND "
      "tablename IN ('schedules', 'webhooks', 'deliveries', 'pending_retries')");
  if (tables.int64(0, 0) != 4) {
    throw std::runtime_error("the PostgreSQL database at " + pg::redact(conninfo) +
                             " has no automation tables; open it with the run store first (it "
                             "migrates the schema)");
  }
}

PgAutomationStore::~PgAutomationStore() = default;

pg::Result PgAutomationStore::exec(const std::string& sql,
                                   const std::vector<pg::Param>& params) const {
  if (!conn_->ok()) conn_->reconnect();
  return conn_->exec(sql, params);
}

// ---- schedules ----

void PgAutomationStore::put_schedule(const Schedule& s) {
  std::lock_guard lock(mutex_);
  // created_at and last_run_id are kept on a replace: the run a firing on
  // another host recorded is not overwritten by an edit made from an older
  // copy (set_schedule_last_run sets it).
  exec(std::string("INSERT INTO schedules (") + kScheduleWrittenColumns +
           ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
           "ON CONFLICT (id) DO UPDATE SET agent_id = EXCLUDED.agent_id, task = EXCLUDED.task, "
           "params = EXCLUDED.params, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, "
           "enabled = EXCLUDED.enabled, overlap = EXCLUDED.overlap, "
           "next_run_at = EXCLUDED.next_run_at, "
           "last_run_id = coalesce(schedules.last_run_id, EXCLUDED.last_run_id)",
       {s.id, s.agent_id, text_param(s.task), json::serialize(s.params), s.cron, s.timezone,
        std::string(s.enabled ? "true" : "false"), std::string(to_string(s.overlap)),
        ms_param(s.created_at), time_param(s.next_run_at), text_param(s.last_run_id)});
}

bool PgAutomationStore::delete_schedule(const std::string& id) {
  std::lock_guard lock(mutex_);
  return exec("DELETE FROM schedules WHERE id = $1", {id}).affected() > 0;
}

std::vector<Schedule> PgAutomationStore::list_schedules() const {
  std::lock_guard lock(mutex_);
  const pg::Result r =
      exec(std::string("SELECT ") + kScheduleColumns + " FROM schedules ORDER BY created_at, id");
  std::vector<Schedule> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) out.push_back(read_schedule(r, row));
  return out;
}

std::optional<Schedule> PgAutomationStore::get_schedule(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const pg::Result r =
      exec(std::string("SELECT ") + kScheduleColumns + " FROM schedules WHERE id = $1", {id});
  if (r.rows() == 0) return std::nullopt;
  return read_schedule(r, 0);
}

std::optional<Schedule> PgAutomationStore::claim_schedule_time(const std::string& id,
                                                               std::optional<Timestamp> due,
                                                               std::optional<Timestamp> next,
                                                               const std::string& firing_run_id,
                                                               const std::string& firing_host) {
  std::lock_guard lock(mutex_);
  // One statement: of several hosts whose due queues fire the same time,
  // the first update moves next_run_at and the others match no row.
  const pg::Result r =
      exec(std::string("UPDATE schedules SET next_run_at = $3, firing_run_id = $4, "
                       "firing_host = $5 WHERE id = $1 AND enabled "
                       "AND next_run_at IS NOT DISTINCT FROM $2 RETURNING ") +
               kScheduleColumns,
           {id, time_param(due), time_param(next), firing_run_id, firing_host});
  if (r.rows() == 0) return std::nullopt;
  return read_schedule(r, 0);
}

void PgAutomationStore::set_schedule_last_run(const std::string& id, const std::string& run_id) {
  std::lock_guard lock(mutex_);
  exec(
      "UPDATE schedules SET last_run_id = $2, "
      "firing_host = CASE WHEN firing_run_id = $2 THEN NULL ELSE firing_host END, "
      "firing_run_id = CASE WHEN firing_run_id = $2 THEN NULL ELSE firing_run_id END "
      "WHERE id = $1",
      {id, run_id});
}

void PgAutomationStore::clear_schedule_firing(const std::string& id, const std::string& run_id) {
  std::lock_guard lock(mutex_);
  exec(
      "UPDATE schedules SET firing_run_id = NULL, firing_host = NULL "
      "WHERE id = $1 AND firing_run_id = $2",
      {id, run_id});
}

std::vector<Schedule> PgAutomationStore::adopt_schedule_firings(const std::string& host) {
  const std::string gone = gone_for_lease(2);
  const std::string lease = std::to_string(host_lease_.count());
  std::lock_guard lock(mutex_);
  const pg::Result marked = exec(
      "SELECT s.id, s.firing_run_id, s.firing_host FROM schedules s "
      "JOIN hosts ON hosts.name = s.firing_host "
      "WHERE s.firing_run_id IS NOT NULL AND s.firing_host <> $1 AND hosts." +
          gone,
      {host, lease});
  std::vector<Schedule> adopted;
  for (int row = 0; row < marked.rows(); ++row) {
    const std::string id = marked.string(row, 0);
    const std::string run_id = marked.string(row, 1);
    const std::string from = marked.string(row, 2);
    pg::Transaction transaction(*conn_);
    // The gone host's row is locked first: a host of that name coming back
    // meanwhile registers (refreshing the row) either after this move, and
    // then finds its mark moved, or before it, and then keeps its mark.
    if (conn_->exec("SELECT 1 FROM hosts WHERE name = $1 AND " + gone + " FOR SHARE", {from, lease})
            .rows() == 0) {
      continue;
    }
    // Compare and set: of several hosts adopting at once, one moves it.
    const pg::Result moved = conn_->exec(
        "UPDATE schedules SET firing_host = $4 WHERE id = $1 AND firing_run_id = $2 "
        "AND firing_host = $3 RETURNING " +
            std::string(kScheduleColumns),
        {id, run_id, from, host});
    transaction.commit();
    if (moved.rows() == 1) adopted.push_back(read_schedule(moved, 0));
  }
  return adopted;
}

// ---- pending retries ----

void PgAutomationStore::add_pending_retry(const PendingRetry& retry) {
  std::lock_guard lock(mutex_);
  exec(
      "INSERT INTO pending_retries (failed_run_id, due_at, attempt, agent_id, task, params) "
      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (failed_run_id) DO NOTHING",
      {retry.failed_run_id, ms_param(retry.due_at), std::to_string(retry.attempt), retry.agent_id,
       text_param(retry.task), json::serialize(retry.params)});
}

std::vector<PendingRetry> PgAutomationStore::list_pending_retries() const {
  std::lock_guard lock(mutex_);
  const pg::Result r =
      exec(std::string("SELECT ") + kRetryColumns +
               " FROM pending_retries WHERE NOT started AND (taken_by IS NULL OR taken_at < $1 "
               "OR " +
               taken_by_a_gone_host(2) + ") ORDER BY due_at",
           {ms_param(now_ms() - kTakenRetryLease), std::to_string(host_lease_.count())});
  std::vector<PendingRetry> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) out.push_back(read_retry(r, row));
  return out;
}

std::optional<PendingRetry> PgAutomationStore::take_pending_retry(
    const std::string& failed_run_id) {
  std::lock_guard lock(mutex_);
  const Timestamp now = now_ms();
  const pg::Result r =
      exec(std::string("UPDATE pending_retries SET taken_by = $2, taken_at = $3, "
                       "run_id = coalesce(run_id, $6) "
                       "WHERE failed_run_id = $1 AND NOT started "
                       "AND (taken_by IS NULL OR taken_by = $2 OR taken_at < $4 OR ") +
               taken_by_a_gone_host(5) + ") RETURNING " + kRetryColumns +
               ", EXISTS (SELECT 1 FROM runs WHERE retry_of = $1) AS run_exists",
           {failed_run_id, host_name_, ms_param(now), ms_param(now - kTakenRetryLease),
            std::to_string(host_lease_.count()), generate_uuid()});
  if (r.rows() == 0) return std::nullopt;
  // A host that died between starting the retry's run and marking the retry
  // started: the run is there, so the retry is marked started now, not
  // started again.
  if (r.boolean(0, kRetryColumnCount)) {
    exec("UPDATE pending_retries SET started = true WHERE failed_run_id = $1", {failed_run_id});
    return std::nullopt;
  }
  return read_retry(r, 0);
}

void PgAutomationStore::release_pending_retry(const std::string& failed_run_id, Timestamp due_at) {
  std::lock_guard lock(mutex_);
  exec(
      "UPDATE pending_retries SET taken_by = NULL, taken_at = NULL, due_at = $3 "
      "WHERE failed_run_id = $1 AND taken_by = $2",
      {failed_run_id, host_name_, ms_param(due_at)});
}

void PgAutomationStore::finish_pending_retry(const std::string& failed_run_id) {
  // The row stays as the marker that the retry was started; the markers of
  // long ago go now.
  const Timestamp now = now_ms();
  std::lock_guard lock(mutex_);
  exec(
      "UPDATE pending_retries SET started = true, taken_by = $2, taken_at = $3 "
      "WHERE failed_run_id = $1",
      {failed_run_id, host_name_, ms_param(now)});
  exec("DELETE FROM pending_retries WHERE started AND taken_at < $1",
       {ms_param(now - kStartedRetryKept)});
}

// ---- webhooks ----

void PgAutomationStore::add_webhook(const Webhook& webhook) {
  json::array events;
  for (const std::string& event : webhook.events) events.emplace_back(event);
  std::lock_guard lock(mutex_);
  exec(
      std::string("INSERT INTO webhooks (") + kWebhookColumns + ") VALUES ($1, $2, $3, $4, $5, $6)",
      {webhook.id, webhook.url, json::serialize(events), text_param(webhook.agent_id),
       text_param(webhook.secret), ms_param(webhook.created_at)});
}

bool PgAutomationStore::delete_webhook(const std::string& id) {
  std::lock_guard lock(mutex_);
  return exec("DELETE FROM webhooks WHERE id = $1", {id}).affected() > 0;
}

std::vector<Webhook> PgAutomationStore::list_webhooks() const {
  std::lock_guard lock(mutex_);
  const pg::Result r =
      exec(std::string("SELECT ") + kWebhookColumns + " FROM webhooks ORDER BY created_at, id");
  std::vector<Webhook> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) out.push_back(read_webhook(r, row));
  return out;
}

std::optional<Webhook> PgAutomationStore::get_webhook(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const pg::Result r =
      exec(std::string("SELECT ") + kWebhookColumns + " FROM webhooks WHERE id = $1", {id});
  if (r.rows() == 0) return std::nullopt;
  return read_webhook(r, 0);
}

// ---- deliveries ----

std::vector<Delivery> PgAutomationStore::add_deliveries(const std::vector<Delivery>& deliveries,
                                                        std::chrono::milliseconds hold) {
  std::vector<Delivery> created;
  if (deliveries.empty()) return created;
  std::lock_guard lock(mutex_);
  // One statement per delivery, not one transaction: a webhook deleted
  // meanwhile (by any host) loses its delivery, not the others'.
  for (const Delivery& d : deliveries) {
    // Held from its first attempt (or now, when it is stored late).
    const Timestamp first = std::max(d.next_attempt_at.value_or(d.created_at), now_ms());
    const pg::Result r =
        exec(std::string("INSERT INTO deliveries (") + kDeliveryColumns +
                 ", claimed_by, claimed_until) "
                 "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 "
                 "WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $2) "
                 "ON CONFLICT (id) DO NOTHING RETURNING id",
             {d.id, d.webhook_id, d.event, d.instance_id, d.body, std::to_string(d.attempts),
              std::string(to_string(d.status)),
              d.last_status_code ? pg::Param(std::to_string(*d.last_status_code))
                                 : pg::Param(std::nullopt),
              text_param(d.last_error), ms_param(d.created_at), time_param(d.delivered_at),
              time_param(d.next_attempt_at), host_name_, ms_param(first + hold)});
    if (r.rows() == 1) created.push_back(d);
  }
  return created;
}

void PgAutomationStore::update_delivery(const Delivery& d, std::size_t keep,
                                        std::chrono::milliseconds hold) {
  std::lock_guard lock(mutex_);
  pg::Transaction transaction(*conn_);
  const pg::Param until = d.status == DeliveryStatus::pending && d.next_attempt_at
                              ? ms_param(*d.next_attempt_at + hold)
                              : pg::Param(std::nullopt);
  conn_->exec(
      "UPDATE deliveries SET attempts = $2, status = $3, last_status_code = $4, "
      "last_error = $5, delivered_at = $6, next_attempt_at = $7, claimed_until = $9 "
      "WHERE id = $1 AND claimed_by = $8",
      {d.id, std::to_string(d.attempts), std::string(to_string(d.status)),
       d.last_status_code ? pg::Param(std::to_string(*d.last_status_code))
                          : pg::Param(std::nullopt),
       text_param(d.last_error), time_param(d.delivered_at), time_param(d.next_attempt_at),
       host_name_, until});
  if (d.status != DeliveryStatus::pending) {
    conn_->exec(
        "DELETE FROM deliveries WHERE webhook_id = $1 AND status != 'pending' "
        "AND seq < (SELECT seq FROM deliveries WHERE webhook_id = $1 "
        "ORDER BY seq DESC LIMIT 1 OFFSET $2)",
        {d.webhook_id, std::to_string(keep > 0 ? keep - 1 : 0)});
  }
  transaction.commit();
}

std::vector<Delivery> PgAutomationStore::list_deliveries(const std::string& webhook_id,
                                                         std::size_t limit) const {
  std::lock_guard lock(mutex_);
  const pg::Result r = exec(std::string("SELECT ") + kDeliveryColumns +
                                " FROM deliveries WHERE webhook_id = $1 ORDER BY seq DESC LIMIT $2",
                            {webhook_id, std::to_string(limit)});
  std::vector<Delivery> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) out.push_back(read_delivery(r, row));
  return out;
}

std::vector<Delivery> PgAutomationStore::claim_pending_deliveries(std::chrono::milliseconds hold) {
  std::lock_guard lock(mutex_);
  const std::string now = ms_param(now_ms()).value();
  // SKIP LOCKED: two hosts sweeping at once split the rows, never share one.
  const pg::Result r = exec(
      std::string("UPDATE deliveries SET claimed_by = $1, "
                  "claimed_until = greatest(coalesce(next_attempt_at, $2::bigint), $2::bigint) "
                  "+ $3::bigint "
                  "WHERE seq IN (SELECT seq FROM deliveries WHERE status = 'pending' AND "
                  "(claimed_until IS NULL OR claimed_until < $2::bigint) "
                  "ORDER BY seq FOR UPDATE SKIP LOCKED) RETURNING seq, ") +
          kDeliveryColumns,
      {host_name_, now, hold_ms(hold)});
  std::vector<std::pair<std::int64_t, Delivery>> claimed;
  claimed.reserve(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) {
    claimed.emplace_back(r.int64(row, 0), read_delivery(r, row, 1));
  }
  // UPDATE ... RETURNING gives no order: oldest first, as documented.
  std::sort(claimed.begin(), claimed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Delivery> out;
  out.reserve(claimed.size());
  for (auto& [seq, d] : claimed) out.push_back(std::move(d));
  return out;
}

}  // namespace nightshift
