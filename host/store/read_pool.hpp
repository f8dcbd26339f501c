// A small pool of read-only connections. Each read borrows one for its
// duration, so reads from many threads run at once beside the writer (WAL);
// a caller that finds every connection busy waits for one to come back.
#pragma once

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace nightshift::store {

// One read-only connection and its prepared statements. Used by one thread
// at a time: whoever holds its lease.
class ReadConnection {
 public:
  explicit ReadConnection(const std::filesystem::path& file);

  // The cached statement for `sql`, reset and with its bindings cleared.
  SQLite::Statement& prepare(const std::string& sql);
  // Resets every statement, ending the read transaction a half-stepped one
  // holds open (which would keep the writer from checkpointing the WAL).
  void finish_reads();

 private:
  SQLite::Database db_;
  std::map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
};

class ReadPool {
 public:
  ReadPool(const std::filesystem::path& file, std::size_t size);

  class Lease {
   public:
    Lease(ReadPool& pool, ReadConnection& connection) : pool_(&pool), connection_(&connection) {}
    ~Lease() {
      connection_->finish_reads();
      pool_->give_back(*connection_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ReadConnection* operator->() const { return connection_; }

   private:
    ReadPool* pool_;
    ReadConnection* connection_;
  };

  // [thread-safe] Blocks until a connection is free.
  Lease borrow();

 private:
  void give_back(ReadConnection& connection);

  std::vector<std::unique_ptr<ReadConnection>> connections_;  // fixed after construction
  std::mutex mutex_;                                          // guards free_
  std::condition_variable returned_;
  std::vector<ReadConnection*> free_;
};

}  // namespace nightshift::store
