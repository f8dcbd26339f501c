#include "store/run_store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <memory_resource>
#include <mutex>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "store/history_cursor.hpp"
#include "store/queries.hpp"
#include "store/read_pool.hpp"
#include "store/run_row.hpp"
#include "store/schema.hpp"

namespace nightshift {

namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr std::size_t kMaxHistoryLimit = 500;
// One prune chunk deletes at most this many runs, and stops early once the
// runs it took hold this many log entries: a chunk is a short transaction.
constexpr std::int64_t kPruneChunkRuns = 256;
constexpr std::uint64_t kPruneChunkLogEntries = 200000;

std::string run_select(const char* tail) {
  return std::string("SELECT ") + store::kRunColumns + tail;
}

// A run's first record (UpsertRun::first): an id recorded already fails it.
const std::string kInsertRun =
    std::string("INSERT INTO runs (") + store::kRunColumns +
    ", finished) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
    "?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)";

// What a later record of a run sets: every column of kRunColumns but the id,
// and `finished`, each to what `value(column, parameter)` appends (parameters
// numbered as bind_run binds them). The log count only grows: an AppendLogs
// may have counted entries the run snapshot in the record had not seen yet.
// (Appended piece by piece: GCC 12 at -O3 warns falsely, -Wrestrict, about
// some concatenations of short strings.)
template <typename Value>
std::string later_record_assignments(Value value) {
  std::string out;
  const std::string_view columns = store::kRunColumns;
  int parameter = 0;
  for (std::size_t at = 0; at < columns.size();) {
    const std::size_t comma = std::min(columns.find(',', at), columns.size());
    const std::string_view column = columns.substr(at, comma - at);
    at = comma + 2;                  // past ", "
    if (++parameter == 1) continue;  // instance_id: the row's key
    out.append(column).append(" = ");
    if (parameter == store::kLogCountParameter) {
      out.append("max(runs.log_count, ");
      value(out, column, parameter);
      out.append(")");
    } else {
      value(out, column, parameter);
    }
    out.append(", ");
  }
  out.append("finished = ");
  value(out, "finished", store::kFinishedParameter);
  return out;
}

// A run's later record when its row may not exist yet.
const std::string kUpsertRun =
    kInsertRun + " ON CONFLICT (instance_id) DO UPDATE SET " +
    later_record_assignments([](std::string& out, std::string_view column, int) {
      out.append("excluded.").append(column);
    });

// A run's later record, for the row that is there: the same as kUpsertRun
// without the insert that fails first (the writer's work per record is about
// a tenth less, counted with callgrind).
const std::string kUpdateRun =
    "UPDATE runs SET " +
    later_record_assignments([](std::string& out, std::string_view, int parameter) {
      out.append("?").append(std::to_string(parameter));
    }) +
    " WHERE instance_id = ?1";

// The writer's page cache: SQLite's default size. A page it does not hold
// comes back from the operating system's cache, not the disk; the engine
// benchmark measured the same echo, stop and log figures with 2 MiB as with
// 32 MiB, whose pages (the runs table, its indexes and the newest log
// pages) stayed resident in every host: about 2.5 MiB more with 10,000
// sleeping runs, up to 32 MiB on a busy host.
constexpr int kWriterCacheKib = 2 * 1024;
// Pages the WAL may hold before a commit checkpoints it into the database:
// each checkpoint copies every page it holds and syncs, so at the engine's
// write rate a longer WAL means far fewer copies of the same hot pages.
// 16000 pages (64 MiB at 4 KiB pages): the echo engine benchmark measured
// about 20,000 runs/s against about 18,000 with 4000 pages, whose frequent
// checkpoints (copy plus fsync) stalled the writer and so every start().
constexpr int kWalCheckpointPages = 16000;

// The history (logs included) is for its owner only: the database file is
// created 0600 whatever the umask, an older one is made 0600, and SQLite
// gives its -wal and -shm files the database file's mode.
void make_database_private(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
  }
  const int rc = ::fchmod(fd, 0600);
  const int error = errno;
  ::close(fd);
  if (rc != 0) {
    throw std::system_error(error, std::generic_category(),
                            "cannot make " + file.string() + " private (mode 0600)");
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string companion = file.string() + suffix;
    if (::chmod(companion.c_str(), 0600) != 0 && errno != ENOENT) {
      throw std::system_error(errno, std::generic_category(),
                              "cannot make " + companion + " private (mode 0600)");
    }
  }
}

