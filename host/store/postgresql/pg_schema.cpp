#include "store/postgresql/pg_schema.hpp"

#include <array>

namespace nightshift::pg {

namespace {

struct Migration {
  int version;
  const char* sql;
};

// Any constant shared by every host of one database: the advisory lock that
// serialises migrations.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7733001)";

// Append only: a released step is never edited, a change is a new step.
constexpr std::array kMigrations{
    Migration{1, R"sql(
      -- One row per run, as in the SQLite store, plus what several hosts
      -- need: the host executing it, the host that admitted it, and the
      -- fence (bumped when another host takes the run over, e.g. a rescue;
      -- a write carrying an older fence changes nothing).
      CREATE TABLE runs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        instance_id TEXT NOT NULL UNIQUE,
        thread_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        agent_source TEXT NOT NULL CHECK (agent_source IN ('installed', 'local', 'remix')),
        task TEXT,
        params TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'stopping',
                                               'completed', 'failed', 'cancelled')),
        finished BOOLEAN NOT NULL
          CHECK (finished = (status IN ('completed', 'failed', 'cancelled'))),
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        ended_at BIGINT CHECK (NOT finished OR ended_at IS NOT NULL),
        progress DOUBLE PRECISION,
        error TEXT,
        result TEXT,
        log_count BIGINT NOT NULL DEFAULT 0,
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        accepts_messages BOOLEAN NOT NULL DEFAULT false,
        isolation TEXT NOT NULL DEFAULT 'thread' CHECK (isolation IN ('thread', 'process')),
        attempt BIGINT NOT NULL DEFAULT 1 CHECK (attempt >= 1),
        retry_of TEXT,
        rerun_of TEXT,
        schedule_id TEXT,
        host TEXT,
        admitted_by TEXT,
        fence BIGINT NOT NULL DEFAULT 1
      );
      CREATE TABLE logs (
        run BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        level SMALLINT NOT NULL CHECK (level BETWEEN 0 AND 4),
        message TEXT NOT NULL,
        source SMALLINT NOT NULL DEFAULT 0 CHECK (source BETWEEN 0 AND 2),
        PRIMARY KEY (run, seq)
      );
      CREATE INDEX runs_active ON runs (created_at, id) WHERE NOT finished;
      CREATE INDEX runs_active_by_agent ON runs (agent_id, created_at, id) WHERE NOT finished;
      CREATE INDEX runs_history ON runs (ended_at, id) WHERE finished;
      CREATE INDEX runs_history_by_status ON runs (status, ended_at, id) WHERE finished;
      CREATE INDEX runs_history_by_agent ON runs (agent_id, ended_at, id) WHERE finished;
      CREATE INDEX runs_history_by_agent_status
        ON runs (agent_id, status, ended_at, id) WHERE finished;
      -- The shared queue: unclaimed queued runs, oldest first.
      CREATE INDEX runs_queue ON runs (created_at, id) WHERE status = 'queued' AND host IS NULL;
      CREATE INDEX runs_by_host ON runs (host) WHERE NOT finished;
      CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO store_meta (key, value)
        VALUES ('cursor_key', replace(gen_random_uuid()::text, '-', ''));
      -- Every host that uses the database: its heartbeat and its lifetime.
      CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        incarnation TEXT NOT NULL,        -- a fresh id per process
        started_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        stopped BOOLEAN NOT NULL DEFAULT false,
        version TEXT NOT NULL
      );
      -- Stops and messages for a run executing on another host: the host
      -- that received the API call writes one, the executing host answers.
      CREATE TABLE run_requests (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target_host TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('stop', 'message')),
        instance_id TEXT NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        taken BOOLEAN NOT NULL DEFAULT false,
        answered BOOLEAN NOT NULL DEFAULT false,
        answer_seq BIGINT,
        answer_error TEXT
      );
      CREATE INDEX run_requests_waiting ON run_requests (target_host) WHERE NOT taken;
    )sql"},
    Migration{2, R"sql(
      -- The agent's cap (limits.maxConcurrent) as the admitting host knew
      -- it: claims keep each agent's claimed, active runs within it across
      -- every host.
      ALTER TABLE runs ADD COLUMN max_concurrent BIGINT;
      CREATE INDEX runs_queue_capped ON runs (agent_id)
        WHERE status = 'queued' AND host IS NULL AND max_concurrent IS NOT NULL;
      CREATE INDEX runs_claimed_by_agent ON runs (agent_id)
        WHERE host IS NOT NULL AND NOT finished;
      -- The last record of each run deleted lately (about a minute), so that
      -- every host's `deleted` event carries the run, not only its id.
      CREATE TABLE deleted_runs (LIKE runs);
      ALTER TABLE deleted_runs ADD COLUMN deleted_at BIGINT NOT NULL DEFAULT 0;
      CREATE INDEX deleted_runs_by_instance ON deleted_runs (instance_id);
      CREATE INDEX deleted_runs_by_age ON deleted_runs (deleted_at);
    )sql"},
    Migration{3, R"sql(
      -- Automation, shared by every host (as the SQLite store's step 7,
      -- plus the claims of several hosts): schedules, whose next_run_at is
      -- compared and set by the host that fires a time ...
      CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        task TEXT,
        params TEXT NOT NULL,               -- JSON object
        cron TEXT NOT NULL,
        timezone TEXT NOT NULL,
        enabled BOOLEAN NOT NULL,
        overlap TEXT NOT NULL CHECK (overlap IN ('skip', 'queue')),
        created_at BIGINT NOT NULL,
        next_run_at BIGINT,                 -- NULL: disabled, or no time matches
        last_run_id TEXT
      );
      -- ... retries waiting for their time; taken_by marks the host that
      -- took one to start it, `started` that it did (the row stays a day,
      -- so the failure seen late by another host cannot queue it again) ...
      CREATE TABLE pending_retries (
        failed_run_id TEXT PRIMARY KEY,
        due_at BIGINT NOT NULL,
        attempt BIGINT NOT NULL,
        agent_id TEXT NOT NULL,
        task TEXT,
        params TEXT NOT NULL,
        taken_by TEXT,
        taken_at BIGINT,
        started BOOLEAN NOT NULL DEFAULT false
      );
      CREATE INDEX pending_retries_waiting ON pending_retries (due_at) WHERE NOT started;
      CREATE INDEX pending_retries_started ON pending_retries (taken_at) WHERE started;
      -- ... webhooks and their deliveries. A delivery's id is made from its
      -- webhook, run and event, so every host makes the same one; the host
      -- that inserted it holds it (claimed_by) until claimed_until, renewed
      -- at each attempt; past that any host may take it over.
      CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,               -- JSON array of event names
        agent_id TEXT,                      -- NULL: every agent
        secret TEXT,                        -- never returned by the API
        created_at BIGINT NOT NULL
      );
      CREATE TABLE deliveries (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
        id TEXT NOT NULL UNIQUE,
        webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        last_status_code INTEGER,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        delivered_at BIGINT,
        next_attempt_at BIGINT,             -- while pending
        claimed_by TEXT,
        claimed_until BIGINT
      );
      CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
      CREATE INDEX deliveries_pending ON deliveries (claimed_until) WHERE status = 'pending';
    )sql"},
    Migration{4, R"sql(
      -- Finds the run that retries a failed one, so that a retry a host
      -- started just before it died is not started again by another host.
      CREATE INDEX runs_by_retry_of ON runs (retry_of) WHERE retry_of IS NOT NULL;
    )sql"},
    Migration{5, R"sql(
      -- A schedule's time claimed and its run not recorded yet: the id that
      -- run gets and the host that claimed it (cleared once the run is
      -- recorded), so that the host, back from a crash in between, starts it.
      ALTER TABLE schedules ADD COLUMN firing_run_id TEXT;
      ALTER TABLE schedules ADD COLUMN firing_host TEXT;
    )sql"},
    Migration{6, R"sql(
      -- The id the run of a taken retry gets, chosen by the first host that
      -- takes it and kept by any host that takes it over, so that two hosts
      -- starting it (one paused past its lease) record one run.
      ALTER TABLE pending_retries ADD COLUMN run_id TEXT;
    )sql"},
};

}  // namespace

