// The opaque cursor of a history page: where the next page starts (the last
// run's ended_at and its row id) in a versioned payload, plus a tag that
// binds it to this database and to the page's filters. A cursor that fails
// to decode, carries an unknown version, or whose tag does not match was not
// made by next_cursor for this query and is refused.
//
// The tag is a name-based (SHA-1) UUID of the payload and filters under a
// per-database random key. It keeps clients from crafting cursors; it is not
// a security boundary (a crafted cursor could only reveal older runs, which
// the same client may list anyway).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nightshift::store {

struct HistoryPosition {
  std::int64_t ended_at_ms = 0;
  std::int64_t run_id = 0;
};

// What a cursor is bound to besides the database: the query's filters.
struct HistoryFilters {
  std::optional<std::string> status;
  std::optional<std::string> agent_id;
};

class HistoryCursorCodec {
 public:
  // `key_hex`: 32 hex digits, the database's cursor key.
  explicit HistoryCursorCodec(std::string_view key_hex);

  std::string encode(const HistoryPosition& position, const HistoryFilters& filters) const;
  // Throws InvalidCursor.
  HistoryPosition decode(std::string_view cursor, const HistoryFilters& filters) const;

 private:
  std::string tag(std::string_view payload, const HistoryFilters& filters) const;

  std::array<std::uint8_t, 16> key_{};
};

// RFC 4648 base64url without padding. Written here because none of our
// libraries has a public base64url.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace nightshift::store
