// Text from agents is bytes; what the host stores and serves is JSON, whose
// strings must be UTF-8. An agent's log message or error that is not valid
// UTF-8 is cleaned at the boundary, each invalid sequence replaced by U+FFFD,
// so one agent cannot make a run's record or log unreadable to clients.
#pragma once

#include <string>
#include <string_view>

namespace nightshift {

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates, or
// code points past U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

// `text` with every invalid sequence replaced by U+FFFD; `text` itself when
// it is valid.
std::string to_valid_utf8(std::string_view text);

}  // namespace nightshift