int latest_schema_version() {
  return kMigrations.back().version;
}

int read_schema_version(Connection& conn) {
  conn.exec_script("CREATE TABLE IF NOT EXISTS nightshift_schema (version INTEGER NOT NULL)");
  const Result result = conn.exec("SELECT max(version) FROM nightshift_schema");
  return result.rows() == 0 || result.is_null(0, 0) ? 0 : static_cast<int>(result.int64(0, 0));
}

void migrate(Connection& conn) {
  {
    Transaction transaction(conn);
    conn.exec_script(kMigrationLock);
    read_schema_version(conn);  // creates the version table
    transaction.commit();
  }
  for (const Migration& step : kMigrations) {
    Transaction transaction(conn);
    conn.exec_script(kMigrationLock);
    const int current = read_schema_version(conn);
    if (current > latest_schema_version()) {
      throw std::runtime_error("the PostgreSQL database has schema version " +
                               std::to_string(current) + ", newer than this build knows (" +
                               std::to_string(latest_schema_version()) +
                               "); run a newer nightshift or use another database");
    }
    if (step.version <= current) continue;
    conn.exec_script(step.sql);
    conn.exec("INSERT INTO nightshift_schema (version) VALUES ($1)",
              {std::to_string(step.version)});
    transaction.commit();
  }
}

}  // namespace nightshift::pg
