#include "store/store_writer.hpp"

#include <SQLiteCpp/Exception.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <new>
#include <stdexcept>

namespace nightshift {

namespace {

// Failures that say the store cannot write now, not that the op is wrong:
// worth holding the op and trying again.
bool is_passing_failure(const std::exception& error) {
  if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) return true;
  if (dynamic_cast<const StoreUnavailable*>(&error) != nullptr) return true;
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&error);
  if (sqlite == nullptr) return false;
  switch (sqlite->getErrorCode()) {
    case 5:   // SQLITE_BUSY
    case 6:   // SQLITE_LOCKED
    case 7:   // SQLITE_NOMEM
    case 8:   // SQLITE_READONLY
    case 10:  // SQLITE_IOERR
    case 13:  // SQLITE_FULL
    case 14:  // SQLITE_CANTOPEN
    case 15:  // SQLITE_PROTOCOL
      return true;
    default:
      return false;
  }
}

}  // namespace

StoreWriter::StoreWriter(Store& store, CommittedHandler on_committed)
    : StoreWriter(store, std::move(on_committed), Options{}) {}

StoreWriter::StoreWriter(Store& store, CommittedHandler on_committed, Options options)
    : store_(store),
      on_committed_(std::move(on_committed)),
      options_(options),
      publisher_([this] { publisher_main(); }),
      thread_([this] { thread_main(); }) {}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_one();
  thread_.join();
  {
    std::lock_guard lock(publish_mutex_);
    publisher_stopping_ = true;
  }
  publication_changed_.notify_all();
  publisher_.join();
}

void StoreWriter::submit(WriteOp op) {
  submit(std::move(op), nullptr);
}

void StoreWriter::submit(WriteOp op, Completion on_done) {
  {
    std::lock_guard lock(mutex_);
    // Nothing moves past another record or a delete of its run.
    if (const auto* upsert = std::get_if<UpsertRun>(&op)) {
      replaceable_.erase(upsert->run().instance_id);
    } else if (const auto* progress = std::get_if<UpdateProgress>(&op)) {
      replaceable_.erase(progress->instance_id);
    } else if (const auto* deleted = std::get_if<DeleteRun>(&op)) {
      replaceable_.erase(deleted->instance_id);
    }
    pending_.push_back(Item{std::move(op), std::move(on_done)});
    ++submitted_seq_;
  }
  work_ready_.notify_one();
}

void StoreWriter::submit_update(UpsertRun record) {
  submit_update_op(WriteOp{std::move(record)});
}

void StoreWriter::submit_update(UpdateProgress progress) {
  submit_update_op(WriteOp{std::move(progress)});
}

void StoreWriter::submit_progress(std::string_view instance_id, std::optional<double> progress,
                                  std::uint64_t log_count, std::optional<TokenUsage> usage) {
  {
    std::lock_guard lock(mutex_);
    const auto entry = replaceable_.find(instance_id);
    auto* const older = entry == replaceable_.end()
                            ? nullptr
                            : std::get_if<UpdateProgress>(&pending_[entry->second].op);
    if (older == nullptr) {
      pending_.push_back(
          Item{UpdateProgress{std::string(instance_id), progress, log_count, usage}, nullptr});
      supersede_locked(pending_.size() - 1);
    } else {
      pending_.push_back(Item{UpdateProgress{std::string(), progress, log_count, usage}, nullptr});
      // It takes over the replaced update's copy of the id, which the run's
      // key views: the key leaves the map before the id moves.
      auto node = replaceable_.extract(entry);
      std::get<UpdateProgress>(pending_.back().op).instance_id = std::move(older->instance_id);
      replace_locked(std::move(node), pending_.size() - 1);
    }
    ++submitted_seq_;
  }
  work_ready_.notify_one();
}

void StoreWriter::submit_update_op(WriteOp op) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(Item{std::move(op), nullptr});
    supersede_locked(pending_.size() - 1);
    ++submitted_seq_;
  }
  work_ready_.notify_one();
}