// SQLite counts the memory it allocates under a process-wide mutex, taken
// for every allocation (several per row written); the host never reads the
// counts. Turned off before the first connection opens. It has to be set
// before SQLite initializes: in a process that used SQLite before (a test, a
// benchmark), SQLite refuses it and keeps counting.
void stop_sqlite_memory_statistics() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

SQLite::Database open_writer(const std::filesystem::path& file) {
  stop_sqlite_memory_statistics();
  make_database_private(file);
  // NOMUTEX: the writer connection is used by one thread at a time (see
  // run_store.hpp), so SQLite's per-call locking is only overhead.
  SQLite::Database db(file.string(),
                      SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
                      kBusyTimeoutMs);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA cache_size = -" + std::to_string(kWriterCacheKib));
  db.exec("PRAGMA wal_autocheckpoint = " + std::to_string(kWalCheckpointPages));
  // Migrations run with foreign keys off, as SQLite's procedure for
  // rebuilding a table asks (dropping the old runs table must not cascade
  // to the log); every write after them has them on.
  store::migrate(db, file);
  db.exec("PRAGMA foreign_keys = ON");
  return db;
}

std::string read_cursor_key(SQLite::Database& db) {
  SQLite::Statement query(db, "SELECT value FROM store_meta WHERE key = 'cursor_key'");
  if (!query.executeStep()) throw std::runtime_error("store is missing its cursor key");
  return query.getColumn(0).getString();
}

// Log entries are inserted this many rows per statement: far fewer VM runs
// per entry than one row at a time, at the rate the engine aims for.
constexpr std::size_t kLogRowsPerInsert = 32;

std::string insert_logs_sql(std::size_t rows) {
  std::string sql = "INSERT INTO logs (run, seq, ts, level, message, source) VALUES ";
  for (std::size_t i = 0; i < rows; ++i) {
    sql += i == 0 ? "(?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?)";
  }
  return sql;
}

std::int64_t clamp_to_int64(std::uint64_t value) {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(value, std::numeric_limits<std::int64_t>::max()));
}

// Binds `count` entries to a statement of insert_logs_sql(count) and runs it.
void insert_logs(SQLite::Statement& insert, std::int64_t run_id, const LogEntry* entries,
                 std::size_t count) {
  insert.tryReset();
  int index = 1;
  for (std::size_t i = 0; i < count; ++i) {
    const LogEntry& entry = entries[i];
    insert.bind(index++, run_id);
    insert.bind(index++, clamp_to_int64(entry.seq));
    insert.bind(index++, store::to_ms(entry.ts));
    insert.bind(index++, static_cast<int>(entry.level));
    insert.bindNoCopy(index++, entry.message);
    insert.bind(index++, static_cast<int>(entry.source));
  }
  insert.exec();
  // Drop the no-copy bindings now: the entries may be gone by the next use.
  insert.tryReset();
  insert.clearBindings();
}

store::HistoryFilters filters_of(const HistoryQuery& query) {
  store::HistoryFilters filters;
  if (query.status) filters.status = std::string(to_string(*query.status));
  filters.agent_id = query.agent_id;
  return filters;
}

void check_history_query(const HistoryQuery& query) {
  if (query.limit < 1 || query.limit > kMaxHistoryLimit) {
    throw std::invalid_argument("history limit must be between 1 and 500");
  }
  if (query.status && !is_terminal(*query.status)) {
    throw std::invalid_argument("history status must be a terminal status");
  }
}

}  // namespace

