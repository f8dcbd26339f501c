#include "store/run_row.hpp"

#include <boost/json.hpp>
#include <stdexcept>

namespace nightshift::store {

namespace {

void bind_optional_time(SQLite::Statement& statement, int index,
                        const std::optional<Timestamp>& t) {
  if (t) {
    statement.bind(index, to_ms(*t));
  } else {
    statement.bind(index);
  }
}

// Binds without a copy: `text` must outlive the statement's execution.
void bind_optional_text(SQLite::Statement& statement, int index, const OptionalText& text) {
  if (text) {
    statement.bindNoCopy(index, *text);
  } else {
    statement.bind(index);
  }
}

// A row of the statement as read_run_fields reads it.
class StatementRow {
 public:
  explicit StatementRow(const SQLite::Statement& statement) : statement_(statement) {}
  bool is_null(RunField field) const { return statement_.isColumnNull(index(field)); }
  std::string text(RunField field) const { return statement_.getColumn(index(field)).getString(); }
  std::string_view json(RunField field) const {
    const SQLite::Column column = statement_.getColumn(index(field));
    return {column.getText(), static_cast<std::size_t>(column.getBytes())};
  }
  std::int64_t int64(RunField field) const { return statement_.getColumn(index(field)).getInt64(); }
  double real(RunField field) const { return statement_.getColumn(index(field)).getDouble(); }
  bool boolean(RunField field) const { return statement_.getColumn(index(field)).getInt() != 0; }

 private:
  static int index(RunField field) { return static_cast<int>(field); }
  const SQLite::Statement& statement_;
};

}  // namespace

void bind_run(SQLite::Statement& statement, const Run& run) {
  check_writable(run);
  statement.bindNoCopy(1, run.instance_id);
  statement.bindNoCopy(2, run.thread_id);
  statement.bindNoCopy(3, run.agent_id);
  statement.bindNoCopy(4, run.agent_name);
  statement.bindNoCopy(5, to_string(run.agent_source).data());
  bind_optional_text(statement, 6, run.task);
  statement.bind(7, boost::json::serialize(run.params));
  statement.bindNoCopy(8, to_string(run.status).data());
  statement.bind(9, to_ms(run.created_at));
  bind_optional_time(statement, 10, run.started_at);
  bind_optional_time(statement, 11, run.ended_at);
  if (run.progress) {
    statement.bind(12, *run.progress);
  } else {
    statement.bind(12);
  }
  bind_optional_text(statement, 13, run.error);
  if (run.result.is_null()) {
    statement.bind(14);
  } else {
    statement.bind(14, boost::json::serialize(run.result));
  }
  statement.bind(kLogCountParameter, static_cast<std::int64_t>(run.log_count));
  if (run.usage) {
    statement.bind(16, static_cast<std::int64_t>(run.usage->prompt_tokens));
    statement.bind(17, static_cast<std::int64_t>(run.usage->completion_tokens));
  } else {
    statement.bind(16);
    statement.bind(17);
  }
  statement.bind(18, run.accepts_messages ? 1 : 0);
  statement.bindNoCopy(19, to_string(run.isolation).data());
  bind_optional_text(statement, 20, run.host);
  statement.bind(21, static_cast<std::int64_t>(run.attempt));
  bind_optional_text(statement, 22, run.retry_of);
  bind_optional_text(statement, 23, run.rerun_of);
  bind_optional_text(statement, 24, run.schedule_id);
  statement.bind(kFinishedParameter, is_terminal(run.status) ? 1 : 0);
}

Run read_run(const SQLite::Statement& statement) {
  return read_run_fields(StatementRow(statement));
}

}  // namespace nightshift::store
