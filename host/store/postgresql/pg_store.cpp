#include "store/postgresql/pg_store.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <limits>
#include <unordered_set>

#include "store/postgresql/pg_schema.hpp"
#include "store/run_row.hpp"

namespace nightshift {

namespace {

using pg::Param;

constexpr std::size_t kMaxHistoryLimit = 500;
// As the SQLite store: one prune chunk is a short transaction.
constexpr std::int64_t kPruneChunkRuns = 256;
constexpr std::uint64_t kPruneChunkLogEntries = 200000;

using pg::kDbNowMs;

// The channels: what changed (payload: the writing host's name, then one
// line per change), a run joined the queue, a request for a host (payload:
// its name).
constexpr const char* kEventsChannel = "nightshift_events";
constexpr const char* kQueueChannel = "nightshift_queue";
constexpr const char* kRequestsChannel = "nightshift_requests";
// A NOTIFY payload must stay under 8000 bytes.
constexpr std::size_t kMaxPayload = 7000;
// The host name of changes every host re-reads, the writer's included.
constexpr const char* kEveryHost = "*";

// The columns every run query selects: the same list as the SQLite store's.
using store::kRunColumnCount;
using store::kRunColumns;

// The insert of many runs: one text array per column, unnested in order.
const std::string kInsertRunRows = R"sql(
  INSERT INTO runs (instance_id, thread_id, agent_id, agent_name, agent_source, task, params,
                    status, finished, created_at, started_at, ended_at, progress, error, result,
                    log_count, prompt_tokens, completion_tokens, accepts_messages, isolation,
                    attempt, retry_of, rerun_of, schedule_id, host, fence, max_concurrent,
                    admitted_by)
  SELECT u.instance_id, u.thread_id, u.agent_id, u.agent_name, u.agent_source, u.task, u.params,
         u.status, u.status IN ('completed', 'failed', 'cancelled'), u.created_at::bigint,
         u.started_at::bigint, u.ended_at::bigint, u.progress::double precision, u.error,
         u.result, u.log_count::bigint, u.prompt_tokens::bigint, u.completion_tokens::bigint,
         u.accepts_messages::boolean, u.isolation, u.attempt::bigint, u.retry_of, u.rerun_of,
         u.schedule_id, u.host, u.fence::bigint, u.max_concurrent::bigint, $27
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
              $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
              $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
              $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[],
              $25::text[], $26::text[])
       WITH ORDINALITY AS u(instance_id, thread_id, agent_id, agent_name, agent_source, task,
                            params, status, created_at, started_at, ended_at, progress, error,
                            result, log_count, prompt_tokens, completion_tokens,
                            accepts_messages, isolation, attempt, retry_of, rerun_of,
                            schedule_id, host, fence, max_concurrent, position)
  ORDER BY u.position
)sql";

// Runs' first records (UpsertRun::first): an id recorded already fails the
// statement (unique_violation), and so the batch.
const std::string kInsertRuns = kInsertRunRows + " RETURNING instance_id";

// The upsert of many runs. Every row carries the fence the writer holds for
// the run; a stored row whose fence differs is left alone: another host has
// taken the run over.
const std::string kUpsertRuns = kInsertRunRows + R"sql(
  ON CONFLICT (instance_id) DO UPDATE SET thread_id = excluded.thread_id,
    agent_id = excluded.agent_id, agent_name = excluded.agent_name,
    agent_source = excluded.agent_source, task = excluded.task, params = excluded.params,
    status = excluded.status, finished = excluded.finished, created_at = excluded.created_at,
    started_at = excluded.started_at, ended_at = excluded.ended_at,
    progress = excluded.progress, error = excluded.error, result = excluded.result,
    prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
    accepts_messages = excluded.accepts_messages, isolation = excluded.isolation,
    attempt = excluded.attempt, retry_of = excluded.retry_of, rerun_of = excluded.rerun_of,
    schedule_id = excluded.schedule_id, host = excluded.host, log_count = greatest(runs.log_count, excluded.log_count),
    max_concurrent = coalesce(excluded.max_concurrent, runs.max_concurrent)
  WHERE runs.fence = excluded.fence
  RETURNING instance_id
)sql";

// The progress, token usage and log count of many active runs, each with
// the fence the writer holds for it (a run another host took over, or one
// already finished, is left alone); the log count only grows. One element
// per run: an UPDATE joined to two rows of one run takes either.
const std::string kUpdateProgress = R"sql(
  UPDATE runs SET progress = u.progress::double precision,
    prompt_tokens = u.prompt_tokens::bigint, completion_tokens = u.completion_tokens::bigint,
    log_count = greatest(runs.log_count, u.log_count::bigint)
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       AS u(instance_id, progress, log_count, prompt_tokens, completion_tokens, fence)
  WHERE runs.instance_id = u.instance_id AND runs.fence = u.fence::bigint AND NOT runs.finished
)sql";

// Log entries of many runs in one statement; raises each run's log count.
// An entry of an unknown run fails the statement (its run is NULL). The
// runs to raise are also named as an array: the planner cannot tell how few
// rows the unnested arrays make and would otherwise join them with a scan
// of the whole runs table, a cost growing with the history. A run whose
// count is already as high (its record came in the same batch) is left
// alone: an update would write a new version of its row for nothing.
const std::string kInsertLogs = R"sql(
  WITH v AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
      AS v(instance_id, seq, ts, level, message, source)),
  ins AS (
    INSERT INTO logs (run, seq, ts, level, message, source)
    SELECT (SELECT r.id FROM runs r WHERE r.instance_id = v.instance_id), v.seq::bigint,
           v.ts::bigint, v.level::smallint, v.message, v.source::smallint
    FROM v
    RETURNING run, seq),
  raised AS (
    UPDATE runs SET log_count = greatest(runs.log_count, m.last)
    FROM (SELECT run, max(seq) AS last FROM ins GROUP BY run) m
    WHERE runs.id = m.run AND runs.id = ANY(ARRAY(SELECT DISTINCT run FROM ins))
      AND runs.log_count < m.last
    RETURNING 1)
  SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM raised)
)sql";

std::string ms_text(Timestamp t) {
  return std::to_string(store::to_ms(t));
}

Param optional_ms(const std::optional<Timestamp>& t) {
  if (!t) return std::nullopt;
  return ms_text(*t);
}

std::string double_text(double value) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc{} ? std::string(buf, end) : std::to_string(value);
}

std::string u64_text(std::uint64_t value) {
  return std::to_string(std::min<std::uint64_t>(value, std::numeric_limits<std::int64_t>::max()));
}

// A row of a result as read_run_fields reads it.
class ResultRow {
 public:
  ResultRow(const pg::Result& result, int row) : result_(result), row_(row) {}
  bool is_null(store::RunField field) const { return result_.is_null(row_, index(field)); }
  std::string text(store::RunField field) const { return result_.string(row_, index(field)); }
  std::string_view json(store::RunField field) const { return result_.text(row_, index(field)); }
  std::int64_t int64(store::RunField field) const { return result_.int64(row_, index(field)); }
  double real(store::RunField field) const { return result_.real(row_, index(field)); }
  bool boolean(store::RunField field) const { return result_.boolean(row_, index(field)); }

 private:
  static int index(store::RunField field) { return static_cast<int>(field); }
  const pg::Result& result_;
  int row_;
};

// A run selected with kRunColumns from column 0, read as the SQLite store
// reads one (store/run_fields.hpp): never throws for a malformed value.
Run read_run(const pg::Result& r, int row) {
  return store::read_run_fields(ResultRow(r, row));
}

