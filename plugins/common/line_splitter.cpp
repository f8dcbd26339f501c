#include "line_splitter.hpp"

#include <stdexcept>

namespace nightshift::plugin_common {
namespace {

constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

bool is_continuation(unsigned char byte) {
  return (byte & 0xC0) == 0x80;
}

// For a lead byte, how many bytes its sequence has and the range the second
// byte must lie in (narrower than 80..BF for E0, ED, F0, F4: those exclude
// overlong forms, surrogates and code points above U+10FFFF). Length 0: not a
// valid lead byte.
struct LeadByte {
  std::size_t length;
  unsigned char second_min;
  unsigned char second_max;
};

LeadByte classify_lead(unsigned char byte) {
  if (byte < 0x80) return {1, 0, 0};
  if (byte >= 0xC2 && byte <= 0xDF) return {2, 0x80, 0xBF};
  if (byte == 0xE0) return {3, 0xA0, 0xBF};
  if (byte == 0xED) return {3, 0x80, 0x9F};
  if (byte >= 0xE1 && byte <= 0xEF) return {3, 0x80, 0xBF};
  if (byte == 0xF0) return {4, 0x90, 0xBF};
  if (byte >= 0xF1 && byte <= 0xF3) return {4, 0x80, 0xBF};
  if (byte == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from `at` form the valid start of the sequence led by
// text[at] (the whole sequence when it is complete and valid).
std::size_t valid_prefix(std::string_view text, std::size_t at, const LeadByte& lead) {
  std::size_t n = 1;
  while (n < lead.length && at + n < text.size()) {
    const auto byte = static_cast<unsigned char>(text[at + n]);
    const bool ok =
        n == 1 ? (byte >= lead.second_min && byte <= lead.second_max) : is_continuation(byte);
    if (!ok) break;
    ++n;
  }
  return n;
}

}  // namespace

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  while (at < text.size()) {
    const LeadByte lead = classify_lead(static_cast<unsigned char>(text[at]));
    if (lead.length == 1) {
      out.push_back(text[at++]);
      continue;
    }
    if (lead.length == 0) {
      out.append(replacement_character);
      ++at;
      continue;
    }
    const std::size_t valid = valid_prefix(text, at, lead);
    if (valid == lead.length) {
      out.append(text.substr(at, valid));
    } else {
      out.append(replacement_character);
    }
    at += valid;
  }
  return out;
}

LineSplitter::LineSplitter(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {
  if (max_line_bytes_ < 4) throw std::invalid_argument("the maximum line length is below 4 bytes");
}

void LineSplitter::feed(std::string_view bytes, const Emit& emit) {
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    pending_.append(bytes.substr(0, newline));
    emit_full_pieces(emit);
    if (newline == std::string_view::npos) return;
    if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
    emit(sanitize_utf8(pending_));
    pending_.clear();
    bytes.remove_prefix(newline + 1);
  }
}

void LineSplitter::finish(const Emit& emit) {
  if (pending_.empty()) return;
  emit(sanitize_utf8(pending_));
  pending_.clear();
}

// Only pieces of a line longer than the maximum are emitted early, so a line
// of exactly the maximum length stays one entry.
void LineSplitter::emit_full_pieces(const Emit& emit) {
  while (pending_.size() > max_line_bytes_) {
    const std::size_t end = piece_end();
    emit(sanitize_utf8(std::string_view(pending_).substr(0, end)));
    pending_.erase(0, end);
  }
}

// Where to cut the first piece: at the maximum, moved back to the start of a
// UTF-8 character when the cut would fall inside one (at most 3 bytes back).
std::size_t LineSplitter::piece_end() const {
  std::size_t end = max_line_bytes_;
  while (end > max_line_bytes_ - 3 && is_continuation(static_cast<unsigned char>(pending_[end]))) {
    --end;
  }
  return is_continuation(static_cast<unsigned char>(pending_[end])) ? max_line_bytes_ : end;
}

}  // namespace nightshift::plugin_common
