// Keeps recent history pages of GET /background-agents (and the WebSocket
// snapshot) in memory, already serialized, so that a busy client does not
// cost an SQLite query per request.
//
// History only changes when a run ends or is deleted (or is pruned, which the
// time limit below covers), so the server calls invalidate() from its bus
// handler for those events. A page is stored with the generation it was read
// under; a page read before an invalidation is never served after it, even
// when the read finished later.
//
// Thread safety: every member is [thread-safe]. invalidate() only bumps an
// atomic, so the bus handler never waits on a lock held by a slow reader.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/history.hpp"

namespace nightshift::api {

struct CachedHistoryPage {
  std::string history_json;  // the serialized JSON array of runs
  std::optional<std::string> next_cursor;
  // The instance ids of its runs: a list read beside it leaves them out of
  // its active runs (a run that ended between the two reads is in both).
  std::vector<std::string> instance_ids;
};

// Lists read the active runs first, then the history page: a run that ends
// between the two reads left the active runs only after its final record was
// committed and the cache invalidated (see ServerCore::on_bus_event), so the
// page read after holds it (when it belongs on that page); this leaves such a
// run out of `active`, so that it is listed once. Read the other way round,
// it would be in neither list.
void leave_out_ended(std::vector<Run>& active, const CachedHistoryPage& page);

class HistoryCache {
 public:
  // `max_age` bounds how long a page lives without an invalidation (pruning
  // publishes no event); `max_entries` bounds the memory.
  explicit HistoryCache(std::chrono::milliseconds max_age = std::chrono::seconds(1),
                        std::size_t max_entries = 256);

  // Returns the cached page for `query`, or calls `load` (which may throw;
  // nothing is cached then) and caches what it returns.
  std::shared_ptr<const CachedHistoryPage> get(const HistoryQuery& query,
                                               const std::function<HistoryPage()>& load);

  // The cached page for `query` when it is still current, else nullptr;
  // never reads the store.
  std::shared_ptr<const CachedHistoryPage> peek(const HistoryQuery& query);

  void invalidate() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  struct Entry {
    std::uint64_t generation = 0;
    std::chrono::steady_clock::time_point loaded_at;
    std::shared_ptr<const CachedHistoryPage> page;
  };

  static std::string key_of(const HistoryQuery& query);
  std::shared_ptr<const CachedHistoryPage> current(const std::string& key, std::uint64_t generation,
                                                   std::chrono::steady_clock::time_point now);

  const std::chrono::milliseconds max_age_;
  const std::size_t max_entries_;
  std::atomic<std::uint64_t> generation_{1};
  std::mutex mutex_;  // guards entries_
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace nightshift::api
