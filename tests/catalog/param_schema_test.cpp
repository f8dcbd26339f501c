// The params schema: checking schemas, defaults, merging, validation.
#include "catalog/param_schema.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <limits>
#include <string>

namespace nightshift {
namespace {

namespace json = boost::json;

json::object object_of(std::string_view text) {
  return json::parse(text).as_object();
}

const json::object schema = object_of(R"({
  "seconds": {"type": "number", "default": 5},
  "count":   {"type": "integer"},
  "mode":    {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
  "options": {"type": "object", "default": {"color": "red", "size": 1}},
  "token":   {"type": "string", "required": true}
})");

TEST(ParamSchema, WellFormedSchemaPasses) {
  EXPECT_FALSE(check_schema(schema));
}

TEST(ParamSchema, BadSchemasAreExplained) {
  EXPECT_EQ(check_schema(object_of(R"({"a": {"type": "text"}})")).value_or(""),
            "param 'a': \"type\" must be one of string, number, integer, boolean, object, array");
  EXPECT_EQ(check_schema(object_of(R"({"a": {"type": "number", "default": "x"}})")).value_or(""),
            "the default of param 'a' must be a number, not a string");
  EXPECT_EQ(check_schema(object_of(R"({"a": {"type": "string", "enum": []}})")).value_or(""),
            "param 'a': \"enum\" must be a non-empty array");
  EXPECT_EQ(check_schema(object_of(R"({"a": 3})")).value_or(""),
            "param 'a': its spec must be an object");
}

TEST(ParamSchema, DefaultsIncludeInstructions) {
  EXPECT_EQ(schema_defaults(schema), object_of(R"({
    "seconds": 5, "mode": "fast", "options": {"color": "red", "size": 1}, "instructions": ""})"));
}

TEST(ParamSchema, ObjectsMergeKeyByKeyEverythingElseIsReplaced) {
  json::object params = object_of(R"({"options": {"color": "red", "size": 1}, "list": [1, 2]})");
  merge_params(params, object_of(R"({"options": {"size": 3}, "list": [9]})"));
  EXPECT_EQ(params, object_of(R"({"options": {"color": "red", "size": 3}, "list": [9]})"));
  merge_params(params, object_of(R"({"options": "flat"})"));
  EXPECT_EQ(params.at("options"), "flat");
}

TEST(ParamSchema, StartParamsAreCheckedWithMessagesNamingTheParam) {
  auto check = [](std::string_view text) {
    json::object params = object_of(text);
    return check_start_params(schema, params).value_or("");
  };
  EXPECT_EQ(check(R"({"token": "t", "seconds": "soon"})"),
            "param 'seconds' must be a number, not a string");
  EXPECT_EQ(check(R"({"token": "t", "count": 1.5})"),
            "param 'count' must be an integer, not a number");
  EXPECT_EQ(check(R"({"token": "t", "mode": "medium"})"),
            "param 'mode' must be one of [\"fast\",\"slow\"], not \"medium\"");
  EXPECT_EQ(check(R"({"token": "t", "instructions": 4})"),
            "param 'instructions' must be a string, not an integer");
  EXPECT_EQ(check(R"({"seconds": 1})"), "param 'token' is required");
  EXPECT_EQ(check(R"({"token": "t", "count": 2})"), "");
}

TEST(ParamSchema, IntegralNumberForAnIntegerBecomesAnInteger) {
  json::object params = object_of(R"({"token": "t", "count": 2.0})");
  EXPECT_FALSE(check_start_params(schema, params));
  EXPECT_TRUE(params.at("count").is_int64());
  EXPECT_EQ(params.at("count").as_int64(), 2);
}

TEST(ParamSchema, UnknownParamsAreFoundButInstructionsIsAlwaysKnown) {
  EXPECT_EQ(find_unknown_param(schema, object_of(R"({"instructions": "x", "speed": 1})")), "speed");
  EXPECT_FALSE(find_unknown_param(schema, object_of(R"({"instructions": "x", "count": 1})")));
}

TEST(ParamSchema, NumbersJsonCannotCarryAreRefusedNamingTheirPath) {
  auto check = [](std::string_view text) {
    json::object params = object_of(text);
    return check_start_params(schema, params).value_or("");
  };
  // Boost.JSON reads both a float and an integer beyond a double's range as
  // an infinite double, which would be stored as the non-JSON "Infinity".
  EXPECT_EQ(check(R"({"token": "t", "seconds": 1e400})"), "params.seconds is not a finite number");
  EXPECT_EQ(check(R"({"token": "t", "seconds": -1e400})"), "params.seconds is not a finite number");
  EXPECT_EQ(check(R"({"token": "t", "seconds": )" + std::string(400, '9') + "}"),
            "params.seconds is not a finite number");
  // Nested values, values the schema does not type, and instructions too.
  EXPECT_EQ(check(R"({"token": "t", "options": {"color": "red", "limits": [1, 2, 1e999]}})"),
            "params.options.limits[2] is not a finite number");
  EXPECT_EQ(check(R"({"token": "t", "options": {"odd key": {"x": 1e400}}})"),
            R"(params.options["odd key"].x is not a finite number)");
  EXPECT_EQ(check(R"({"token": "t", "instructions": 1e400})"),
            "params.instructions is not a finite number");
  // The first one written is the one named.
  EXPECT_EQ(check(R"({"token": "t", "a": [1e400], "b": 1e400})"),
            "params.a[0] is not a finite number");
  // Finite extremes are still numbers.
  EXPECT_EQ(check(R"({"token": "t", "seconds": 1.7976931348623157e308})"), "");
}

TEST(ParamSchema, NonFiniteNumberMadeInCodeIsFoundToo) {
  json::object params = object_of(R"({"token": "t", "tags": [1, {"x": 0}]})");
  params["tags"].as_array()[1].as_object()["x"] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(check_start_params(schema, params).value_or(""),
            "params.tags[1].x is not a finite number");
}

TEST(ParamSchema, IntegerTooLargeToCarryExactlyIsRefusedForAnIntegerParam) {
  json::object params = object_of(R"({"token": "t", "count": 123456789012345678901234567890})");
  EXPECT_EQ(check_start_params(schema, params).value_or(""),
            "param 'count' is an integer too large to carry exactly (beyond 2^53 it was read as "
            "an inexact number, 1.2345678901234568E29)");
  params = object_of(R"({"token": "t", "count": 9223372036854775807})");  // an int64 is exact
  EXPECT_FALSE(check_start_params(schema, params));
}

TEST(ParamSchema, SchemaWithANonFiniteDefaultOrEnumIsRefused) {
  EXPECT_EQ(check_schema(object_of(R"({"a": {"type": "number", "default": 1e400}})")).value_or(""),
            "params.a.default is not a finite number");
  EXPECT_EQ(
      check_schema(object_of(R"({"a": {"type": "number", "enum": [1, -1e400]}})")).value_or(""),
      "params.a.enum[1] is not a finite number");
  EXPECT_EQ(check_schema(object_of(R"({"a": {"type": "object", "default": {"b": [1e400]}}})"))
                .value_or(""),
            "params.a.default.b[0] is not a finite number");
}

TEST(ParamSchema, DeeplyNestedParamsAreWalkedWithoutRecursion) {
  json::value nested = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 5000; ++i) nested = json::array({std::move(nested)});
  std::string expected = "params.deep";
  for (int i = 0; i < 5000; ++i) expected += "[0]";
  EXPECT_EQ(find_non_finite_number(json::object({{"deep", std::move(nested)}}), "params"),
            expected + " is not a finite number");
}

}  // namespace
}  // namespace nightshift
