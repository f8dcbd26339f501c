#include "model/run_key.hpp"

#include <functional>

namespace nightshift {

namespace {

// The value of a lower-case hex digit; -1 for any other character.
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

constexpr std::size_t kUuidLength = 36;

bool is_dash_position(std::size_t i) noexcept {
  return i == 8 || i == 13 || i == 18 || i == 23;
}

// The 32 hex digits of a lower-case UUID, two words of 16 digits each;
// false for anything else.
bool parse_uuid(std::string_view id, std::array<std::uint64_t, 2>& words) noexcept {
  if (id.size() != kUuidLength) return false;
  std::size_t digits = 0;
  words = {};
  for (std::size_t i = 0; i < kUuidLength; ++i) {
    if (is_dash_position(i)) {
      if (id[i] != '-') return false;
      continue;
    }
    const int value = hex_value(id[i]);
    if (value < 0) return false;
    std::uint64_t& word = words[digits / 16];
    word = (word << 4) | static_cast<std::uint64_t>(value);
    ++digits;
  }
  return true;
}

}  // namespace

RunKey::RunKey(std::string_view id) {
  if (!parse_uuid(id, uuid_)) other_ = std::make_unique<const std::string>(id);
}

RunKey::RunKey(const RunKey& other)
    : uuid_(other.uuid_),
      other_(other.other_ ? std::make_unique<const std::string>(*other.other_) : nullptr) {}

RunKey& RunKey::operator=(const RunKey& other) {
  if (this != &other) *this = RunKey(other);
  return *this;
}

std::string RunKey::text() const {
  if (other_) return *other_;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(kUuidLength, '-');
  std::size_t digit = 0;
  for (std::size_t i = 0; i < kUuidLength; ++i) {
    if (is_dash_position(i)) continue;
    const std::uint64_t word = uuid_[digit / 16];
    const unsigned shift = static_cast<unsigned>(4 * (15 - digit % 16));
    text[i] = kDigits[(word >> shift) & 0xf];
    ++digit;
  }
  return text;
}

bool operator==(const RunKey& a, const RunKey& b) noexcept {
  if (a.compact() != b.compact()) return false;
  if (a.compact()) return a.uuid_ == b.uuid_;
  return *a.other_ == *b.other_;
}

std::size_t RunKey::Hash::operator()(const RunKey& key) const noexcept {
  if (!key.compact()) return std::hash<std::string>()(*key.other_);
  // A host's ids are random (UUID v4): any mix of the two words spreads them.
  return static_cast<std::size_t>(key.uuid_[0] ^ (key.uuid_[1] * 0x9e3779b97f4a7c15ULL));
}

}  // namespace nightshift
