#include "store/schema.hpp"

#include <SQLiteCpp/Transaction.h>

#include <array>
#include <stdexcept>
#include <string>

namespace nightshift::store {

namespace {

struct Migration {
  int version;
  const char* sql;
};

// Append only: a released step is never edited, a change is a new step.
constexpr std::array kMigrations{
    Migration{1, R"sql(
      -- One row per run. `id` is the compact key the log and the history
      -- cursor use; instance_id is the public id.
      CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        instance_id TEXT NOT NULL UNIQUE,
        thread_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        agent_source TEXT NOT NULL CHECK (agent_source IN ('installed', 'local', 'remix')),
        task TEXT,
        params TEXT NOT NULL,               -- JSON object
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'stopping',
                                               'completed', 'failed', 'cancelled')),
        -- 1 for the terminal statuses; kept as a column so partial indexes
        -- can split active runs from history.
        finished INTEGER NOT NULL
          CHECK (finished = (status IN ('completed', 'failed', 'cancelled'))),
        created_at INTEGER NOT NULL,        -- Unix milliseconds
        started_at INTEGER,
        ended_at INTEGER CHECK (finished = 0 OR ended_at IS NOT NULL),
        progress REAL,
        error TEXT,
        result TEXT,                        -- JSON; NULL for a null result
        log_count INTEGER NOT NULL DEFAULT 0
      );
      -- Log entries, keyed by the run's integer id: no rowid, no per-row
      -- copy of the instance id.
      CREATE TABLE logs (
        run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        level INTEGER NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (run, seq)
      ) WITHOUT ROWID;
    )sql"},
    Migration{2, R"sql(
      -- Each list and each filter combination is served by its own index, in
      -- the list's order, so a page reads only the rows it returns.
      CREATE INDEX runs_active ON runs (created_at, id) WHERE finished = 0;
      CREATE INDEX runs_active_by_agent ON runs (agent_id, created_at, id) WHERE finished = 0;
      CREATE INDEX runs_history ON runs (ended_at, id) WHERE finished = 1;
      CREATE INDEX runs_history_by_status ON runs (status, ended_at, id) WHERE finished = 1;
      CREATE INDEX runs_history_by_agent ON runs (agent_id, ended_at, id) WHERE finished = 1;
      CREATE INDEX runs_history_by_agent_status
        ON runs (agent_id, status, ended_at, id) WHERE finished = 1;
    )sql"},
    Migration{3, R"sql(
      -- Per-database values the store itself needs, e.g. the key that signs
      -- history cursors.
      CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO store_meta (key, value) VALUES ('cursor_key', lower(hex(randomblob(16))));
    )sql"},
    Migration{4, R"sql(
      -- The same table with the same rules, but each CHECK written as
      -- comparisons: SQLite evaluates an IN list of three or more constants
      -- by building a temporary table, on every row written, and those
      -- were most of the cost of writing a run.
      -- Rebuilt the way SQLite's documentation describes (new table, copy,
      -- drop, rename), with foreign keys off so the log is kept.
      CREATE TABLE runs_v4 (
        id INTEGER PRIMARY KEY,
        instance_id TEXT NOT NULL UNIQUE,
        thread_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        agent_source TEXT NOT NULL
          CHECK (agent_source = 'installed' OR agent_source = 'local' OR agent_source = 'remix'),
        task TEXT,
        params TEXT NOT NULL,               -- JSON object
        status TEXT NOT NULL
          CHECK (status = 'queued' OR status = 'running' OR status = 'stopping'
                 OR status = 'completed' OR status = 'failed' OR status = 'cancelled'),
        -- 1 for the terminal statuses; kept as a column so partial indexes
        -- can split active runs from history.
        finished INTEGER NOT NULL
          CHECK (finished = (status = 'completed' OR status = 'failed' OR status = 'cancelled')),
        created_at INTEGER NOT NULL,        -- Unix milliseconds
        started_at INTEGER,
        ended_at INTEGER CHECK (finished = 0 OR ended_at IS NOT NULL),
        progress REAL,
        error TEXT,
        result TEXT,                        -- JSON; NULL for a null result
        log_count INTEGER NOT NULL DEFAULT 0
      );
      INSERT INTO runs_v4 (id, instance_id, thread_id, agent_id, agent_name, agent_source, task,
                           params, status, finished, created_at, started_at, ended_at, progress,
                           error, result, log_count)
        SELECT id, instance_id, thread_id, agent_id, agent_name, agent_source, task, params,
               status, finished, created_at, started_at, ended_at, progress, error, result,
               log_count
        FROM runs;
      DROP TABLE runs;
      ALTER TABLE runs_v4 RENAME TO runs;
      CREATE INDEX runs_active ON runs (created_at, id) WHERE finished = 0;
      CREATE INDEX runs_active_by_agent ON runs (agent_id, created_at, id) WHERE finished = 0;
      CREATE INDEX runs_history ON runs (ended_at, id) WHERE finished = 1;
      CREATE INDEX runs_history_by_status ON runs (status, ended_at, id) WHERE finished = 1;
      CREATE INDEX runs_history_by_agent ON runs (agent_id, ended_at, id) WHERE finished = 1;
      CREATE INDEX runs_history_by_agent_status
        ON runs (agent_id, status, ended_at, id) WHERE finished = 1;
    )sql"},
    Migration{5, R"sql(
      -- v1.1: who wrote a log entry (0 agent, 1 user, 2 host), a run's
      -- token usage (NULL until reported) and whether it takes messages.
      ALTER TABLE logs ADD COLUMN source INTEGER NOT NULL DEFAULT 0
        CHECK (source >= 0 AND source <= 2);
      ALTER TABLE runs ADD COLUMN prompt_tokens INTEGER;
      ALTER TABLE runs ADD COLUMN completion_tokens INTEGER;
      ALTER TABLE runs ADD COLUMN accepts_messages INTEGER NOT NULL DEFAULT 0;
    )sql"},
    Migration{6, R"sql(
      -- v1.1: where the run's agent code executed; runs recorded before
      -- process isolation ran in the host's threads.
      ALTER TABLE runs ADD COLUMN isolation TEXT NOT NULL DEFAULT 'thread'
        CHECK (isolation IN ('thread', 'process'));
    )sql"},
    Migration{7, R"sql(
      -- v1.1 automation: where a run came from (its attempt, the run it
      -- retries, the run it re-runs, the schedule that started it) ...
      ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1);
      ALTER TABLE runs ADD COLUMN retry_of TEXT;
      ALTER TABLE runs ADD COLUMN rerun_of TEXT;
      ALTER TABLE runs ADD COLUMN schedule_id TEXT;
      -- ... retries waiting for their time, with what they will start, so a
      -- wait survives a restart even when the failed run was deleted since ...
      CREATE TABLE pending_retries (
        failed_run_id TEXT PRIMARY KEY,
        due_at INTEGER NOT NULL,            -- Unix milliseconds
        attempt INTEGER NOT NULL,           -- the attempt number of the retry
        agent_id TEXT NOT NULL,
        task TEXT,
        params TEXT NOT NULL                -- JSON object
      ) WITHOUT ROWID;
      -- ... schedules ...
      CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        task TEXT,
        params TEXT NOT NULL,               -- JSON object
        cron TEXT NOT NULL,
        timezone TEXT NOT NULL,
        enabled INTEGER NOT NULL CHECK (enabled = 0 OR enabled = 1),
        overlap TEXT NOT NULL CHECK (overlap = 'skip' OR overlap = 'queue'),
        created_at INTEGER NOT NULL,
        next_run_at INTEGER,                -- NULL: disabled, or no time matches
        last_run_id TEXT
      ) WITHOUT ROWID;
      -- ... webhooks and their deliveries (durably queued; the body is
      -- made when the event happens, so a retry sends the same bytes).
      CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,               -- JSON array of event names
        agent_id TEXT,                      -- NULL: every agent
        secret TEXT,                        -- never returned by the API
        created_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY,            -- creation order
        id TEXT NOT NULL UNIQUE,
        webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL
          CHECK (status = 'pending' OR status = 'delivered' OR status = 'failed'),
        last_status_code INTEGER,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        next_attempt_at INTEGER             -- while pending
      );
      CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
      CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
    )sql"},
    Migration{8, R"sql(
      -- v1.1: the name of the host that executed the run (NULL while queued).
      ALTER TABLE runs ADD COLUMN host TEXT;
    )sql"},
    Migration{9, R"sql(
      -- v1.1: finds the run that retries a failed one, so that a retry
      -- started just before the host stopped is not started again. Only
      -- retries are in it.
      CREATE INDEX runs_by_retry_of ON runs (retry_of) WHERE retry_of IS NOT NULL;
    )sql"},
    Migration{10, R"sql(
      -- v1.1: a schedule's time claimed and its run not recorded yet: the
      -- id that run gets and the host that claimed it (cleared once the run
      -- is recorded), so that a host back from a crash in between starts it.
      ALTER TABLE schedules ADD COLUMN firing_run_id TEXT;
      ALTER TABLE schedules ADD COLUMN firing_host TEXT;
    )sql"},
};

}  // namespace

int latest_schema_version() {
  return kMigrations.back().version;
}

int read_schema_version(SQLite::Database& db) {
  return db.execAndGet("PRAGMA user_version").getInt();
}

void migrate(SQLite::Database& db, const std::filesystem::path& file) {
  const int current = read_schema_version(db);
  if (current > latest_schema_version()) {
    throw std::runtime_error("database " + file.string() + " has schema version " +
                             std::to_string(current) + ", newer than this build knows (" +
                             std::to_string(latest_schema_version()) +
                             "); run a newer nightshift or use another data directory");
  }
  for (const Migration& step : kMigrations) {
    if (step.version <= current) continue;
    SQLite::Transaction transaction(db, SQLite::TransactionBehavior::IMMEDIATE);
    db.exec(step.sql);
    db.exec("PRAGMA user_version = " + std::to_string(step.version));
    transaction.commit();
  }
}

}  // namespace nightshift::store