void check_history_query(const HistoryQuery& query) {
  if (query.limit < 1 || query.limit > kMaxHistoryLimit) {
    throw std::invalid_argument("history limit must be between 1 and 500");
  }
  if (query.status && !is_terminal(*query.status)) {
    throw std::invalid_argument("history status must be a terminal status");
  }
}

// Which upserts of a batch to write, and where: as the SQLite store does it
// (run_store.cpp, plan_upserts), the upserts of a run up to its next delete
// or prune are written once, with the last state, at the first position.
//
// A progress update is not written when an upsert of its run follows it in
// the batch (not behind a delete or prune of it): that record was taken
// later, and carries the run's progress, usage and count as they were then.
struct UpsertPlan {
  std::vector<std::size_t> source;       // per op: the op to write here, or npos
  std::vector<std::uint64_t> log_count;  // per op: the group's highest count
  std::vector<bool> first;               // per op: the group holds its run's first record
  std::vector<bool> superseded;          // per op: an UpdateProgress a later upsert covers
};

UpsertPlan plan_upserts(const std::vector<WriteOp>& ops) {
  constexpr auto npos = std::numeric_limits<std::size_t>::max();
  UpsertPlan plan{std::vector<std::size_t>(ops.size(), npos),
                  std::vector<std::uint64_t>(ops.size(), 0), std::vector<bool>(ops.size()),
                  std::vector<bool>(ops.size())};
  std::unordered_map<std::string_view, std::size_t> open;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (const auto* upsert = std::get_if<UpsertRun>(&ops[i])) {
      const auto [group, is_new] = open.try_emplace(upsert->run().instance_id, i);
      plan.source[group->second] = i;
      if (upsert->is_first()) plan.first[group->second] = true;
      plan.log_count[group->second] =
          is_new ? upsert->run().log_count
                 : std::max(plan.log_count[group->second], upsert->run().log_count);
    } else if (const auto* deletion = std::get_if<DeleteRun>(&ops[i])) {
      open.erase(deletion->instance_id);
    } else if (std::holds_alternative<PruneRuns>(ops[i])) {
      open.clear();
    }
  }
  std::unordered_set<std::string_view> upserted_later;
  for (std::size_t i = ops.size(); i-- > 0;) {
    if (const auto* upsert = std::get_if<UpsertRun>(&ops[i])) {
      upserted_later.insert(upsert->run().instance_id);
    } else if (const auto* deletion = std::get_if<DeleteRun>(&ops[i])) {
      upserted_later.erase(deletion->instance_id);
    } else if (std::holds_alternative<PruneRuns>(ops[i])) {
      upserted_later.clear();
    } else if (const auto* update = std::get_if<UpdateProgress>(&ops[i])) {
      plan.superseded[i] = upserted_later.contains(update->instance_id);
    }
  }
  return plan;
}

constexpr const char* kNotify =
    "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)";

std::vector<Param> notify_params(const std::string& channel,
                                 const std::vector<std::string>& payloads) {
  std::vector<Param> channels(payloads.size(), Param(channel));
  std::vector<Param> texts(payloads.begin(), payloads.end());
  return {pg::text_array(channels), pg::text_array(texts)};
}

// Sends `payloads` on `channel` (one NOTIFY each), delivered at commit.
void send_notifications(pg::Connection& conn, const std::string& channel,
                        const std::vector<std::string>& payloads) {
  if (payloads.empty()) return;
  conn.exec_prepared("notify", kNotify, notify_params(channel, payloads));
}

// Change lines under a header naming the writing host, cut into payloads
// that fit a NOTIFY.
std::vector<std::string> change_payloads(const std::string& host,
                                         const std::vector<std::string>& lines) {
  std::vector<std::string> payloads;
  std::string current;
  for (const std::string& line : lines) {
    if (!current.empty() && current.size() + line.size() + 1 > kMaxPayload) {
      payloads.push_back(std::move(current));
      current.clear();
    }
    if (current.empty()) current = host;
    current += '\n';
    current += line;
  }
  if (!current.empty()) payloads.push_back(std::move(current));
  return payloads;
}

// Tells every host, the writer's included, to re-read these runs.
void notify_runs_changed(pg::Connection& conn, const std::vector<std::string>& ids) {
  std::vector<std::string> lines;
  lines.reserve(ids.size());
  for (const std::string& id : ids) lines.push_back("r" + id);
  send_notifications(conn, kEventsChannel, change_payloads(kEveryHost, lines));
}

std::optional<StoreChange> parse_change(std::string_view line) {
  if (line.size() < 2) return std::nullopt;
  StoreChange change;
  switch (line.front()) {
    case 'r':
      change.kind = StoreChange::Kind::run;
      break;
    case 'd':
      change.kind = StoreChange::Kind::deleted;
      break;
    case 'l': {
      change.kind = StoreChange::Kind::logs;
      const auto space = line.find(' ');
      if (space == std::string_view::npos) return std::nullopt;
      const std::string_view seq = line.substr(space + 1);
      std::from_chars(seq.data(), seq.data() + seq.size(), change.seq);
      line = line.substr(0, space);
      break;
    }
    default:
      return std::nullopt;
  }
  change.instance_id = std::string(line.substr(1));
  return change;
}

}  // namespace

// ---------------------------------------------------------------------------
// The read pool

class PostgresStore::Lease {
 public:
  Lease(Pool& pool, std::unique_ptr<pg::Connection> conn) : pool_(&pool), conn_(std::move(conn)) {}
  Lease(Lease&& other) noexcept = default;
  ~Lease() {
    if (!conn_ || !conn_->ok()) return;  // a broken connection is dropped
    std::lock_guard lock(pool_->mutex);
    pool_->idle.push_back(std::move(conn_));
  }
  pg::Connection* operator->() { return conn_.get(); }
  pg::Connection& operator*() { return *conn_; }

 private:
  Pool* pool_;
  std::unique_ptr<pg::Connection> conn_;
};

PostgresStore::Lease PostgresStore::take(Pool& pool) const {
  {
    std::lock_guard lock(pool.mutex);
    if (!pool.idle.empty()) {
      auto conn = std::move(pool.idle.back());
      pool.idle.pop_back();
      return Lease(pool, std::move(conn));
    }
  }
  // No idle connection: a new one (idle ones beyond the pool size are kept
  // too; a host has a few threads that read or write, not hundreds).
  return Lease(pool, std::make_unique<pg::Connection>(location_.uri));
}

PostgresStore::Lease PostgresStore::borrow() const {
  return take(readers_);
}

PostgresStore::Lease PostgresStore::borrow_writer() const {
  return take(writers_);
}

// ---------------------------------------------------------------------------
// Construction

PostgresStore::PostgresStore(StoreLocation location)
    : SharedQueue(location.host_name),
      location_(std::move(location)),
      incarnation_(generate_uuid()) {
  if (location_.host_name.empty()) throw std::invalid_argument("the host needs a name");
  {
    auto conn = borrow_writer();
    pg::migrate(*conn);
    const pg::Result key = conn->exec("SELECT value FROM store_meta WHERE key = 'cursor_key'");
    if (key.rows() == 0) throw std::runtime_error("the PostgreSQL store is missing its cursor key");
    cursors_ = std::make_unique<store::HistoryCursorCodec>(key.string(0, 0));
    register_host(*conn);
  }
  heartbeat_conn_ = std::make_unique<pg::Connection>(location_.uri);
  heartbeat_ = std::thread([this] { heartbeat_main(); });
}