struct RunStore::Impl {
  explicit Impl(StoreOptions opts)
      : options(std::move(opts)),
        writer(open_writer(options.database)),
        upsert_run(writer, kUpsertRun),
        insert_run(writer, kInsertRun),
        update_run(writer, kUpdateRun),
        find_run(writer, "SELECT id, finished FROM runs WHERE instance_id = ?1"),
        find_thread(writer, "SELECT thread_id FROM runs WHERE instance_id = ?1"),
        insert_log(writer, insert_logs_sql(1)),
        insert_log_group(writer, insert_logs_sql(kLogRowsPerInsert)),
        raise_log_count(writer, "UPDATE runs SET log_count = max(log_count, ?2) WHERE id = ?1"),
        update_progress(
            writer,
            "UPDATE runs SET progress = ?2, prompt_tokens = ?3, completion_tokens = ?4, "
            "log_count = max(log_count, ?5) WHERE instance_id = ?1 AND finished = 0"),
        delete_run(writer, "DELETE FROM runs WHERE id = ?1"),
        prune_boundary(writer,
                       "SELECT ended_at, id FROM runs WHERE finished = 1 "
                       "ORDER BY ended_at DESC, id DESC LIMIT 1 OFFSET ?1"),
        prune_candidates(writer, store::prune_candidates_sql()),
        cursors(read_cursor_key(writer)),
        readers(options.database, options.read_connections) {}

  // ---- write side: the writer thread only ----
  // Each answers whether it left work unfinished (only a prune can).
  bool apply_one(const UpsertRun& op);
  bool apply_one(const AppendLogs& op);
  bool apply_one(const DeleteRun& op);
  bool apply_one(const PruneRuns& op);
  bool apply_one(const UpdateProgress& op);
  // Deletes one bounded chunk; sets `more` when the chunk bound stopped it.
  std::size_t prune_chunk(const RetentionPolicy& policy, Timestamp now, bool& more);
  std::optional<std::pair<std::int64_t, bool>> find_run_id(const std::string& instance_id);
  // Writes `run` with `log_count` in place of its own; `first`: as its
  // first record (UpsertRun::first).
  void write_run(const Run& run, std::uint64_t log_count, bool first);

  // Upsert coalescing. Within one batch, the upserts of a run up to its next
  // DeleteRun (or the next PruneRuns, which may delete any run) form a group,
  // written once: the last state, at the position of the first upsert, so
  // the rows get the ids they would have had and the AppendLogs behind the
  // first upsert find their run. The run manager upserts each run three
  // times (queued, running, final), and each write touches seven indexes.
  static constexpr std::size_t kNotWrittenHere = std::numeric_limits<std::size_t>::max();
  //
  // An AppendLogs raises its run's stored log count, unless an upsert or a
  // progress update of the run later in the batch (and not behind a delete
  // or prune of it) carries a count that covers its entries: the run manager
  // hands a run's entries to the writer before the record that counts them,
  // so in a busy batch the separate UPDATE is mostly redundant.
  //
  // An UpdateProgress is skipped when an upsert of its run follows it in the
  // batch (not behind a delete or prune): that record was taken later, and
  // carries the run's progress, usage and count as they were then.
  struct UpsertPlan {
    std::size_t source = kNotWrittenHere;  // the op whose run to write here
    std::uint64_t log_count = 0;           // the highest count in the group
    bool first = false;                    // the group holds its run's first record
    bool covered = false;                  // for an AppendLogs, an UpdateProgress: see above
  };
  // Of a run, what the writes after a position in the batch carry.
  struct LaterWrites {
    std::uint64_t log_count = 0;  // the highest count an upsert or progress update carries
    bool upsert = false;          // an upsert of the run follows
  };
  // Fills upsert_plans for `ops`: a group's first position gets the plan,
  // the group's later positions keep kNotWrittenHere.
  void plan_upserts(const std::vector<WriteOp>& ops);
  // Appends the entries; raises the stored count unless it is covered.
  void append_logs(const AppendLogs& op, bool raise_log_count);

