// Fuzz target: a remix file (YAML front matter and body) from raw bytes.
// Whatever the bytes, parse_remix returns (no crash, no hang, bounded
// memory), and what it accepts holds only JSON that reads back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "catalog/remix_file.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nightshift::RemixFile remix = nightshift::parse_remix(text, "fuzz");
  if (!remix.error) {
    nightshift::fuzz::expect_storable(boost::json::value(remix.params), "remix params");
    if (remix.base.empty()) nightshift::fuzz::fail("a remix without a base was accepted");
    if (remix.limits.timeout_seconds &&
        !(*remix.limits.timeout_seconds > 0 && *remix.limits.timeout_seconds <= 31536000)) {
      nightshift::fuzz::fail("a timeout out of range was accepted");
    }
  }
  return 0;
}