PostgresStore::~PostgresStore() {
  {
    std::lock_guard lock(heartbeat_mutex_);
    stopping_ = true;
  }
  heartbeat_wake_.notify_all();
  heartbeat_.join();
  try {
    borrow_writer()->exec(
        "UPDATE hosts SET stopped = true, last_seen_at = $3 WHERE name = $1 AND incarnation = $2",
        {location_.host_name, incarnation_, ms_text(now_ms())});
  } catch (const std::exception& e) {
    spdlog::warn("could not mark host {} stopped in the store: {}", location_.host_name, e.what());
  }
}

void PostgresStore::register_host(pg::Connection& conn) {
  // Taken over only from a host that stopped or stopped heartbeating. Times
  // are the database's clock, the one clock every host shares.
  const pg::Result taken = conn.exec(
      std::string("INSERT INTO hosts (name, incarnation, started_at, last_seen_at, stopped, "
                  "version) VALUES ($1, $2, ") +
          kDbNowMs + ", " + kDbNowMs +
          ", false, $3) "
          "ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation, "
          "started_at = excluded.started_at, last_seen_at = excluded.last_seen_at, "
          "stopped = false, version = excluded.version "
          "WHERE hosts.stopped OR hosts.last_seen_at < " +
          kDbNowMs + " - $4",
      {location_.host_name, incarnation_, location_.host_version,
       std::to_string(location_.host_lease.count())});
  if (taken.affected() == 0) {
    throw std::runtime_error("another live host is already named '" + location_.host_name +
                             "' in this database; give this one another name with --host-name");
  }
}

void PostgresStore::heartbeat_main() {
  std::unique_lock lock(heartbeat_mutex_);
  while (!stopping_) {
    heartbeat_wake_.wait_for(lock, location_.heartbeat_interval, [this] { return stopping_; });
    if (stopping_) break;
    try {
      heartbeat_and_rescue();
      reachable_.store(true);
    } catch (const std::exception& e) {
      if (dynamic_cast<const StoreUnavailable*>(&e) != nullptr) reachable_.store(false);
      beating_since_.reset();
      spdlog::warn("host heartbeat failed (retried in {} ms): {}",
                   location_.heartbeat_interval.count(), e.what());
    }
  }
}

std::size_t PostgresStore::heartbeat_and_rescue() {
  pg::Connection& conn = *heartbeat_conn_;
  const pg::Result beat = conn.exec(std::string("UPDATE hosts SET last_seen_at = ") + kDbNowMs +
                                        ", stopped = false WHERE name = $1 AND incarnation = $2",
                                    {location_.host_name, incarnation_});
  if (beat.affected() == 0) {
    spdlog::error("host {} was taken over in the store by another process with the same name",
                  location_.host_name);
  }
  const auto steady_now = std::chrono::steady_clock::now();
  if (!beating_since_) beating_since_ = steady_now;
  // Answered requests nobody collected (their sender gave up) go.
  conn.exec(std::string("DELETE FROM run_requests WHERE created_at < ") + kDbNowMs + " - 60000");
  // Deleted runs' last records are kept for the other hosts' events a minute.
  conn.exec(std::string("DELETE FROM deleted_runs WHERE deleted_at < ") + kDbNowMs + " - 60000");
  if (steady_now - *beating_since_ < location_.host_lease) return 0;

  // The active runs of every other host whose heartbeat is older than the
  // lease fail, interrupted; bumping the fence keeps that host's late writes
  // out. Its queued runs are the queue's: another host claims them. Never
  // this host, which is alive to ask: its beat above is as old as this pass,
  // which may outlast a lease when the database is slow (the statements
  // above waited on a lock, say).
  pg::Transaction transaction(conn);
  const pg::Result dead =
      conn.exec(std::string("UPDATE hosts SET stopped = true WHERE NOT stopped AND name <> $2 AND "
                            "last_seen_at < ") +
                    kDbNowMs + " - $1 RETURNING name",
                {std::to_string(location_.host_lease.count()), location_.host_name});
  std::size_t rescued = 0;
  for (int i = 0; i < dead.rows(); ++i) {
    const std::string name = dead.string(i, 0);
    const pg::Result failed = conn.exec(
        std::string("UPDATE runs SET status = 'failed', finished = true, ended_at = ") + kDbNowMs +
            ", error = $2, fence = fence + 1 WHERE NOT finished AND host = $1 "
            "RETURNING instance_id",
        {name, "interrupted: its host " + name + " stopped while this run was active"});
    rescued += static_cast<std::size_t>(failed.rows());
    std::vector<std::string> ids;
    for (int k = 0; k < failed.rows(); ++k) ids.push_back(failed.string(k, 0));
    notify_runs_changed(conn, ids);
    spdlog::warn("host {} stopped heartbeating; failed its {} active run(s) as interrupted", name,
                 failed.rows());
  }
  transaction.commit();
  return rescued;
}

// ---------------------------------------------------------------------------
// The write side

std::int64_t PostgresStore::fence_of(const std::string& instance_id) {
  std::lock_guard lock(fences_mutex_);
  const auto it = fences_.find(instance_id);
  return it == fences_.end() ? 1 : it->second;
}

std::int64_t PostgresStore::fence_of(WriteBatch& batch, const Run& run) {
  std::lock_guard lock(fences_mutex_);
  const auto it = fences_.find(run.instance_id);
  if (it == fences_.end()) return 1;
  // Its last state write: forgotten once committed.
  if (is_terminal(run.status)) batch.fenced_runs_done.push_back(run.instance_id);
  return it->second;
}

void PostgresStore::hold_fence(const std::string& instance_id, std::int64_t fence) {
  std::lock_guard lock(fences_mutex_);
  fences_[instance_id] = fence;
}

void PostgresStore::apply(const std::vector<WriteOp>& ops) {
  apply_reporting_unfinished_prune(ops);
}

bool PostgresStore::apply_reporting_unfinished_prune(const std::vector<WriteOp>& ops) {
  // A lost connection throws StoreUnavailable (the writer holds the batch
  // and retries); the next attempt opens a new connection.
  try {
    const bool unfinished = apply_in_transaction(ops);
    reachable_.store(true);
    return unfinished;
  } catch (const StoreUnavailable&) {
    reachable_.store(false);
    throw;
  } catch (const pg::PgError& error) {
    // A run's first record whose id is recorded: refused when another run
    // has it; written as an update when it is this run's own record, whose
    // commit answered too late (the connection was lost after COMMIT).
    // A batch fails whole, and the writer applies its ops one by one.
    constexpr const char* kUniqueViolation = "23505";
    const auto* upsert = ops.size() == 1 ? std::get_if<UpsertRun>(&ops.front()) : nullptr;
    if (error.sqlstate() != kUniqueViolation || upsert == nullptr || !upsert->is_first()) throw;
    const Run& run = upsert->run();
    const pg::Result recorded = borrow_writer()->exec(
        "SELECT thread_id FROM runs WHERE instance_id = $1", {run.instance_id});
    if (recorded.rows() == 0) throw;  // another constraint
    if (recorded.string(0, 0) != run.thread_id) throw RunIdRecorded(run.instance_id);
    return apply_reporting_unfinished_prune({UpsertRun(run, upsert->max_concurrent)});
  }
}

