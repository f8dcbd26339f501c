// Fuzz target: an agent.json manifest from raw bytes. Whatever the bytes,
// parse_manifest returns or throws std::runtime_error, within its size and
// depth bounds; what it accepts has a well-formed, storable schema.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "catalog/manifest.hpp"
#include "catalog/param_schema.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const nightshift::Manifest manifest = nightshift::parse_manifest(text);
    if (nightshift::check_schema(manifest.params)) nightshift::fuzz::fail("bad schema accepted");
    if (manifest.library.empty() || manifest.library.find('/') != std::string::npos) {
      nightshift::fuzz::fail("a library outside the agent's folder was accepted");
    }
    nightshift::fuzz::expect_storable(boost::json::value(manifest.params), "manifest params");
    nightshift::fuzz::expect_storable(nightshift::schema_defaults(manifest.params), "defaults");
  } catch (const std::runtime_error&) {
    // A refusal, as for any file that is not a manifest.
  }
  return 0;
}
