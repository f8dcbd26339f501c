// The small params schema of agent.json (agents.md): checking a schema,
// taking its defaults, merging params, and validating params against it.
//
// A schema is an object of param name -> spec, where a spec is an object
// with "type" (string, number, integer, boolean, object, array) and
// optionally "default", "description", "enum" (an array) and "required".
//
// Pure functions of their arguments; safe from any thread.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace nightshift {

// The param every agent accepts, whatever its schema says.
inline constexpr std::string_view instructions_param = "instructions";

// Checks that `schema` is well formed (known types, defaults and enums that
// fit them, no number that is not finite anywhere). Returns why not, naming
// the param, or nothing when it is fine.
std::optional<std::string> check_schema(const boost::json::object& schema);

// The first number anywhere inside `value` (nested objects and arrays too)
// that JSON cannot carry: an infinity or a NaN, which Boost.JSON makes of a
// literal beyond a double's range such as 1e400 or a 400-digit integer, and
// which serializes to text no JSON parser reads back. Returns why, naming
// its path from `path` ("params.options.limits[2] is not a finite number"),
// or nothing. Walks without recursion, so any depth is safe.
std::optional<std::string> find_non_finite_number(const boost::json::value& value,
                                                  std::string_view path);

// `path` followed by the member `key`: "params.seconds", or
// params["odd key"] for a key that is not a plain name.
std::string member_path(std::string_view path, std::string_view key);

// The defaults the schema declares, plus "instructions" (its declared
// default, else ""), which every agent's params contain.
boost::json::object schema_defaults(const boost::json::object& schema);

// Merges `overrides` into `target`: objects merge key by key (recursively),
// everything else is replaced.
void merge_params(boost::json::object& target, const boost::json::object& overrides);

// The first param of `params` that neither the schema nor "instructions"
// knows, if any.
std::optional<std::string> find_unknown_param(const boost::json::object& schema,
                                              const boost::json::object& params);

// Checks every value of `params` against the schema (type, enum), turning an
// integral number given for an integer param into an integer, and refuses a
// number that is not finite anywhere in `params` (nested values and params
// the schema does not declare included). Returns why not, naming the param,
// or nothing when all fit.
std::optional<std::string> check_param_values(const boost::json::object& schema,
                                              boost::json::object& params);

// check_param_values, then every `required` param must be present.
std::optional<std::string> check_start_params(const boost::json::object& schema,
                                              boost::json::object& params);

// The names a schema accepts, "seconds, failWith, instructions": for messages.
std::string accepted_params(const boost::json::object& schema);

}  // namespace nightshift