  StoreOptions options;
  SQLite::Database writer;
  SQLite::Statement upsert_run;
  SQLite::Statement insert_run;
  SQLite::Statement update_run;
  SQLite::Statement find_run;
  SQLite::Statement find_thread;
  SQLite::Statement insert_log;
  SQLite::Statement insert_log_group;
  SQLite::Statement raise_log_count;
  SQLite::Statement update_progress;
  SQLite::Statement delete_run;
  SQLite::Statement prune_boundary;
  SQLite::Statement prune_candidates;
  // Scratch of plan_upserts, kept between batches so that planning a batch
  // allocates nothing once they have grown. Keys view the ops' instance ids.
  std::vector<UpsertPlan> upsert_plans;
  std::pmr::unsynchronized_pool_resource plan_memory;
  std::pmr::unordered_map<std::string_view, std::size_t> open_groups{&plan_memory};
  std::pmr::unordered_map<std::string_view, LaterWrites> later_writes{&plan_memory};

  // ---- read side: immutable after construction, or thread-safe ----
  const store::HistoryCursorCodec cursors;
  mutable store::ReadPool readers;
};

std::optional<std::pair<std::int64_t, bool>> RunStore::Impl::find_run_id(
    const std::string& instance_id) {
  find_run.tryReset();
  find_run.bind(1, instance_id);
  if (!find_run.executeStep()) return std::nullopt;
  std::pair<std::int64_t, bool> found{find_run.getColumn(0).getInt64(),
                                      find_run.getColumn(1).getInt() != 0};
  find_run.tryReset();
  return found;
}

void RunStore::Impl::write_run(const Run& run, std::uint64_t log_count, bool first) {
  const auto write = [&](SQLite::Statement& statement) {
    statement.tryReset();
    statement.clearBindings();
    store::bind_run(statement, run);
    statement.bind(store::kLogCountParameter, clamp_to_int64(log_count));
    statement.exec();
  };
  if (!first) {
    // A run's row is there from its first record on; the upsert is for a
    // later record written without its first.
    write(update_run);
    if (writer.getChanges() == 0) write(upsert_run);
    return;
  }
  try {
    write(insert_run);
  } catch (const SQLite::Exception& error) {
    insert_run.tryReset();
    if ((error.getExtendedErrorCode() & 0xff) != SQLITE_CONSTRAINT) throw;
    find_thread.tryReset();
    find_thread.bind(1, run.instance_id);
    const bool recorded = find_thread.executeStep();
    const std::string thread_id = recorded ? find_thread.getColumn(0).getString() : "";
    find_thread.tryReset();
    if (!recorded) throw;  // another constraint
    if (thread_id != run.thread_id) throw RunIdRecorded(run.instance_id);
    write(upsert_run);  // this run's own record, written before
  }
}

bool RunStore::Impl::apply_one(const UpsertRun& op) {
  write_run(op.run(), op.run().log_count, op.is_first());
  return false;
}