namespace {

// The run an update is of, viewed inside the op.
std::string_view run_of_update(const WriteOp& op) {
  if (const auto* upsert = std::get_if<UpsertRun>(&op)) return upsert->run().instance_id;
  return std::get<UpdateProgress>(op).instance_id;
}

// Whether `newer` makes `older`, both updates of one run, redundant: a
// record replaces the record of the same status before it and any progress
// update (it was taken later, so it carries what that one does); a progress
// update replaces only a progress update.
bool replaces(const WriteOp& newer, const WriteOp& older) {
  if (const auto* record = std::get_if<UpsertRun>(&newer)) {
    const auto* older_record = std::get_if<UpsertRun>(&older);
    return older_record == nullptr || older_record->run().status == record->run().status;
  }
  return std::holds_alternative<UpdateProgress>(older);
}

}  // namespace

void StoreWriter::supersede_locked(std::size_t position) {
  // The key views the run's id inside the op: an upsert's record stays where
  // it is on the heap, and an op stays where it is in pending_ (a deque).
  const std::string_view id = run_of_update(pending_[position].op);
  const auto entry = replaceable_.find(id);
  if (entry == replaceable_.end()) {
    replaceable_.emplace(id, position);
    return;
  }
  replace_locked(replaceable_.extract(entry), position);
}

void StoreWriter::replace_locked(Replaceable::node_type node, std::size_t position) {
  Item& newer = pending_[position];
  Item& older = pending_[node.mapped()];
  if (replaces(newer.op, older.op)) {
    auto* record = std::get_if<UpsertRun>(&newer.op);
    const auto* older_record = std::get_if<UpsertRun>(&older.op);
    if (record != nullptr && older_record != nullptr && !record->max_concurrent) {
      record->max_concurrent = older_record->max_concurrent;
    }
    older.superseded = true;
    ++superseded_in_pending_;
    ++superseded_;
  }
  // Keyed anew by the newer op (the older one's id may be freed below),
  // reusing the map's node.
  node.key() = run_of_update(newer.op);
  node.mapped() = position;
  replaceable_.insert(std::move(node));
  if (older.superseded) older.op = DeleteRun{};  // frees the older op; never applied
}

void StoreWriter::submit_and_wait(WriteOp op) {
  // The waiter lives on this stack; the completion sets it under its mutex.
  struct Waiter {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    std::string error;
  } waiter;
  submit(std::move(op), [&waiter](const std::string& error) {
    std::lock_guard lock(waiter.mutex);
    waiter.error = error;
    waiter.done = true;
    waiter.done_cv.notify_one();
  });
  std::unique_lock lock(waiter.mutex);
  waiter.done_cv.wait(lock, [&waiter] { return waiter.done; });
  if (!waiter.error.empty()) throw std::runtime_error("store write failed: " + waiter.error);
}

void StoreWriter::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = submitted_seq_;
  committed_.wait(lock, [this, target] {
    return committed_seq_ >= target && (!unfinished_prune_ || stopping_);
  });
}

std::string StoreWriter::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

std::size_t StoreWriter::pending_ops() const {
  std::lock_guard lock(mutex_);
  return pending_.size() - superseded_in_pending_;
}

std::uint64_t StoreWriter::superseded_records() const {
  std::lock_guard lock(mutex_);
  return superseded_;
}

std::size_t StoreWriter::held_ops() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

std::uint64_t StoreWriter::committed_batches() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

