#include "store/read_pool.hpp"

namespace nightshift::store {

namespace {
constexpr int kBusyTimeoutMs = 5000;
}

ReadConnection::ReadConnection(const std::filesystem::path& file)
    : db_(file.string(), SQLite::OPEN_READONLY, kBusyTimeoutMs) {}

SQLite::Statement& ReadConnection::prepare(const std::string& sql) {
  auto& slot = statements_[sql];
  if (!slot) {
    slot = std::make_unique<SQLite::Statement>(db_, sql);
  } else {
    slot->tryReset();
    slot->clearBindings();
  }
  return *slot;
}

void ReadConnection::finish_reads() {
  for (auto& [sql, statement] : statements_) statement->tryReset();
}

ReadPool::ReadPool(const std::filesystem::path& file, std::size_t size) {
  if (size == 0) size = 1;
  for (std::size_t i = 0; i < size; ++i) {
    connections_.push_back(std::make_unique<ReadConnection>(file));
    free_.push_back(connections_.back().get());
  }
}

ReadPool::Lease ReadPool::borrow() {
  std::unique_lock lock(mutex_);
  returned_.wait(lock, [this] { return !free_.empty(); });
  ReadConnection* connection = free_.back();
  free_.pop_back();
  return Lease(*this, *connection);
}

void ReadPool::give_back(ReadConnection& connection) {
  {
    std::lock_guard lock(mutex_);
    free_.push_back(&connection);
  }
  returned_.notify_one();
}

}  // namespace nightshift::store