bool PostgresStore::apply_in_transaction(const std::vector<WriteOp>& ops) {
  auto lease = borrow_writer();
  WriteBatch batch{*lease};
  const UpsertPlan plan = plan_upserts(ops);
  constexpr auto npos = std::numeric_limits<std::size_t>::max();
  bool prune_unfinished = false;
  // Only upserts, log entries and progress: the whole batch is one pipeline
  // (one round trip), a start's lone upsert too. A lone log append goes
  // statement by statement, so that a refusal names the unknown run.
  batch.pipelining =
      !ops.empty() && (ops.size() > 1 || !std::holds_alternative<AppendLogs>(ops.front())) &&
      std::all_of(ops.begin(), ops.end(), [](const WriteOp& op) {
        return std::holds_alternative<UpsertRun>(op) || std::holds_alternative<AppendLogs>(op) ||
               std::holds_alternative<UpdateProgress>(op);
      });
  std::optional<pg::Transaction> transaction;
  if (batch.pipelining) {
    write_step(batch, "", "BEGIN", {}, nullptr);
  } else {
    transaction.emplace(batch.conn);
  }
  // Between deletions and prunes, every upsert goes as one statement, then
  // every log append as one, then every progress update as one: a run's
  // upserts are written once, at its first position, so its row exists
  // before any entry of the stretch needs it, and a progress update written
  // (no upsert of its run follows it) is newer than any record before it.
  std::vector<std::size_t> upsert_sources;
  std::vector<std::uint64_t> upsert_counts;
  std::vector<bool> upsert_firsts;
  std::vector<const AppendLogs*> appends;
  std::vector<const UpdateProgress*> updates;
  const auto flush = [&] {
    if (!upsert_sources.empty()) {
      write_upserts(batch, ops, upsert_sources, upsert_counts, upsert_firsts);
    }
    upsert_sources.clear();
    upsert_counts.clear();
    upsert_firsts.clear();
    if (!appends.empty()) write_logs(batch, appends);
    appends.clear();
    if (!updates.empty()) write_progress(batch, updates);
    updates.clear();
  };
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (const auto* upsert = std::get_if<UpsertRun>(&ops[i])) {
      if (plan.source[i] == npos) {
        store::check_writable(upsert->run());  // refused as it would be alone
      } else {
        store::check_writable(std::get<UpsertRun>(ops[plan.source[i]]).run());
        upsert_sources.push_back(plan.source[i]);
        upsert_counts.push_back(plan.log_count[i]);
        upsert_firsts.push_back(plan.first[i]);
      }
    } else if (const auto* append = std::get_if<AppendLogs>(&ops[i])) {
      if (!append->entries.empty()) appends.push_back(append);
    } else if (const auto* update = std::get_if<UpdateProgress>(&ops[i])) {
      if (!plan.superseded[i]) updates.push_back(update);
    } else {
      flush();
      if (const auto* deletion = std::get_if<DeleteRun>(&ops[i])) {
        delete_run(batch, *deletion);
      } else if (const auto* prune = std::get_if<PruneRuns>(&ops[i])) {
        bool more = false;
        prune_chunk(batch, prune->policy, prune->now, more);
        prune_unfinished = prune_unfinished || more;
      }
    }
  }
  flush();
  if (batch.pipelining) {
    write_step(batch, "", "COMMIT", {}, nullptr);
    batch.pipelining = false;
    // The notifications ride in the same round trip, after the commit.
    const std::size_t required = batch.steps.size();
    append_notifications(batch.steps, change_notifications(ops, plan.source, plan.superseded));
    std::string notify_error;
    const std::vector<pg::Result> results =
        batch.conn.exec_pipeline(batch.steps, required, notify_error);
    for (std::size_t i = 0; i < batch.checks.size() && i < results.size(); ++i) {
      if (batch.checks[i]) batch.checks[i](results[i]);
    }
    if (!notify_error.empty()) warn_not_notified(notify_error);
  } else {
    transaction->commit();
    std::vector<pg::Connection::Step> steps;
    append_notifications(steps, change_notifications(ops, plan.source, plan.superseded));
    if (!steps.empty()) {
      std::string notify_error;
      try {
        batch.conn.exec_pipeline(steps, 0, notify_error);
      } catch (const std::exception& e) {
        notify_error = e.what();
      }
      if (!notify_error.empty()) warn_not_notified(notify_error);
    }
  }
  {
    std::lock_guard lock(fences_mutex_);
    for (const std::string& id : batch.fenced_runs_done) fences_.erase(id);
  }
  if (!batch.fenced_off.empty()) {
    // Another host took these runs over (a rescue): whoever shows them
    // re-reads what the store holds, this host included.
    spdlog::warn("{} run record(s) were not written: another host took the run(s) over",
                 batch.fenced_off.size());
    try {
      notify_runs_changed(batch.conn, batch.fenced_off);
    } catch (const std::exception& e) {
      spdlog::warn("could not announce runs taken over by another host: {}", e.what());
    }
  }
  return prune_unfinished;
}

void PostgresStore::write_upserts(WriteBatch& batch, const std::vector<WriteOp>& ops,
                                  const std::vector<std::size_t>& sources,
                                  const std::vector<std::uint64_t>& log_counts,
                                  const std::vector<bool>& firsts) {
  // Runs' first records go as an insert, the others as an upsert.
  for (const bool first : {true, false}) {
    std::vector<std::size_t> picked;
    for (std::size_t k = 0; k < sources.size(); ++k) {
      if (firsts[k] == first) picked.push_back(k);
    }
    if (!picked.empty()) write_run_rows(batch, ops, sources, log_counts, picked, first);
  }
}

void PostgresStore::write_run_rows(WriteBatch& batch, const std::vector<WriteOp>& ops,
                                   const std::vector<std::size_t>& sources,
                                   const std::vector<std::uint64_t>& log_counts,
                                   const std::vector<std::size_t>& picked, bool first) {
  std::array<std::vector<Param>, 26> columns;
  for (const std::size_t k : picked) {
    const UpsertRun& upsert = std::get<UpsertRun>(ops[sources[k]]);
    const Run& run = upsert.run();
    columns[0].emplace_back(run.instance_id);
    columns[1].emplace_back(run.thread_id);
    columns[2].emplace_back(run.agent_id);
    columns[3].emplace_back(run.agent_name);
    columns[4].emplace_back(std::string(to_string(run.agent_source)));
    columns[5].push_back(std::optional<std::string>(run.task));
    columns[6].emplace_back(boost::json::serialize(run.params));
    columns[7].emplace_back(std::string(to_string(run.status)));
    columns[8].emplace_back(ms_text(run.created_at));
    columns[9].push_back(optional_ms(run.started_at));
    columns[10].push_back(optional_ms(run.ended_at));
    columns[11].push_back(run.progress ? Param(double_text(*run.progress)) : std::nullopt);
    columns[12].push_back(std::optional<std::string>(run.error));
    columns[13].push_back(run.result.is_null() ? std::nullopt
                                               : Param(boost::json::serialize(run.result)));
    columns[14].emplace_back(u64_text(log_counts[k]));
    columns[15].push_back(run.usage ? Param(u64_text(run.usage->prompt_tokens)) : std::nullopt);
    columns[16].push_back(run.usage ? Param(u64_text(run.usage->completion_tokens)) : std::nullopt);
    columns[17].emplace_back(run.accepts_messages ? "true" : "false");
    columns[18].emplace_back(std::string(to_string(run.isolation)));
    columns[19].emplace_back(std::to_string(run.attempt));
    columns[20].push_back(std::optional<std::string>(run.retry_of));
    columns[21].push_back(std::optional<std::string>(run.rerun_of));
    columns[22].push_back(std::optional<std::string>(run.schedule_id));
    columns[23].push_back(std::optional<std::string>(run.host));
    columns[24].emplace_back(std::to_string(fence_of(batch, run)));
    columns[25].push_back(upsert.max_concurrent ? Param(std::to_string(*upsert.max_concurrent))
                                                : std::nullopt);
  }
  std::vector<Param> params;
  params.reserve(27);
  for (const auto& column : columns) params.emplace_back(pg::text_array(column));
  params.emplace_back(location_.host_name);
  std::vector<std::string> ids;
  ids.reserve(picked.size());
  for (const std::size_t k : picked) {
    ids.push_back(std::get<UpsertRun>(ops[sources[k]]).run().instance_id);
  }
  write_step(batch, first ? "insert_runs" : "upsert_runs", first ? kInsertRuns : kUpsertRuns,
             std::move(params), [&batch, ids = std::move(ids)](const pg::Result& written) {
               if (written.rows() == static_cast<int>(ids.size())) return;
               std::unordered_set<std::string_view> landed;
               for (int i = 0; i < written.rows(); ++i) landed.insert(written.text(i, 0));
               for (const std::string& id : ids) {
                 if (!landed.contains(id)) batch.fenced_off.push_back(id);
               }
             });
}