void StoreWriter::thread_main() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (!held_.empty() && !stopping_) {
      // Held writes wait for the store; newer ones queue behind them.
      work_ready_.wait_for(lock, retry_delay_, [this] { return stopping_; });
    } else {
      work_ready_.wait(
          lock, [this] { return stopping_ || !pending_.empty() || unfinished_prune_.has_value(); });
    }
    if (!pending_.empty() || !held_.empty()) {
      // Held ops first, then everything queued while the previous commit
      // ran (and its publication waited), all in one transaction.
      lock.unlock();
      wait_for_publisher();
      lock.lock();
      Batch batch = take_batch();
      lock.unlock();
      commit(batch);
      lock.lock();
    }
    if (unfinished_prune_ && (stopping_ || !held_.empty())) {
      // The rest of a prune waits for the next one.
      unfinished_prune_.reset();
      committed_.notify_all();
    }
    if (unfinished_prune_) {
      lock.unlock();
      continue_prune();
      lock.lock();
    }
    if (stopping_ && pending_.empty()) {
      if (!held_.empty()) {
        spdlog::error(
            "store writer: stopping with {} write(s) the store could not take ({}); the runs "
            "they belong to are marked interrupted at the next start",
            held_.size(), last_error_);
      }
      break;
    }
  }
}

StoreWriter::Batch StoreWriter::take_batch() {
  Batch batch;
  batch.items.swap(held_);
  batch.items.reserve(batch.items.size() + pending_.size() - superseded_in_pending_);
  for (Item& item : pending_) {
    if (!item.superseded) batch.items.push_back(std::move(item));
  }
  pending_.clear();
  replaceable_.clear();
  superseded_in_pending_ = 0;
  batch.last_seq = submitted_seq_;
  return batch;
}

void StoreWriter::commit(Batch& batch) {
  // The ops move out of their items for the transaction (a run record or a
  // log batch is not copied) and back in if it fails.
  std::vector<WriteOp> ops;
  ops.reserve(batch.items.size());
  for (Item& item : batch.items) ops.push_back(std::move(item.op));
  Publication publication;
  std::vector<Item> held;
  try {
    const bool prune_unfinished = store_.apply_reporting_unfinished_prune(ops);
    if (prune_unfinished) note_unfinished_prune(ops);
    {
      std::lock_guard lock(mutex_);
      ++batches_;
    }
    for (Item& item : batch.items) {
      if (item.done) publication.outcomes.emplace_back(std::move(item.done), std::string());
    }
    publication.ops = std::move(ops);
    if (!healthy()) become_healthy();
  } catch (const std::exception&) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < ops.size(); ++i) batch.items[i].op = std::move(ops[i]);
    held = commit_one_by_one(batch.items, publication);
  }
  publication.last_seq = batch.last_seq;
  {
    std::lock_guard lock(mutex_);
    held_ = std::move(held);
  }
  hand_over(std::move(publication));
}

std::vector<StoreWriter::Item> StoreWriter::commit_one_by_one(std::vector<Item>& items,
                                                              Publication& publication) {
  const auto outcome = [&publication](Item& item, std::string error) {
    if (item.done) publication.outcomes.emplace_back(std::move(item.done), std::move(error));
  };
  std::vector<Item> held;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Item& item = items[i];
    if (!held.empty()) {
      // Behind a held op: kept in order, unless somebody waits for it.
      if (item.done) {
        outcome(item, "the store cannot write now: " + last_error());
      } else {
        held.push_back(std::move(item));
      }
      continue;
    }
    try {
      const bool prune_unfinished = store_.apply_reporting_unfinished_prune({item.op});
      if (prune_unfinished) note_unfinished_prune({item.op});
      outcome(item, std::string());
      publication.ops.push_back(std::move(item.op));
    } catch (const std::exception& e) {
      std::string error = e.what();
      if (error.empty()) error = "unknown error";
      if (is_passing_failure(e)) {
        become_unhealthy(error);
        if (item.done) {
          outcome(item, "the store cannot write now: " + error);
          continue;  // nothing else depends on an op somebody waited for
        }
        held.push_back(std::move(item));
      } else if (dynamic_cast<const RunIdRecorded*>(&e) != nullptr) {
        // Two hosts started the run of one retry or schedule time: the
        // other host's is the one, and this start is refused.
        spdlog::warn("store writer: {}; this host's start of it was not recorded", error);
        outcome(item, error);
      } else {
        spdlog::error("store writer: a write was refused and dropped ({}): {}",
                      item.op.index() == 0 ? "run record" : "log, delete or prune", error);
        outcome(item, error);
      }
    }
  }
  if (held.empty() && !healthy()) become_healthy();
  return held;
}

