// OptionalText, the optional string a run's record keeps its rarely set texts
// in: it behaves as the std::optional<std::string> it replaced, and its
// copies share one text.
#include "model/optional_text.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/run.hpp"

namespace nightshift {
namespace {

TEST(OptionalTextTest, UnsetByDefaultAndFromNullopt) {
  const OptionalText unset;
  EXPECT_FALSE(unset.has_value());
  EXPECT_FALSE(unset);
  EXPECT_EQ(unset, std::nullopt);
  EXPECT_EQ(OptionalText(std::nullopt), unset);
  EXPECT_EQ(unset.value_or("none"), "none");
  EXPECT_THROW(static_cast<void>(unset.value()), std::bad_optional_access);
  EXPECT_EQ(static_cast<std::optional<std::string>>(unset), std::nullopt);
  EXPECT_EQ(sizeof(OptionalText), sizeof(void*));
}

TEST(OptionalTextTest, SetFromEveryKindOfText) {
  const std::string text = "a text longer than a short string's buffer";
  for (const OptionalText& set :
       {OptionalText(text), OptionalText(text.c_str()), OptionalText(std::string_view(text)),
        OptionalText(std::optional<std::string>(text))}) {
    ASSERT_TRUE(set.has_value());
    EXPECT_TRUE(set);
    EXPECT_EQ(*set, text);
    EXPECT_EQ(set->size(), text.size());
    EXPECT_EQ(set.value(), text);
    EXPECT_EQ(set.value_or("none"), text);
    EXPECT_EQ(static_cast<std::optional<std::string>>(set), text);
  }
  EXPECT_TRUE(OptionalText(std::string()).has_value()) << "an empty text is a text";
}

TEST(OptionalTextTest, ComparesLikeAnOptionalString) {
  const OptionalText a = "a", also_a = std::string("a"), b = "b", unset;
  EXPECT_EQ(a, also_a);
  EXPECT_NE(a, b);
  EXPECT_NE(a, unset);
  EXPECT_EQ(unset, OptionalText());
  EXPECT_EQ(a, "a");
  EXPECT_EQ("a", a);
  EXPECT_NE(a, "b");
  EXPECT_NE(unset, "");
  EXPECT_EQ(a, std::string("a"));
  EXPECT_EQ(a, std::string_view("a"));
  EXPECT_EQ(a, std::optional<std::string>("a"));
  EXPECT_EQ(std::optional<std::string>("a"), a);
  EXPECT_NE(a, std::optional<std::string>());
  EXPECT_EQ(unset, std::optional<std::string>());
  EXPECT_NE(a, std::nullopt);
}

TEST(OptionalTextTest, AssigningAndResettingChangeOnlyThatCopy) {
  OptionalText first = "first";
  OptionalText copy = first;
  EXPECT_EQ(&*copy, &*first) << "a copy shares the text";
  copy = "second";
  EXPECT_EQ(first, "first");
  EXPECT_EQ(copy, "second");
  copy = std::nullopt;
  EXPECT_FALSE(copy);
  EXPECT_EQ(first, "first");
  first.reset();
  EXPECT_FALSE(first);
  EXPECT_EQ(first.emplace(3, 'x'), "xxx");
  OptionalText moved = std::move(first);
  EXPECT_EQ(moved, "xxx");
}

TEST(OptionalTextTest, ARunsCopiesShareItsTexts) {
  nightshift::Run run;
  run.error = "the disk is on fire";
  run.retry_of = std::optional<std::string>("d385fdca-0000-4000-8000-000000000000");
  const nightshift::Run copy = run;
  EXPECT_EQ(&*copy.error, &*run.error);
  EXPECT_EQ(copy.retry_of, run.retry_of);
  EXPECT_FALSE(copy.rerun_of);
  run.error = std::nullopt;
  EXPECT_EQ(copy.error, "the disk is on fire") << "a copy keeps its text";
}

// Copies of one text made and dropped on many threads at once: the count is
// atomic (run under TSan and ASan, a lost count shows as a race or a leak).
TEST(OptionalTextTest, CopiesMayLiveOnManyThreads) {
  const OptionalText shared = "shared by every thread";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&shared] {
      for (int i = 0; i < 10000; ++i) {
        OptionalText copy = shared;
        ASSERT_EQ(copy, "shared by every thread");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(shared, "shared by every thread");
}

}  // namespace
}  // namespace nightshift
