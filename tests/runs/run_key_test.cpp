// RunKey, the key admission and the announcements keep a run's id in: a
// host's ids in 16 bytes, any other id as its text; equal exactly when the
// ids are.
#include "model/run_key.hpp"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>
#include <vector>

#include "model/run.hpp"

namespace nightshift {
namespace {

TEST(RunKeyTest, AHostsIdIsKeptCompactAndGivenBackAsItWas) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = generate_uuid();
    const RunKey key(id);
    EXPECT_TRUE(key.compact()) << id;
    EXPECT_EQ(key.text(), id);
  }
  const RunKey zeros("00000000-0000-0000-0000-000000000000");
  EXPECT_TRUE(zeros.compact());
  EXPECT_EQ(zeros.text(), "00000000-0000-0000-0000-000000000000");
  const RunKey ones("ffffffff-ffff-ffff-ffff-ffffffffffff");
  EXPECT_TRUE(ones.compact());
  EXPECT_EQ(ones.text(), "ffffffff-ffff-ffff-ffff-ffffffffffff");
  EXPECT_EQ(sizeof(RunKey), 24u);
}

TEST(RunKeyTest, AnyOtherIdIsKeptAsItsText) {
  const std::vector<std::string> others = {
      "",
      "run-1",
      "0f8fad5b-d9cb-469f-a165-70867728950E",   // upper case
      "0f8fad5bd9cb469fa16570867728950e",       // no dashes
      "0f8fad5b-d9cb-469f-a165-70867728950",    // a digit short
      "0f8fad5b-d9cb-469f-a165-70867728950ee",  // a digit long
      "0f8fad5b-d9cb-469f-a165_70867728950e",   // a dash replaced
      "0g8fad5b-d9cb-469f-a165-70867728950e",   // not hex
  };
  for (const std::string& id : others) {
    const RunKey key(id);
    EXPECT_FALSE(key.compact()) << id;
    EXPECT_EQ(key.text(), id);
  }
}

TEST(RunKeyTest, KeysAreEqualExactlyWhenTheirIdsAre) {
  const std::string lower = "0f8fad5b-d9cb-469f-a165-70867728950e";
  const std::string upper = "0F8FAD5B-D9CB-469F-A165-70867728950E";
  EXPECT_EQ(RunKey(lower), RunKey(lower));
  EXPECT_NE(RunKey(lower), RunKey(upper)) << "another spelling is another id";
  EXPECT_EQ(RunKey(upper), RunKey(upper));
  EXPECT_NE(RunKey(lower), RunKey("0f8fad5b-d9cb-469f-a165-70867728950f"));
  EXPECT_NE(RunKey("run-1"), RunKey("run-2"));
  EXPECT_EQ(RunKey("run-1"), RunKey("run-1"));
  EXPECT_NE(RunKey(""), RunKey(lower));
}

TEST(RunKeyTest, CopiesAndMovesKeepTheId) {
  const RunKey compact("0f8fad5b-d9cb-469f-a165-70867728950e");
  const RunKey other("run-7");
  RunKey copy = other;
  EXPECT_EQ(copy, other);
  EXPECT_EQ(copy.text(), "run-7");
  copy = compact;
  EXPECT_EQ(copy, compact);
  EXPECT_TRUE(copy.compact());
  RunKey moved = std::move(copy);
  EXPECT_EQ(moved.text(), "0f8fad5b-d9cb-469f-a165-70867728950e");
  moved = other;
  EXPECT_EQ(moved.text(), "run-7");
}

TEST(RunKeyTest, TenThousandIdsAreEachFoundAndOnlyThemselves) {
  std::unordered_set<RunKey, RunKey::Hash> keys;
  std::vector<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    ids.push_back(i % 10 == 0 ? "run-" + std::to_string(i) : generate_uuid());
    ASSERT_TRUE(keys.insert(RunKey(ids.back())).second) << ids.back();
  }
  for (const std::string& id : ids) EXPECT_EQ(keys.count(RunKey(id)), 1u) << id;
  EXPECT_EQ(keys.count(RunKey(generate_uuid())), 0u);
  EXPECT_EQ(keys.count(RunKey("run-10001")), 0u);
}

}  // namespace
}  // namespace nightshift
