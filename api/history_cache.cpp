#include "api/history_cache.hpp"

#include <algorithm>

#include "api/wire.hpp"

namespace nightshift::api {

HistoryCache::HistoryCache(std::chrono::milliseconds max_age, std::size_t max_entries)
    : max_age_(max_age), max_entries_(max_entries) {}

std::string HistoryCache::key_of(const HistoryQuery& query) {
  std::string key = std::to_string(query.limit);
  key += '\n';
  key += query.status ? to_string(*query.status) : "";
  key += '\n';
  key += query.agent_id.value_or("");
  key += '\n';
  key += query.cursor.value_or("");
  return key;
}

std::shared_ptr<const CachedHistoryPage> HistoryCache::current(
    const std::string& key, std::uint64_t generation, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.generation == generation &&
      now - it->second.loaded_at < max_age_) {
    return it->second.page;
  }
  return nullptr;
}

std::shared_ptr<const CachedHistoryPage> HistoryCache::peek(const HistoryQuery& query) {
  return current(key_of(query), generation_.load(std::memory_order_acquire),
                 std::chrono::steady_clock::now());
}

std::shared_ptr<const CachedHistoryPage> HistoryCache::get(
    const HistoryQuery& query, const std::function<HistoryPage()>& load) {
  const std::string key = key_of(query);
  const auto now = std::chrono::steady_clock::now();
  const std::uint64_t generation = generation_.load(std::memory_order_acquire);
  if (auto page = current(key, generation, now)) return page;

  const HistoryPage page = load();
  auto cached = std::make_shared<CachedHistoryPage>(
      CachedHistoryPage{wire::runs_array(page.runs, now_ms()), page.next_cursor, {}});
  cached->instance_ids.reserve(page.runs.size());
  for (const Run& run : page.runs) cached->instance_ids.push_back(run.instance_id);

  std::lock_guard lock(mutex_);
  if (entries_.size() >= max_entries_) entries_.clear();
  // Stored under the generation seen before the read: if an invalidation
  // came in meanwhile, this entry is already stale and will be read again.
  entries_[key] = Entry{generation, now, cached};
  return cached;
}

void leave_out_ended(std::vector<Run>& active, const CachedHistoryPage& page) {
  if (page.instance_ids.empty()) return;
  std::erase_if(active, [&](const Run& run) {
    return std::find(page.instance_ids.begin(), page.instance_ids.end(), run.instance_id) !=
           page.instance_ids.end();
  });
}

}  // namespace nightshift::api