void StoreWriter::wait_for_publisher() {
  std::unique_lock lock(publish_mutex_);
  publication_changed_.wait(lock, [this] { return !waiting_publication_; });
}

void StoreWriter::hand_over(Publication publication) {
  {
    std::lock_guard lock(publish_mutex_);
    waiting_publication_ = std::move(publication);
  }
  publication_changed_.notify_all();
}

void StoreWriter::publisher_main() {
  std::unique_lock lock(publish_mutex_);
  for (;;) {
    publication_changed_.wait(lock, [this] { return waiting_publication_ || publisher_stopping_; });
    if (!waiting_publication_) return;  // stopping, and everything is published
    Publication publication = std::move(*waiting_publication_);
    waiting_publication_.reset();
    lock.unlock();
    publication_changed_.notify_all();  // the writer may take its next batch
    if (!publication.ops.empty()) publish(publication.ops);
    for (auto& [done, error] : publication.outcomes) complete(done, error);
    publication.ops.clear();  // the committed records are freed here, not by the writer
    {
      std::lock_guard state_lock(mutex_);
      committed_seq_ = std::max(committed_seq_, publication.last_seq);
    }
    committed_.notify_all();
    lock.lock();
  }
}

void StoreWriter::become_unhealthy(const std::string& error) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = healthy_.load(std::memory_order_relaxed);
    last_error_ = error;
    retry_delay_ = first ? options_.first_retry : std::min(retry_delay_ * 2, options_.max_retry);
  }
  healthy_.store(false, std::memory_order_release);
  // Once per episode, not once per op.
  if (first) {
    spdlog::error(
        "store writer: the store cannot commit ({}); writes are held and retried, and starts "
        "are refused until it can",
        error);
  }
}

void StoreWriter::become_healthy() {
  healthy_.store(true, std::memory_order_release);
  spdlog::info("store writer: the store commits again; every held write is written");
}

void StoreWriter::complete(Completion& done, const std::string& error) {
  if (!done) return;
  try {
    done(error);
  } catch (const std::exception& e) {
    spdlog::error("store writer: a completion handler threw: {}", e.what());
  } catch (...) {
    spdlog::error("store writer: a completion handler threw a non-exception");
  }
  done = nullptr;
}

void StoreWriter::note_unfinished_prune(const std::vector<WriteOp>& ops) {
  for (const WriteOp& op : ops) {
    if (const auto* prune = std::get_if<PruneRuns>(&op)) {
      std::lock_guard lock(mutex_);
      unfinished_prune_ = *prune;
    }
  }
}

void StoreWriter::continue_prune() {
  PruneRuns prune;
  {
    std::lock_guard lock(mutex_);
    prune = *unfinished_prune_;
  }
  bool more = false;
  try {
    more = store_.apply_reporting_unfinished_prune({WriteOp{prune}});
  } catch (const std::exception& e) {
    spdlog::error("store writer: pruning old runs failed, it stops until asked again: {}",
                  e.what());
  }
  {
    std::lock_guard lock(mutex_);
    if (!more) unfinished_prune_.reset();
  }
  committed_.notify_all();
}

void StoreWriter::publish(const std::vector<WriteOp>& committed) {
  if (!on_committed_) return;
  try {
    on_committed_(committed);
  } catch (const std::exception& e) {
    spdlog::error("store writer: the committed-writes handler threw: {}", e.what());
  } catch (...) {
    spdlog::error("store writer: the committed-writes handler threw a non-exception");
  }
}

}  // namespace nightshift