void RunStore::Impl::plan_upserts(const std::vector<WriteOp>& ops) {
  upsert_plans.assign(ops.size(), UpsertPlan{});
  open_groups.clear();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (const auto* upsert = std::get_if<UpsertRun>(&ops[i])) {
      const auto [group, is_new] = open_groups.try_emplace(upsert->run().instance_id, i);
      UpsertPlan& first = upsert_plans[group->second];
      first.source = i;
      first.first = first.first || upsert->is_first();
      // The stored count only grows (see kUpsertRun): the group writes the
      // highest, as its upserts one by one would have left it.
      first.log_count =
          is_new ? upsert->run().log_count : std::max(first.log_count, upsert->run().log_count);
    } else if (const auto* deletion = std::get_if<DeleteRun>(&ops[i])) {
      open_groups.erase(deletion->instance_id);
    } else if (std::holds_alternative<PruneRuns>(ops[i])) {
      open_groups.clear();
    }
  }
  // Backwards: what the writes after each position carry.
  later_writes.clear();
  for (std::size_t i = ops.size(); i-- > 0;) {
    if (const auto* upsert = std::get_if<UpsertRun>(&ops[i])) {
      LaterWrites& later = later_writes[upsert->run().instance_id];
      later.log_count = std::max(later.log_count, upsert->run().log_count);
      later.upsert = true;
    } else if (const auto* progress = std::get_if<UpdateProgress>(&ops[i])) {
      // Written here or, when an upsert follows, by that upsert: either way
      // its count is in the store by the end of the batch.
      LaterWrites& later = later_writes[progress->instance_id];
      upsert_plans[i].covered = later.upsert;
      later.log_count = std::max(later.log_count, progress->log_count);
    } else if (const auto* logs = std::get_if<AppendLogs>(&ops[i])) {
      const auto it = later_writes.find(logs->instance_id);
      upsert_plans[i].covered = !logs->entries.empty() && it != later_writes.end() &&
                                it->second.log_count >= logs->entries.back().seq;
    } else if (const auto* deletion = std::get_if<DeleteRun>(&ops[i])) {
      later_writes.erase(deletion->instance_id);
    } else if (std::holds_alternative<PruneRuns>(ops[i])) {
      later_writes.clear();
    }
  }
}

bool RunStore::Impl::apply_one(const AppendLogs& op) {
  append_logs(op, true);
  return false;
}

bool RunStore::Impl::apply_one(const UpdateProgress& op) {
  update_progress.tryReset();
  update_progress.clearBindings();
  update_progress.bind(1, op.instance_id);
  if (op.progress) update_progress.bind(2, *op.progress);
  if (op.usage) {
    update_progress.bind(3, clamp_to_int64(op.usage->prompt_tokens));
    update_progress.bind(4, clamp_to_int64(op.usage->completion_tokens));
  }
  update_progress.bind(5, clamp_to_int64(op.log_count));
  update_progress.exec();
  return false;
}

void RunStore::Impl::append_logs(const AppendLogs& op, bool raise) {
  if (op.entries.empty()) return;
  const auto run = find_run_id(op.instance_id);
  if (!run) throw std::runtime_error("log entries for unknown run " + op.instance_id);
  // Full groups go through the many-row statement (one step per group),
  // the rest one row at a time.
  const std::size_t grouped = op.entries.size() - op.entries.size() % kLogRowsPerInsert;
  for (std::size_t first = 0; first < grouped; first += kLogRowsPerInsert) {
    insert_logs(insert_log_group, run->first, &op.entries[first], kLogRowsPerInsert);
  }
  for (std::size_t i = grouped; i < op.entries.size(); ++i) {
    insert_logs(insert_log, run->first, &op.entries[i], 1);
  }
  if (!raise) return;
  raise_log_count.tryReset();
  raise_log_count.bind(1, run->first);
  raise_log_count.bind(2, clamp_to_int64(op.entries.back().seq));
  raise_log_count.exec();
}

bool RunStore::Impl::apply_one(const DeleteRun& op) {
  const auto run = find_run_id(op.instance_id);
  if (!run) return false;  // already gone: deleting is idempotent
  if (!run->second) {
    throw std::logic_error("run " + op.instance_id + " is active; only finished runs are deleted");
  }
  delete_run.tryReset();
  delete_run.bind(1, run->first);
  delete_run.exec();  // its log entries go with it (ON DELETE CASCADE)
  return false;
}

bool RunStore::Impl::apply_one(const PruneRuns& op) {
  bool more = false;
  prune_chunk(op.policy, op.now, more);
  return more;
}