void PostgresStore::write_step(WriteBatch& batch, const std::string& name, const std::string& sql,
                               std::vector<pg::Param> params,
                               std::function<void(const pg::Result&)> check) {
  if (batch.pipelining) {
    batch.steps.push_back(pg::Connection::Step{sql, std::move(params), name});
    batch.checks.push_back(std::move(check));
    return;
  }
  const pg::Result result =
      name.empty() ? batch.conn.exec(sql, params) : batch.conn.exec_prepared(name, sql, params);
  if (check) check(result);
}

void PostgresStore::write_progress(WriteBatch& batch,
                                   const std::vector<const UpdateProgress*>& updates) {
  // One per run, in the order the runs first appear; a later update replaces its run's.
  std::vector<const UpdateProgress*> newest;
  std::unordered_map<std::string_view, std::size_t> position;
  for (const UpdateProgress* update : updates) {
    const auto [it, added] = position.try_emplace(update->instance_id, newest.size());
    if (added) {
      newest.push_back(update);
    } else {
      newest[it->second] = update;
    }
  }
  std::array<std::vector<Param>, 6> columns;
  for (const UpdateProgress* latest : newest) {
    const UpdateProgress& update = *latest;
    columns[0].emplace_back(update.instance_id);
    columns[1].push_back(update.progress ? Param(double_text(*update.progress)) : std::nullopt);
    columns[2].emplace_back(u64_text(update.log_count));
    columns[3].push_back(update.usage ? Param(u64_text(update.usage->prompt_tokens))
                                      : std::nullopt);
    columns[4].push_back(update.usage ? Param(u64_text(update.usage->completion_tokens))
                                      : std::nullopt);
    columns[5].emplace_back(std::to_string(fence_of(update.instance_id)));
  }
  std::vector<Param> params;
  params.reserve(columns.size());
  for (const auto& column : columns) params.emplace_back(pg::text_array(column));
  write_step(batch, "update_progress", kUpdateProgress, std::move(params), nullptr);
}

void PostgresStore::write_logs(WriteBatch& batch, const std::vector<const AppendLogs*>& appends) {
  std::array<std::vector<Param>, 6> columns;
  for (const AppendLogs* append : appends) {
    for (const LogEntry& entry : append->entries) {
      columns[0].emplace_back(append->instance_id);
      columns[1].emplace_back(u64_text(entry.seq));
      columns[2].emplace_back(ms_text(entry.ts));
      columns[3].emplace_back(std::to_string(static_cast<int>(entry.level)));
      columns[4].emplace_back(entry.message);
      columns[5].emplace_back(std::to_string(static_cast<int>(entry.source)));
    }
  }
  std::vector<Param> params;
  for (const auto& column : columns) params.emplace_back(pg::text_array(column));
  if (batch.pipelining) {
    write_step(batch, "insert_logs", kInsertLogs, std::move(params), nullptr);
    return;
  }
  try {
    batch.conn.exec(kInsertLogs, params);
  } catch (const pg::PgError& error) {
    if (error.sqlstate() != "23502") throw;
    // An entry found no run: name it (read beside the failed transaction).
    for (const AppendLogs* append : appends) {
      if (!get_run(append->instance_id)) {
        throw std::runtime_error("log entries for unknown run " + append->instance_id);
      }
    }
    throw;
  }
}

std::vector<pg::Connection::Step> PostgresStore::change_notifications(
    const std::vector<WriteOp>& ops, const std::vector<std::size_t>& sources,
    const std::vector<bool>& superseded) const {
  constexpr auto npos = std::numeric_limits<std::size_t>::max();
  std::vector<std::string> lines;
  std::unordered_map<std::string_view, std::uint64_t> last_seq;
  std::unordered_set<std::string_view> progressed;  // runs a progress update changed
  bool queued = false;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (const auto* update = std::get_if<UpdateProgress>(&ops[i])) {
      if (!superseded[i] && progressed.insert(update->instance_id).second) {
        lines.push_back("r" + update->instance_id);
      }
    } else if (std::holds_alternative<UpsertRun>(ops[i])) {
      if (sources[i] == npos) continue;
      const Run& run = std::get<UpsertRun>(ops[sources[i]]).run();
      lines.push_back("r" + run.instance_id);
      queued = queued || (run.status == RunStatus::queued && !run.host);
    } else if (const auto* append = std::get_if<AppendLogs>(&ops[i])) {
      if (append->entries.empty()) continue;
      auto& seq = last_seq[append->instance_id];
      seq = std::max(seq, append->entries.back().seq);
    } else if (const auto* deletion = std::get_if<DeleteRun>(&ops[i])) {
      lines.push_back("d" + deletion->instance_id);
    }
  }
  for (const auto& [id, seq] : last_seq) {
    std::string line(1, 'l');
    line.append(id).append(1, ' ').append(std::to_string(seq));
    lines.push_back(std::move(line));
  }
  std::vector<pg::Connection::Step> steps;
  const auto payloads = change_payloads(location_.host_name, lines);
  if (!payloads.empty()) {
    steps.push_back({kNotify, notify_params(kEventsChannel, payloads), "notify"});
  }
  if (queued) steps.push_back({kNotify, notify_params(kQueueChannel, {std::string()}), "notify"});
  return steps;
}

// In a transaction of its own, after the batch's: a notification is a
// wake-up, not a record (a host that misses one finds the change at its next
// poll, or re-reads everything after a reconnection), so this transaction
// waits for no flush to disk. And the batch's commit, notifying nothing,
// does not take the lock PostgreSQL holds from a notifying commit until its
// flush is done: the commits of several writers (and claims) flush together.
void PostgresStore::append_notifications(std::vector<pg::Connection::Step>& steps,
                                         std::vector<pg::Connection::Step> notifications) {
  if (notifications.empty()) return;
  steps.push_back({"BEGIN", {}, ""});
  steps.push_back({"SET LOCAL synchronous_commit TO off", {}, ""});
  for (auto& step : notifications) steps.push_back(std::move(step));
  steps.push_back({"COMMIT", {}, ""});
}

void PostgresStore::warn_not_notified(const std::string& error) {
  spdlog::warn(
      "committed, but could not notify the other hosts (they see it at their next poll): {}",
      error);
}

void PostgresStore::delete_run(WriteBatch& batch, const DeleteRun& op) {
  const pg::Result found =
      batch.conn.exec("SELECT finished FROM runs WHERE instance_id = $1", {op.instance_id});
  if (found.rows() == 0) return;  // already gone: deleting is idempotent
  if (!found.boolean(0, 0)) {
    throw std::logic_error("run " + op.instance_id + " is active; only finished runs are deleted");
  }
  // Its last record stays a while, for the other hosts' `deleted` events.
  batch.conn.exec(std::string("WITH gone AS (DELETE FROM runs WHERE instance_id = $1 RETURNING *) "
                              "INSERT INTO deleted_runs (id, finished, fence, ") +
                      kRunColumns + ", deleted_at) SELECT id, finished, fence, " + kRunColumns +
                      ", " + kDbNowMs + " FROM gone",
                  {op.instance_id});
}

