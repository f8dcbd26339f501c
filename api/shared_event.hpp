// A bus event on its way to many WebSocket sessions, serialized at most once:
// by the first session that needs it, on that session's strand (not on the
// store writer thread that publishes it); every other session writes the very
// same bytes behind its own prefix (wire.hpp), never a copy.
//
// Thread safety: every member is [thread-safe]; the serialization runs once
// (std::call_once), and what it made is immutable afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events/event_bus.hpp"

namespace nightshift::api {

// A `logs` message holds at most this many entries; longer runs of entries
// are split over several messages.
inline constexpr std::size_t kLogEntriesPerMessage = 500;

using SharedBody = std::shared_ptr<const std::string>;

class SharedRunEvent {
 public:
  explicit SharedRunEvent(EventPtr event) : event_(std::move(event)) {}

  const RunEvent& event() const { return std::get<RunEvent>(*event_); }
  // The `run` message body (wire::run_event_body), made on first use.
  const SharedBody& body() const;

 private:
  EventPtr event_;
  mutable std::once_flag once_;
  mutable SharedBody body_;
};

class SharedLogEvent {
 public:
  // One `logs` message body and the entries it holds.
  struct Chunk {
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    SharedBody body;
  };

  explicit SharedLogEvent(EventPtr event) : event_(std::move(event)) {}

  const LogEvent& event() const { return std::get<LogEvent>(*event_); }
  // Every entry of the event, in `logs` message bodies of at most
  // kLogEntriesPerMessage entries, made on first use.
  const std::vector<Chunk>& chunks() const;

 private:
  EventPtr event_;
  mutable std::once_flag once_;
  mutable std::vector<Chunk> chunks_;
};

}  // namespace nightshift::api