std::size_t RunStore::Impl::prune_chunk(const RetentionPolicy& policy, Timestamp now, bool& more) {
  more = false;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t boundary_ended_at = kMax;
  std::int64_t boundary_id = kMax;
  if (policy.keep_at_least > 0) {
    // The oldest of the newest keep_at_least finished runs: only runs
    // strictly older than it may go.
    prune_boundary.tryReset();
    prune_boundary.bind(1, clamp_to_int64(policy.keep_at_least - 1));
    if (!prune_boundary.executeStep()) return 0;
    boundary_ended_at = prune_boundary.getColumn(0).getInt64();
    boundary_id = prune_boundary.getColumn(1).getInt64();
    prune_boundary.tryReset();
  }
  prune_candidates.tryReset();
  prune_candidates.bind(1, store::to_ms(now - policy.max_age));
  prune_candidates.bind(2, boundary_ended_at);
  prune_candidates.bind(3, boundary_id);
  prune_candidates.bind(4, kPruneChunkRuns);
  std::vector<std::int64_t> doomed;
  std::uint64_t log_entries = 0;
  while (prune_candidates.executeStep()) {
    if (!doomed.empty() && log_entries >= kPruneChunkLogEntries) {
      more = true;
      break;
    }
    doomed.push_back(prune_candidates.getColumn(0).getInt64());
    log_entries += static_cast<std::uint64_t>(prune_candidates.getColumn(1).getInt64());
  }
  prune_candidates.tryReset();
  if (static_cast<std::int64_t>(doomed.size()) == kPruneChunkRuns) more = true;
  for (const std::int64_t id : doomed) {
    delete_run.tryReset();
    delete_run.bind(1, id);
    delete_run.exec();
  }
  return doomed.size();
}

RunStore::RunStore(StoreOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

RunStore::~RunStore() = default;

void RunStore::apply(const std::vector<WriteOp>& ops) {
  apply_reporting_unfinished_prune(ops);
}

bool RunStore::apply_reporting_unfinished_prune(const std::vector<WriteOp>& ops) {
  bool prune_unfinished = false;
  impl_->plan_upserts(ops);
  SQLite::Transaction transaction(impl_->writer, SQLite::TransactionBehavior::IMMEDIATE);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (const auto* upsert = std::get_if<UpsertRun>(&ops[i])) {
      const Impl::UpsertPlan& plan = impl_->upsert_plans[i];
      if (plan.source == Impl::kNotWrittenHere) {
        // Written earlier in this batch with its group's last state; still
        // refused if it could not have been written on its own.
        store::check_writable(upsert->run());
      } else {
        impl_->write_run(std::get<UpsertRun>(ops[plan.source]).run(), plan.log_count, plan.first);
      }
      continue;
    }
    if (const auto* logs = std::get_if<AppendLogs>(&ops[i])) {
      impl_->append_logs(*logs, !impl_->upsert_plans[i].covered);
      continue;
    }
    if (const auto* progress = std::get_if<UpdateProgress>(&ops[i])) {
      if (!impl_->upsert_plans[i].covered) impl_->apply_one(*progress);
      continue;
    }
    const bool unfinished =
        std::visit([this](const auto& one) { return impl_->apply_one(one); }, ops[i]);
    prune_unfinished = prune_unfinished || unfinished;
  }
  transaction.commit();
  return prune_unfinished;
}

