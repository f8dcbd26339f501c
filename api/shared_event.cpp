#include "api/shared_event.hpp"

#include <algorithm>
#include <span>

#include "api/wire.hpp"

namespace nightshift::api {

const SharedBody& SharedRunEvent::body() const {
  std::call_once(once_, [this] {
    body_ = std::make_shared<const std::string>(wire::run_event_body(event(), now_ms()));
  });
  return body_;
}

const std::vector<SharedLogEvent::Chunk>& SharedLogEvent::chunks() const {
  std::call_once(once_, [this] {
    const LogEvent& log = event();
    const std::span<const LogEntry> entries(log.entries);
    for (std::size_t first = 0; first < entries.size(); first += kLogEntriesPerMessage) {
      const auto part =
          entries.subspan(first, std::min(kLogEntriesPerMessage, entries.size() - first));
      chunks_.push_back(
          Chunk{part.front().seq, part.back().seq,
                std::make_shared<const std::string>(wire::logs_body(log.instance_id, part))});
    }
  });
  return chunks_;
}

}  // namespace nightshift::api
