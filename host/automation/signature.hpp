// The webhook signature of api.md: hex of HMAC-SHA256(secret, timestamp +
// "." + body), computed with OpenSSL.
#pragma once

#include <string>
#include <string_view>

namespace nightshift {

// Lowercase hex of HMAC-SHA256(key, message).
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

// The value of X-Nightshift-Signature: "sha256=<hex>".
std::string webhook_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body);

}  // namespace nightshift