std::vector<Run> RunStore::mark_interrupted(Timestamp now, const std::string& error) {
  SQLite::Transaction transaction(impl_->writer, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement mark(impl_->writer,
                         std::string("UPDATE runs SET status = 'failed', finished = 1, error = ?1, "
                                     "ended_at = ?2 WHERE finished = 0 RETURNING ") +
                             store::kRunColumns);
  mark.bind(1, error);
  mark.bind(2, store::to_ms(now));
  std::vector<Run> marked;
  while (mark.executeStep()) marked.push_back(store::read_run(mark));
  transaction.commit();
  return marked;
}

std::size_t RunStore::prune(const RetentionPolicy& policy, Timestamp now) {
  std::size_t deleted = 0;
  bool more = true;
  while (more) {
    SQLite::Transaction transaction(impl_->writer, SQLite::TransactionBehavior::IMMEDIATE);
    deleted += impl_->prune_chunk(policy, now, more);
    transaction.commit();
  }
  return deleted;
}

std::optional<Run> RunStore::get_run(const std::string& instance_id) const {
  auto connection = impl_->readers.borrow();
  auto& query = connection->prepare(run_select(" FROM runs WHERE instance_id = ?1"));
  query.bind(1, instance_id);
  if (!query.executeStep()) return std::nullopt;
  return store::read_run(query);
}

std::vector<Run> RunStore::list_active(const std::optional<std::string>& agent_id) const {
  auto connection = impl_->readers.borrow();
  auto& query = connection->prepare(store::active_runs_sql(agent_id.has_value()));
  if (agent_id) query.bind(1, *agent_id);
  std::vector<Run> runs;
  while (query.executeStep()) runs.push_back(store::read_run(query));
  return runs;
}

HistoryPage RunStore::list_history(const HistoryQuery& query) const {
  check_history_query(query);
  const store::HistoryFilters filters = filters_of(query);
  std::optional<store::HistoryPosition> after;
  if (query.cursor) after = impl_->cursors.decode(*query.cursor, filters);

  auto connection = impl_->readers.borrow();
  auto& statement = connection->prepare(store::history_page_sql(
      filters.status.has_value(), filters.agent_id.has_value(), after.has_value()));
  if (filters.agent_id) statement.bind(":agent", *filters.agent_id);
  if (filters.status) statement.bind(":status", *filters.status);
  if (after) {
    statement.bind(":ended_at", after->ended_at_ms);
    statement.bind(":id", after->run_id);
  }
  // One row more than the page tells whether a next page exists.
  statement.bind(":limit", static_cast<std::int64_t>(query.limit + 1));

  HistoryPage page;
  store::HistoryPosition last{};
  while (statement.executeStep()) {
    if (page.runs.size() == query.limit) {
      page.next_cursor = impl_->cursors.encode(last, filters);
      break;
    }
    page.runs.push_back(store::read_run(statement));
    last = {store::to_ms(page.runs.back().ended_at.value_or(Timestamp{})),
            statement.getColumn(store::kRunColumnCount).getInt64()};
  }
  return page;
}

std::vector<LogEntry> RunStore::read_logs(const std::string& instance_id, std::uint64_t after_seq,
                                          std::size_t limit) const {
  auto connection = impl_->readers.borrow();
  auto& query = connection->prepare(store::read_logs_sql());
  query.bind(1, instance_id);
  query.bind(2, clamp_to_int64(after_seq));
  query.bind(3, clamp_to_int64(limit));
  std::vector<LogEntry> entries;
  while (query.executeStep()) {
    LogEntry entry;
    entry.seq = static_cast<std::uint64_t>(query.getColumn(0).getInt64());
    entry.ts = store::from_ms(query.getColumn(1).getInt64());
    const int level = query.getColumn(2).getInt();
    entry.message = query.getColumn(3).getString();
    if (level >= 0 && level <= static_cast<int>(LogLevel::error)) {
      entry.level = static_cast<LogLevel>(level);
    } else {
      // One bad row stays one entry; a page of logs never fails for it.
      entry.level = LogLevel::warn;
      entry.message.insert(0, "(stored with an unknown level " + std::to_string(level) + ") ");
    }
    const int source = query.getColumn(4).getInt();
    entry.source = source >= 0 && source <= static_cast<int>(LogSource::host)
                       ? static_cast<LogSource>(source)
                       : LogSource::agent;
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::size_t RunStore::count_runs() const {
  auto connection = impl_->readers.borrow();
  auto& query = connection->prepare("SELECT count(*) FROM runs");
  query.executeStep();
  return static_cast<std::size_t>(query.getColumn(0).getInt64());
}

int RunStore::schema_version() const {
  auto connection = impl_->readers.borrow();
  auto& query = connection->prepare("PRAGMA user_version");
  query.executeStep();
  return query.getColumn(0).getInt();
}

std::string RunStore::integrity_check() const {
  auto connection = impl_->readers.borrow();
  auto& query = connection->prepare("PRAGMA integrity_check");
  std::string answer;
  while (query.executeStep()) {
    if (!answer.empty()) answer += '\n';
    answer += query.getColumn(0).getString();
  }
  return answer;
}

}  // namespace nightshift
