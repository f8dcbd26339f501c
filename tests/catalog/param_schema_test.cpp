// The params schema: checking schemas, defaults, merging, validation.
#include "catalog/param_schema.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

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

}  // namespace
}  // namespace nightshift