std::size_t PostgresStore::prune_chunk(WriteBatch& batch, const RetentionPolicy& policy,
                                       Timestamp now, bool& more) {
  more = false;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t boundary_ended_at = kMax;
  std::int64_t boundary_id = kMax;
  if (policy.keep_at_least > 0) {
    const pg::Result boundary = batch.conn.exec(
        "SELECT ended_at, id FROM runs WHERE finished ORDER BY ended_at DESC, id DESC "
        "LIMIT 1 OFFSET $1",
        {u64_text(policy.keep_at_least - 1)});
    if (boundary.rows() == 0) return 0;
    boundary_ended_at = boundary.int64(0, 0);
    boundary_id = boundary.int64(0, 1);
  }
  const pg::Result candidates = batch.conn.exec(
      "SELECT id, log_count FROM runs WHERE finished AND ended_at < $1 "
      "AND (ended_at, id) < ($2, $3) ORDER BY ended_at, id LIMIT $4",
      {ms_text(now - policy.max_age), std::to_string(boundary_ended_at),
       std::to_string(boundary_id), std::to_string(kPruneChunkRuns)});
  std::vector<Param> doomed;
  std::uint64_t log_entries = 0;
  for (int i = 0; i < candidates.rows(); ++i) {
    if (!doomed.empty() && log_entries >= kPruneChunkLogEntries) {
      more = true;
      break;
    }
    doomed.emplace_back(candidates.string(i, 0));
    log_entries += static_cast<std::uint64_t>(candidates.int64(i, 1));
  }
  if (candidates.rows() == kPruneChunkRuns) more = true;
  if (!doomed.empty()) {
    batch.conn.exec("DELETE FROM runs WHERE id = ANY($1::bigint[])", {pg::text_array(doomed)});
  }
  return doomed.size();
}

std::vector<Run> PostgresStore::mark_interrupted(Timestamp now, const std::string& error) {
  auto conn = borrow_writer();
  pg::Transaction transaction(*conn);
  const pg::Result marked = conn->exec(
      std::string("UPDATE runs SET status = 'failed', finished = true, error = $1, ended_at = $2, "
                  "fence = fence + 1 WHERE NOT finished AND (host = $3 OR "
                  "(host IS NULL AND status <> 'queued' AND admitted_by = $3)) RETURNING ") +
          kRunColumns,
      {error, ms_text(now), location_.host_name});
  std::vector<Run> runs;
  std::vector<std::string> ids;
  runs.reserve(static_cast<std::size_t>(marked.rows()));
  ids.reserve(static_cast<std::size_t>(marked.rows()));
  for (int i = 0; i < marked.rows(); ++i) {
    runs.push_back(read_run(marked, i));
    ids.push_back(runs.back().instance_id);
  }
  notify_runs_changed(*conn, ids);
  transaction.commit();
  return runs;
}

std::size_t PostgresStore::prune(const RetentionPolicy& policy, Timestamp now) {
  std::size_t deleted = 0;
  bool more = true;
  auto conn = borrow_writer();
  WriteBatch batch{*conn};
  while (more) {
    pg::Transaction transaction(batch.conn);
    deleted += prune_chunk(batch, policy, now, more);
    transaction.commit();
  }
  return deleted;
}

// ---------------------------------------------------------------------------
// The read side

std::optional<Run> PostgresStore::get_run(const std::string& instance_id) const {
  auto conn = borrow();
  const pg::Result r = conn->exec(
      std::string("SELECT ") + kRunColumns + " FROM runs WHERE instance_id = $1", {instance_id});
  if (r.rows() == 0) return std::nullopt;
  return read_run(r, 0);
}

std::vector<Run> PostgresStore::list_active(const std::optional<std::string>& agent_id) const {
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs WHERE NOT finished";
  std::vector<Param> params;
  if (agent_id) {
    sql += " AND agent_id = $1";
    params.emplace_back(*agent_id);
  }
  sql += " ORDER BY created_at DESC, id DESC";
  auto conn = borrow();
  const pg::Result r = conn->exec(sql, params);
  std::vector<Run> runs;
  runs.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) runs.push_back(read_run(r, i));
  return runs;
}

HistoryPage PostgresStore::list_history(const HistoryQuery& query) const {
  check_history_query(query);
  store::HistoryFilters filters;
  if (query.status) filters.status = std::string(to_string(*query.status));
  filters.agent_id = query.agent_id;
  std::optional<store::HistoryPosition> after;
  if (query.cursor) after = cursors_->decode(*query.cursor, filters);

  std::string sql = std::string("SELECT ") + kRunColumns + ", id FROM runs WHERE finished";
  std::vector<Param> params;
  const auto next = [&params] {
    std::string placeholder(1, '$');
    placeholder += std::to_string(params.size());
    return placeholder;
  };
  if (filters.agent_id) {
    params.emplace_back(*filters.agent_id);
    sql += " AND agent_id = " + next();
  }
  if (filters.status) {
    params.emplace_back(*filters.status);
    sql += " AND status = " + next();
  }
  if (after) {
    params.emplace_back(std::to_string(after->ended_at_ms));
    sql += " AND (ended_at, id) < (" + next() + "::bigint, ";
    params.emplace_back(std::to_string(after->run_id));
    sql += next() + "::bigint)";
  }
  params.emplace_back(std::to_string(query.limit + 1));
  sql += " ORDER BY ended_at DESC, id DESC LIMIT " + next() + "::bigint";

  auto conn = borrow();
  const pg::Result r = conn->exec(sql, params);
  HistoryPage page;
  store::HistoryPosition last{};
  for (int i = 0; i < r.rows(); ++i) {
    if (page.runs.size() == query.limit) {
      page.next_cursor = cursors_->encode(last, filters);
      break;
    }
    page.runs.push_back(read_run(r, i));
    last = {store::to_ms(page.runs.back().ended_at.value_or(Timestamp{})),
            r.int64(i, kRunColumnCount)};
  }
  return page;
}

std::vector<LogEntry> PostgresStore::read_logs(const std::string& instance_id,
                                               std::uint64_t after_seq, std::size_t limit) const {
  auto conn = borrow();
  const pg::Result r = conn->exec(
      "SELECT seq, ts, level, message, source FROM logs "
      "WHERE run = (SELECT id FROM runs WHERE instance_id = $1) AND seq > $2 "
      "ORDER BY seq LIMIT $3",
      {instance_id, u64_text(after_seq), u64_text(limit)});
  std::vector<LogEntry> entries;
  entries.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    LogEntry entry;
    entry.seq = static_cast<std::uint64_t>(r.int64(i, 0));
    entry.ts = store::from_ms(r.int64(i, 1));
    const auto level = r.int64(i, 2);
    if (level < 0 || level > static_cast<int>(LogLevel::error)) {
      throw std::runtime_error("stored log entry has an unknown level " + std::to_string(level));
    }
    entry.level = static_cast<LogLevel>(level);
    entry.message = r.string(i, 3);
    const auto source = r.int64(i, 4);
    entry.source = source >= 0 && source <= static_cast<int>(LogSource::host)
                       ? static_cast<LogSource>(source)
                       : LogSource::agent;
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::size_t PostgresStore::count_runs() const {
  auto conn = borrow();
  return static_cast<std::size_t>(conn->exec("SELECT count(*) FROM runs").int64(0, 0));
}

int PostgresStore::schema_version() const {
  auto conn = borrow();
  return pg::read_schema_version(*conn.operator->());
}

std::string PostgresStore::integrity_check() const {
  // The server keeps its own files sound; what can go wrong here is a log
  // count behind its entries.
  auto conn = borrow();
  const pg::Result behind = conn->exec(
      "SELECT count(*) FROM runs r WHERE r.log_count < "
      "(SELECT coalesce(max(seq), 0) FROM logs WHERE run = r.id)");
  const std::int64_t count = behind.int64(0, 0);
  return count == 0 ? "ok" : std::to_string(count) + " run(s) have a log count behind their log";
}

std::vector<HostRecord> PostgresStore::list_hosts() const {
  auto conn = borrow();
  const Timestamp now = now_ms();
  const pg::Result r = conn->exec(
      "SELECT h.name, h.started_at, h.last_seen_at, h.stopped, h.version, "
      "(SELECT count(*) FROM runs WHERE NOT finished AND host = h.name) "
      "FROM hosts h ORDER BY h.name");
  std::vector<HostRecord> hosts;
  for (int i = 0; i < r.rows(); ++i) {
    HostRecord host;
    host.name = r.string(i, 0);
    host.started_at = store::from_ms(r.int64(i, 1));
    host.last_seen_at = store::from_ms(r.int64(i, 2));
    host.alive = !r.boolean(i, 3) && host.last_seen_at >= now - location_.host_lease;
    host.version = r.string(i, 4);
    host.active_runs = static_cast<std::size_t>(r.int64(i, 5));
    hosts.push_back(std::move(host));
  }
  return hosts;
}

}  // namespace nightshift

