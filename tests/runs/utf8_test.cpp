// Agent text is cleaned to UTF-8 at the boundary: valid text passes as it
// is; every byte that starts no well-formed sequence becomes U+FFFD.
#include "model/utf8.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace nightshift {
namespace {

TEST(Utf8Test, ValidTextPassesUnchanged) {
  for (const char* text : {"", "plain", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x99\x82 ok"}) {
    EXPECT_TRUE(is_valid_utf8(text)) << text;
    EXPECT_EQ(to_valid_utf8(text), text);
  }
}

TEST(Utf8Test, InvalidSequencesBecomeReplacementCharacters) {
  EXPECT_EQ(to_valid_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(to_valid_utf8("cut \xE2\x82"), "cut \xEF\xBF\xBD\xEF\xBF\xBD");  // a sequence cut short
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong '/'
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80").size(), 12u);  // past U+10FFFF
  for (const char* text : {"a\xFF", "\xE2\x82", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    EXPECT_FALSE(is_valid_utf8(text));
  }
}

TEST(Utf8Test, CleanedTextReadsBackAsJson) {
  const std::string cleaned = to_valid_utf8("<html><bod\x8B\x8B\x8B");
  boost::system::error_code error;
  boost::json::parse(boost::json::serialize(boost::json::string(cleaned)), error);
  EXPECT_FALSE(error) << error.message();
}

}  // namespace
}  // namespace nightshift
