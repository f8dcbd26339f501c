#include "store/store_writer.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

namespace nightshift {

StoreWriter::StoreWriter(RunStore& store, CommittedHandler on_committed)
    : store_(store), on_committed_(std::move(on_committed)), thread_([this] { thread_main(); }) {}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_one();
  thread_.join();
}

void StoreWriter::submit(WriteOp op) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(std::move(op));
    ++submitted_seq_;
  }
  work_ready_.notify_one();
}

void StoreWriter::submit(WriteOp op, Completion on_done) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(std::move(op));
    pending_completions_.push_back(std::move(on_done));
    ++submitted_seq_;
  }
  work_ready_.notify_one();
}

void StoreWriter::submit_and_wait(WriteOp op) {
  // The waiter lives on this stack; the completion sets it under mutex_.
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

std::size_t StoreWriter::pending_ops() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

std::uint64_t StoreWriter::committed_batches() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

void StoreWriter::thread_main() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_ready_.wait(
        lock, [this] { return stopping_ || !pending_.empty() || unfinished_prune_.has_value(); });
    if (!pending_.empty()) {
      // Everything queued while the previous commit ran goes in together.
      Batch batch = take_batch();
      lock.unlock();
      commit(batch);
      lock.lock();
    }
    if (unfinished_prune_ && stopping_) {
      // Shutting down: the rest of a prune waits for the next one.
      unfinished_prune_.reset();
      committed_.notify_all();
    }
    if (unfinished_prune_) {
      lock.unlock();
      continue_prune();
      lock.lock();
    }
    if (stopping_ && pending_.empty()) break;
  }
}

StoreWriter::Batch StoreWriter::take_batch() {
  Batch batch;
  batch.ops.swap(pending_);
  batch.completions.swap(pending_completions_);
  batch.last_seq = submitted_seq_;
  return batch;
}

void StoreWriter::commit(Batch& batch) {
  std::string error;
  bool prune_unfinished = false;
  try {
    prune_unfinished = store_.apply_reporting_unfinished_prune(batch.ops);
  } catch (const std::exception& e) {
    error = e.what();
    if (error.empty()) error = "unknown error";
    spdlog::error("store writer: a batch of {} writes failed and was rolled back: {}",
                  batch.ops.size(), error);
  }
  if (error.empty()) publish(batch.ops);

  std::optional<PruneRuns> prune_rest;
  if (prune_unfinished) {
    for (const WriteOp& op : batch.ops) {
      if (const auto* prune = std::get_if<PruneRuns>(&op)) prune_rest = *prune;
    }
  }
  for (Completion& done : batch.completions) {
    if (!done) continue;
    try {
      done(error);
    } catch (const std::exception& e) {
      spdlog::error("store writer: a completion handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("store writer: a completion handler threw a non-exception");
    }
  }
  // Only now is the batch settled for flush(): its completions have run.
  {
    std::lock_guard lock(mutex_);
    committed_seq_ = batch.last_seq;
    if (error.empty()) ++batches_;
    if (prune_rest) unfinished_prune_ = prune_rest;
  }
  committed_.notify_all();
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