namespace nightshift {

// ---------------------------------------------------------------------------
// SharedQueue

// Each agent's cap (limits.maxConcurrent) holds across hosts: a claim of a
// capped agent's runs first takes a transaction-scoped advisory lock keyed by
// the agent (pg_advisory_xact_lock), then counts that agent's claimed,
// active runs on every host in a statement of its own, so that its snapshot
// sees every claim committed by the lock's previous holder. Two hosts
// claiming the same agent's runs at once thus take turns, and neither can
// count before the other's claim is visible. An advisory lock rather than
// `SELECT ... FOR UPDATE` of a row: there is no per-agent row to lock (the
// queued rows are claimed with SKIP LOCKED, which would let a second host
// pass over them instead of waiting, and locking the agent's running rows
// would not stop a claim when it has none), and the advisory lock needs no
// table, is released at commit or rollback, and costs nothing when no capped
// run waits (no lock is taken then). Locks are taken in key order, so two
// claims cannot deadlock; the keys are the agents' hashes (a collision only
// makes two agents take turns).
std::vector<Run> PostgresStore::claim_queued(std::size_t max) {
  if (max == 0) return {};
  auto conn = borrow();
  pg::Transaction transaction(*conn.operator->());
  const pg::Result locked = conn->exec_prepared(
      "lock_capped_agents",
      "SELECT k, pg_advisory_xact_lock(7733002, k) FROM ("
      "SELECT DISTINCT hashtext(agent_id) AS k FROM runs "
      "WHERE status = 'queued' AND host IS NULL AND max_concurrent IS NOT NULL ORDER BY k) keys",
      {});
  std::vector<Param> keys;
  for (int i = 0; i < locked.rows(); ++i) keys.emplace_back(locked.string(i, 0));
  // With capped runs waiting, more of the queue is looked at than is
  // claimed, so that runs of other agents behind a capped agent's go ahead.
  const std::size_t scan = keys.empty() ? max : max + 1024;
  // SKIP LOCKED: hosts claiming at once take different rows, each row once.
  // A capped agent's runs are claimed only under its lock (a capped run
  // queued after the locks were taken waits for the next claim), and only
  // as many as its cap leaves beside its runs claimed on every host.
  const pg::Result r = conn->exec_prepared(
      "claim",
      std::string(
          "WITH candidates AS ("
          "  SELECT id, agent_id, max_concurrent, created_at FROM runs"
          "  WHERE status = 'queued' AND host IS NULL"
          "    AND (max_concurrent IS NULL OR hashtext(agent_id) = ANY($3::int[]))"
          "  ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED),"
          " ranked AS ("
          "  SELECT c.id, c.created_at, c.max_concurrent,"
          "    row_number() OVER (PARTITION BY c.agent_id ORDER BY c.created_at, c.id) AS nth,"
          "    CASE WHEN c.max_concurrent IS NULL THEN 0 ELSE"
          "      (SELECT count(*) FROM runs b WHERE b.agent_id = c.agent_id"
          "         AND b.host IS NOT NULL AND NOT b.finished) END AS busy"
          "  FROM candidates c),"
          " chosen AS ("
          "  SELECT id FROM ranked WHERE max_concurrent IS NULL OR busy + nth <= max_concurrent"
          "  ORDER BY created_at, id LIMIT $2)"
          " UPDATE runs SET host = $1, fence = fence + 1 WHERE id IN (SELECT id FROM chosen)"
          " RETURNING ") +
          kRunColumns + ", fence, id",
      {location_.host_name, std::to_string(max), pg::text_array(keys), std::to_string(scan)});
  transaction.commit();
  std::vector<std::pair<std::int64_t, Run>> claimed;
  for (int i = 0; i < r.rows(); ++i) {
    Run run = read_run(r, i);
    hold_fence(run.instance_id, r.int64(i, kRunColumnCount));
    claimed.emplace_back(r.int64(i, kRunColumnCount + 1), std::move(run));
  }
  // Oldest first, as they were queued.
  std::sort(claimed.begin(), claimed.end(), [](const auto& a, const auto& b) {
    if (a.second.created_at != b.second.created_at)
      return a.second.created_at < b.second.created_at;
    return a.first < b.first;
  });
  std::vector<Run> runs;
  runs.reserve(claimed.size());
  for (auto& [id, run] : claimed) runs.push_back(std::move(run));
  return runs;
}

std::size_t PostgresStore::count_queued_admitted_here() const {
  auto conn = borrow();
  const pg::Result r = conn->exec(
      "SELECT count(*) FROM runs WHERE status = 'queued' AND host IS NULL AND admitted_by = $1",
      {location_.host_name});
  return static_cast<std::size_t>(r.int64(0, 0));
}

std::optional<Run> PostgresStore::cancel_unclaimed(const std::string& instance_id, Timestamp now) {
  auto conn = borrow();
  pg::Transaction transaction(*conn.operator->());
  // A claim holds the row's lock until it commits; then this UPDATE sees
  // the claim's host and leaves the row alone.
  const pg::Result r = conn->exec(
      std::string("UPDATE runs SET status = 'cancelled', finished = true, ended_at = $2 "
                  "WHERE instance_id = $1 AND status = 'queued' AND host IS NULL RETURNING ") +
          kRunColumns,
      {instance_id, ms_text(now)});
  if (r.rows() == 0) return std::nullopt;
  Run run = read_run(r, 0);
  notify_runs_changed(*conn.operator->(), {instance_id});
  transaction.commit();
  return run;
}

std::vector<Run> PostgresStore::get_runs(const std::vector<std::string>& instance_ids) const {
  if (instance_ids.empty()) return {};
  std::vector<Param> ids(instance_ids.begin(), instance_ids.end());
  auto conn = borrow();
  const pg::Result r = conn->exec(
      std::string("SELECT ") + kRunColumns + " FROM runs WHERE instance_id = ANY($1::text[])",
      {pg::text_array(ids)});
  std::vector<Run> runs;
  runs.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) runs.push_back(read_run(r, i));
  return runs;
}

