// What every fuzz target checks beyond "no crash": a value the host keeps
// must be JSON that reads back. A failed check aborts, so libFuzzer saves
// the input as a crash.
#pragma once

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "catalog/param_schema.hpp"

namespace nightshift::fuzz {

[[noreturn]] inline void fail(std::string_view what) {
  std::fprintf(stderr, "fuzz check failed: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// `value` has no number JSON cannot carry, and its text parses again.
inline void expect_storable(const boost::json::value& value, std::string_view what) {
  if (find_non_finite_number(value, "value")) fail(what);
  boost::system::error_code error;
  boost::json::parse_options deep;
  deep.max_depth = 100'000;
  (void)boost::json::parse(boost::json::serialize(value), error, {}, deep);
  if (error) fail(what);
}

}  // namespace nightshift::fuzz
