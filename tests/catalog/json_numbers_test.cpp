// Numbers checked as written in a JSON text, before Boost.JSON rounds them.
#include "catalog/json_numbers.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>

namespace nightshift {
namespace {

std::string problem(std::string_view text) {
  return find_inexact_number(text).value_or("");
}

TEST(JsonNumbers, IntegersBeyond64BitsAreRefusedNamingTheirPath) {
  // Boost.JSON alone reads this as 1.2345678901234568E29: changed, not refused.
  const std::string body = R"({"agentId": "installed:sleep", "params": {"count": )"
                           "123456789012345678901234567890}}";
  ASSERT_TRUE(boost::json::parse(body).at("params").at("count").is_double());
  EXPECT_EQ(problem(body),
            "params.count is an integer too large to carry exactly (at most 64 bits)");
  EXPECT_EQ(problem(R"({"params": {"seconds": )" + std::string(400, '9') + "}}"),
            "params.seconds is an integer too large to carry exactly (at most 64 bits)");
  EXPECT_EQ(problem(R"({"params": {"list": [1, 2, -9223372036854775809]}})"),
            "params.list[2] is an integer too large to carry exactly (at most 64 bits)");
  EXPECT_EQ(problem(R"({"params": {"odd key": [{"x": 18446744073709551616}]}})"),
            R"(params["odd key"][0].x is an integer too large to carry exactly (at most 64 bits))");
}

TEST(JsonNumbers, NumbersBeyondADoubleAreRefused) {
  EXPECT_EQ(problem(R"({"params": {"seconds": 1e400}})"), "params.seconds is not a finite number");
  EXPECT_EQ(problem(R"({"a": 1, "params": {"b": "1e400", "c": [true, null, -1.5E+999]}})"),
            "params.c[2] is not a finite number");
  EXPECT_EQ(problem("1e400"), "the document is not a finite number");
  EXPECT_EQ(problem(R"([[0], [1, 1e400]])"), "[1][1] is not a finite number");
}

TEST(JsonNumbers, NumbersJsonCarriesPass) {
  EXPECT_EQ(problem(R"({"a": 18446744073709551615, "b": -9223372036854775808, "c": 1e308,
                        "d": 1.5, "e": 1e-400, "f": 12345678901234567890.5, "g": [{}, []]})"),
            "");
  // Text that is not JSON is for the caller's own parse to report.
  EXPECT_EQ(problem(R"({"a": )"), "");
  EXPECT_EQ(problem(R"({"a": 1e400,)"), "a is not a finite number");  // read before the error
}

}  // namespace
}  // namespace nightshift
