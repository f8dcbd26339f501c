// Fuzz target: param schema validation. The input is a schema and a start's
// params, two JSON texts separated by the first newline. Checking, merging
// and validating never crash, and params that pass are storable JSON.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "catalog/param_schema.hpp"
#include "fuzz_check.hpp"

namespace json = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = text.find('\n');
  if (newline == std::string_view::npos) return 0;
  boost::system::error_code error;
  json::value schema = json::parse(text.substr(0, newline), error);
  if (error || !schema.is_object()) return 0;
  json::value request = json::parse(text.substr(newline + 1), error);
  if (error || !request.is_object()) return 0;

  if (nightshift::check_schema(schema.get_object())) return 0;
  // As Catalog::resolve does it.
  if (nightshift::find_non_finite_number(request, "params")) return 0;
  if (nightshift::find_unknown_param(schema.get_object(), request.get_object())) return 0;
  json::object params = nightshift::schema_defaults(schema.get_object());
  nightshift::merge_params(params, request.get_object());
  if (nightshift::check_start_params(schema.get_object(), params)) return 0;
  nightshift::fuzz::expect_storable(params, "validated params");
  if (!params.contains(nightshift::instructions_param) ||
      !params.at(nightshift::instructions_param).is_string()) {
    nightshift::fuzz::fail("validated params without string instructions");
  }
  (void)nightshift::accepted_params(schema.get_object());
  return 0;
}
