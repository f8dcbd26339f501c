#include "store/history_cursor.hpp"

#include <boost/json.hpp>
#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/uuid.hpp>
#include <stdexcept>

#include "store/run_store.hpp"

namespace nightshift::store {

namespace {

constexpr std::int64_t kCursorVersion = 1;
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int alphabet_index(char c) {
  const auto pos = kAlphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::int64_t require_int(const boost::json::object& payload, std::string_view name) {
  const auto* value = payload.if_contains(name);
  if (value == nullptr || !value->is_int64()) throw InvalidCursor("cursor payload is malformed");
  return value->get_int64();
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : bytes) {
    buffer = (buffer << 8) | static_cast<std::uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3F]);
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const int value = alphabet_index(c);
    if (value < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  // Canonical form only: the unused low bits of the last character are zero.
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

HistoryCursorCodec::HistoryCursorCodec(std::string_view key_hex) {
  if (key_hex.size() != key_.size() * 2) throw std::runtime_error("store cursor key is malformed");
  for (std::size_t i = 0; i < key_.size(); ++i) {
    const int high = hex_value(key_hex[2 * i]);
    const int low = hex_value(key_hex[2 * i + 1]);
    if (high < 0 || low < 0) throw std::runtime_error("store cursor key is malformed");
    key_[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
}

std::string HistoryCursorCodec::tag(std::string_view payload, const HistoryFilters& filters) const {
  boost::uuids::uuid key_uuid{};
  std::copy(key_.begin(), key_.end(), key_uuid.begin());
  boost::uuids::name_generator_sha1 generate(key_uuid);
  // Each part is length-prefixed so that no two different inputs collide.
  std::string input;
  const auto add = [&input](std::string_view part) {
    input += std::to_string(part.size());
    input += ':';
    input += part;
  };
  add(payload);
  add(filters.status ? "s" + *filters.status : "-");
  add(filters.agent_id ? "a" + *filters.agent_id : "-");
  const boost::uuids::uuid digest = generate(input.data(), input.size());
  return std::string(digest.begin(), digest.end());
}

std::string HistoryCursorCodec::encode(const HistoryPosition& position,
                                       const HistoryFilters& filters) const {
  const std::string payload = boost::json::serialize(boost::json::object{
      {"v", kCursorVersion}, {"e", position.ended_at_ms}, {"i", position.run_id}});
  return base64url_encode(payload) + "." + base64url_encode(tag(payload, filters));
}

HistoryPosition HistoryCursorCodec::decode(std::string_view cursor,
                                           const HistoryFilters& filters) const {
  const auto dot = cursor.find('.');
  if (cursor.size() > 512 || dot == std::string_view::npos) {
    throw InvalidCursor("cursor is not one this server made");
  }
  const auto payload = base64url_decode(cursor.substr(0, dot));
  const auto given_tag = base64url_decode(cursor.substr(dot + 1));
  if (!payload || !given_tag || *given_tag != tag(*payload, filters)) {
    throw InvalidCursor("cursor is not one this server made for this query");
  }
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(*payload, ec);
  if (ec || !parsed.is_object()) throw InvalidCursor("cursor payload is malformed");
  const auto& object = parsed.get_object();
  if (require_int(object, "v") != kCursorVersion) {
    throw InvalidCursor("cursor version is not supported");
  }
  return HistoryPosition{require_int(object, "e"), require_int(object, "i")};
}

}  // namespace nightshift::store