std::vector<Run> PostgresStore::get_deleted_runs(
    const std::vector<std::string>& instance_ids) const {
  if (instance_ids.empty()) return {};
  std::vector<Param> ids(instance_ids.begin(), instance_ids.end());
  auto conn = borrow();
  const pg::Result r = conn->exec(std::string("SELECT DISTINCT ON (instance_id) ") + kRunColumns +
                                      " FROM deleted_runs WHERE instance_id = ANY($1::text[]) "
                                      "ORDER BY instance_id, deleted_at DESC",
                                  {pg::text_array(ids)});
  std::vector<Run> runs;
  runs.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) runs.push_back(read_run(r, i));
  return runs;
}

UnclaimedMessage PostgresStore::record_unclaimed_message(const std::string& instance_id,
                                                         const std::string& text, Timestamp now,
                                                         std::size_t max_waiting) {
  auto conn = borrow();
  pg::Transaction transaction(*conn.operator->());
  // The row's lock keeps a claim out until the entry is in (a claim skips
  // the locked row and takes it at its next pass, log count and all); a
  // claim that came first holds the lock until it commits, and then the row
  // read here names its host.
  const pg::Result row = conn->exec(
      "SELECT id, log_count FROM runs WHERE instance_id = $1 AND status = 'queued' "
      "AND host IS NULL FOR UPDATE",
      {instance_id});
  if (row.rows() == 0) return {};  // rolled back
  const std::int64_t id = row.int64(0, 0);
  // A run nobody has claimed has not run: every entry of its log is a
  // message waiting for its agent.
  const auto waiting = static_cast<std::uint64_t>(row.int64(0, 1));
  if (waiting >= max_waiting) return {UnclaimedMessage::Outcome::full, 0};
  const std::uint64_t seq = waiting + 1;
  conn->exec(
      "INSERT INTO logs (run, seq, ts, level, message, source) VALUES ($1, $2, $3, $4, $5, $6)",
      {std::to_string(id), u64_text(seq), ms_text(now),
       std::to_string(static_cast<int>(LogLevel::info)), text,
       std::to_string(static_cast<int>(LogSource::user))});
  conn->exec("UPDATE runs SET log_count = $2 WHERE id = $1", {std::to_string(id), u64_text(seq)});
  transaction.commit();
  // The other hosts show the entry; any host with a free slot may claim the
  // run now (a claim may have passed over it while it was locked here).
  std::vector<pg::Connection::Step> steps;
  std::string line(1, 'l');
  line.append(instance_id).append(1, ' ').append(std::to_string(seq));
  append_notifications(
      steps, {{kNotify,
               notify_params(kEventsChannel,
                             change_payloads(location_.host_name, {"r" + instance_id, line})),
               "notify"},
              {kNotify, notify_params(kQueueChannel, {std::string()}), "notify"}});
  std::string notify_error;
  try {
    conn->exec_pipeline(steps, 0, notify_error);
  } catch (const std::exception& e) {
    notify_error = e.what();
  }
  if (!notify_error.empty()) warn_not_notified(notify_error);
  return {UnclaimedMessage::Outcome::recorded, seq};
}

pg::Connection& PostgresStore::listener() {
  if (!listener_ || !listener_->ok()) {
    listener_.reset();
    auto conn = std::make_unique<pg::Connection>(location_.uri);
    conn->exec_script(std::string("LISTEN ") + kEventsChannel + "; LISTEN " + kQueueChannel +
                      "; LISTEN " + kRequestsChannel);
    listener_ = std::move(conn);
  }
  return *listener_;
}

std::vector<StoreChange> PostgresStore::wait_for_changes(std::chrono::milliseconds timeout,
                                                         int wake_fd) {
  std::vector<StoreChange> changes;
  if (!listener_ || !listener_->ok()) {
    // A new connection: whatever was announced meanwhile was missed.
    listener();
    changes.push_back(StoreChange{StoreChange::Kind::resync, {}, 0});
  }
  pg::Connection& conn = *listener_;
  auto notifications = conn.take_notifications();
  if (notifications.empty() && changes.empty()) {
    pollfd fds[2] = {{conn.socket(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int count = wake_fd >= 0 ? 2 : 1;
    const int ready = ::poll(fds, static_cast<nfds_t>(count), static_cast<int>(timeout.count()));
    if (ready > 0 && count == 2 && (fds[1].revents & POLLIN) != 0) {
      std::uint64_t drained = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd, &drained, sizeof drained);
    }
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
      notifications = conn.take_notifications();
    }
  }
  for (const auto& [channel, payload] : notifications) {
    if (channel == kQueueChannel) {
      changes.push_back(StoreChange{StoreChange::Kind::queued, {}, 0});
    } else if (channel == kRequestsChannel) {
      if (payload == location_.host_name) {
        changes.push_back(StoreChange{StoreChange::Kind::request, {}, 0});
      }
    } else if (channel == kEventsChannel) {
      const auto header_end = payload.find('\n');
      const std::string_view header = std::string_view(payload).substr(0, header_end);
      if (header == location_.host_name || header_end == std::string::npos) continue;
      std::string_view rest = std::string_view(payload).substr(header_end + 1);
      while (!rest.empty()) {
        const auto end = rest.find('\n');
        if (auto change = parse_change(rest.substr(0, end))) changes.push_back(std::move(*change));
        if (end == std::string_view::npos) break;
        rest = rest.substr(end + 1);
      }
    }
  }
  return changes;
}

std::int64_t PostgresStore::send_request(const std::string& host, const RunRequest& request) {
  auto conn = borrow();
  pg::Transaction transaction(*conn.operator->());
  const pg::Result r = conn->exec(
      std::string("INSERT INTO run_requests (target_host, kind, instance_id, text, created_at) "
                  "VALUES ($1, $2, $3, $4, ") +
          kDbNowMs + ") RETURNING id",
      {host, request.kind == RunRequest::Kind::stop ? "stop" : "message", request.instance_id,
       request.text});
  send_notifications(*conn.operator->(), kRequestsChannel, {host});
  transaction.commit();
  return r.int64(0, 0);
}

std::optional<RequestAnswer> PostgresStore::take_answer(std::int64_t request_id) {
  auto conn = borrow();
  const pg::Result r = conn->exec(
      "DELETE FROM run_requests WHERE id = $1 AND answered RETURNING answer_seq, answer_error",
      {std::to_string(request_id)});
  if (r.rows() == 0) return std::nullopt;
  RequestAnswer answer;
  answer.seq = static_cast<std::uint64_t>(r.optional_int64(0, 0).value_or(0));
  answer.error = r.optional_string(0, 1).value_or("");
  return answer;
}

std::vector<RunRequest> PostgresStore::take_requests() {
  auto conn = borrow();
  const pg::Result r = conn->exec(
      "UPDATE run_requests SET taken = true WHERE target_host = $1 AND NOT taken "
      "RETURNING id, kind, instance_id, text",
      {location_.host_name});
  std::vector<RunRequest> requests;
  for (int i = 0; i < r.rows(); ++i) {
    RunRequest request;
    request.id = r.int64(i, 0);
    request.kind = r.text(i, 1) == "stop" ? RunRequest::Kind::stop : RunRequest::Kind::message;
    request.instance_id = r.string(i, 2);
    request.text = r.string(i, 3);
    requests.push_back(std::move(request));
  }
  std::sort(requests.begin(), requests.end(),
            [](const RunRequest& a, const RunRequest& b) { return a.id < b.id; });
  return requests;
}

void PostgresStore::answer_request(std::int64_t request_id, const RequestAnswer& answer) {
  auto conn = borrow();
  conn->exec(
      "UPDATE run_requests SET answered = true, answer_seq = $2, answer_error = $3 WHERE id = $1",
      {std::to_string(request_id), std::to_string(answer.seq),
       answer.error.empty() ? Param() : Param(answer.error)});
}

}  // namespace nightshift
