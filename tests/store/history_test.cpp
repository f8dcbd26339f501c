// History pages: order, ties, filters, and cursors.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "store/history_cursor.hpp"
#include "store/run_store.hpp"
#include "store_fixtures.hpp"

namespace nightshift::testing {
namespace {

struct Filter {
  std::optional<RunStatus> status;
  std::optional<std::string> agent;
};

const std::vector<Filter> kEveryFilter = {
    {std::nullopt, std::nullopt},
    {RunStatus::failed, std::nullopt},
    {std::nullopt, "installed:sleep"},
    {RunStatus::completed, "installed:echo"},
};

class HistoryTest : public ::testing::Test {
 protected:
  // 60 finished runs over two agents and three statuses, with endedAt shared
  // by groups of up to seven (ties), written in scrambled order; and some
  // active runs that history must never show.
  void SetUp() override {
    const std::vector<std::string> agents = {"installed:echo", "installed:sleep"};
    const std::vector<RunStatus> statuses = {RunStatus::completed, RunStatus::failed,
                                             RunStatus::cancelled};
    std::vector<WriteOp> ops;
    for (int i = 0; i < 60; ++i) {
      const int scrambled = (i * 37) % 60;
      nightshift::Run run = finished_run(agents[scrambled % 2], statuses[scrambled % 3],
                                         at_ms(1'000'000 + (scrambled / 7) * 1000));
      written_.push_back(run);
      ops.push_back(UpsertRun{run});
    }
    for (int i = 0; i < 5; ++i) {
      nightshift::Run active = queued_run(agents[i % 2], at_ms(2'000'000 + i));
      ops.push_back(UpsertRun{active});
    }
    fixture_.store().apply(ops);
  }

  // Expected order: newest endedAt first; among ties the later-written run
  // first (the store breaks ties by its row id, which grows with each insert).
  std::vector<std::string> expected(const Filter& filter) const {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < written_.size(); ++i) {
      const nightshift::Run& run = written_[i];
      if (filter.status && run.status != *filter.status) continue;
      if (filter.agent && run.agent_id != *filter.agent) continue;
      order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [this](std::size_t a, std::size_t b) {
      if (written_[a].ended_at != written_[b].ended_at) {
        return written_[a].ended_at > written_[b].ended_at;
      }
      return a > b;
    });
    std::vector<std::string> ids;
    for (const auto i : order) ids.push_back(written_[i].instance_id);
    return ids;
  }

  std::vector<std::string> walk(const Filter& filter, std::size_t limit) {
    std::vector<std::string> ids;
    HistoryQuery query;
    query.limit = limit;
    query.status = filter.status;
    query.agent_id = filter.agent;
    for (int pages = 0; pages < 100; ++pages) {
      const HistoryPage page = fixture_.store().list_history(query);
      EXPECT_LE(page.runs.size(), limit);
      for (const nightshift::Run& run : page.runs) {
        EXPECT_TRUE(is_terminal(run.status));
        ids.push_back(run.instance_id);
      }
      if (!page.next_cursor) break;
      EXPECT_EQ(page.runs.size(), limit) << "only a full page has a next page";
      query.cursor = page.next_cursor;
    }
    return ids;
  }

  HistoryQuery first_page_query(std::size_t limit) {
    HistoryQuery query;
    query.limit = limit;
    return query;
  }

  StoreFixture fixture_;
  std::vector<nightshift::Run> written_;
};

TEST_F(HistoryTest, OnePageIsNewestEndedFirstWithTiesInAStableOrder) {
  HistoryQuery query;
  query.limit = 500;
  const HistoryPage page = fixture_.store().list_history(query);
  std::vector<std::string> ids;
  for (const nightshift::Run& run : page.runs) ids.push_back(run.instance_id);
  EXPECT_EQ(ids, expected({}));
  EXPECT_FALSE(page.next_cursor);
}

TEST_F(HistoryTest, PagesCoverEveryRunOnceInOrderForEveryFilterAndPageSize) {
  for (const Filter& filter : kEveryFilter) {
    for (const std::size_t limit : {1u, 3u, 7u, 10u, 59u}) {
      SCOPED_TRACE("status=" + std::string(filter.status ? to_string(*filter.status) : "-") +
                   " agent=" + filter.agent.value_or("-") + " limit=" + std::to_string(limit));
      const auto ids = walk(filter, limit);
      EXPECT_EQ(ids, expected(filter));
      EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
    }
  }
}

TEST_F(HistoryTest, AnExactlyFullLastPageHasNoNextCursor) {
  const HistoryPage page = fixture_.store().list_history(first_page_query(60));
  EXPECT_EQ(page.runs.size(), 60u);
  EXPECT_FALSE(page.next_cursor);
}

TEST_F(HistoryTest, RunsFinishedAfterACursorWasMadeDoNotShiftLaterPages) {
  const HistoryPage first = fixture_.store().list_history(first_page_query(10));
  ASSERT_TRUE(first.next_cursor);
  fixture_.store().apply(
      {UpsertRun{finished_run("installed:echo", RunStatus::completed, at_ms(9'000'000))}});
  HistoryQuery next = first_page_query(10);
  next.cursor = first.next_cursor;
  const HistoryPage second = fixture_.store().list_history(next);
  const auto all = expected({});
  ASSERT_EQ(second.runs.size(), 10u);
  EXPECT_EQ(second.runs.front().instance_id, all[10]);
}

TEST_F(HistoryTest, GarbageCursorsAreRejected) {
  const HistoryPage first = fixture_.store().list_history(first_page_query(5));
  ASSERT_TRUE(first.next_cursor);
  const std::string good = *first.next_cursor;
  std::vector<std::string> bad = {"",
                                  "x",
                                  ".",
                                  "abc.def",
                                  "!!!!.????",
                                  good + "A",
                                  "A" + good,
                                  good.substr(0, good.size() - 1),
                                  std::string(600, 'A')};
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string flipped = good;
    flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
    bad.push_back(flipped);
  }
  for (const std::string& cursor : bad) {
    HistoryQuery query = first_page_query(5);
    query.cursor = cursor;
    EXPECT_THROW(fixture_.store().list_history(query), InvalidCursor) << cursor;
  }
}

TEST_F(HistoryTest, ATamperedPayloadWithTheOldTagIsRejected) {
  const HistoryPage first = fixture_.store().list_history(first_page_query(5));
  const std::string good = *first.next_cursor;
  const auto dot = good.find('.');
  const auto payload = store::base64url_decode(good.substr(0, dot));
  ASSERT_TRUE(payload);
  auto json = boost::json::parse(*payload).as_object();
  json["e"] = json["e"].as_int64() + 1;
  HistoryQuery query = first_page_query(5);
  query.cursor = store::base64url_encode(boost::json::serialize(json)) + good.substr(dot);
  EXPECT_THROW(fixture_.store().list_history(query), InvalidCursor);
}

TEST_F(HistoryTest, ACursorOnlyWorksWithTheFiltersItWasMadeFor) {
  HistoryQuery query = first_page_query(3);
  query.agent_id = "installed:echo";
  const HistoryPage first = fixture_.store().list_history(query);
  ASSERT_TRUE(first.next_cursor);
  HistoryQuery other = first_page_query(3);
  other.agent_id = "installed:sleep";
  other.cursor = first.next_cursor;
  EXPECT_THROW(fixture_.store().list_history(other), InvalidCursor);
  other.agent_id.reset();
  EXPECT_THROW(fixture_.store().list_history(other), InvalidCursor);
  query.cursor = first.next_cursor;
  EXPECT_NO_THROW(fixture_.store().list_history(query));
}

TEST_F(HistoryTest, ACursorFromAnotherDatabaseIsRejected) {
  StoreFixture other;
  for (int i = 0; i < 3; ++i) {
    other.put(finished_run("installed:echo", RunStatus::completed, at_ms(1000 + i)));
  }
  const HistoryPage page = other.store().list_history(first_page_query(1));
  ASSERT_TRUE(page.next_cursor);
  HistoryQuery query = first_page_query(1);
  query.cursor = page.next_cursor;
  EXPECT_THROW(fixture_.store().list_history(query), InvalidCursor);
}

TEST_F(HistoryTest, OutOfRangeQueriesAreRefusedNotAdjusted) {
  EXPECT_THROW(fixture_.store().list_history(first_page_query(0)), std::invalid_argument);
  EXPECT_THROW(fixture_.store().list_history(first_page_query(501)), std::invalid_argument);
  HistoryQuery active_status = first_page_query(5);
  active_status.status = RunStatus::running;
  EXPECT_THROW(fixture_.store().list_history(active_status), std::invalid_argument);
}

TEST(HistoryCursorEncoding, Base64UrlRoundTripsEveryLengthAndRejectsNonCanonicalText) {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    const std::string text = store::base64url_encode(bytes);
    EXPECT_EQ(text.find_first_of("+/="), std::string::npos);
    EXPECT_EQ(store::base64url_decode(text), bytes);
    bytes.push_back(static_cast<char>(n * 53 + 7));
  }
  EXPECT_FALSE(store::base64url_decode("A"));
  EXPECT_FALSE(store::base64url_decode("AB"));  // low bits set: not what encode writes
  EXPECT_FALSE(store::base64url_decode("a+b/"));
}

}  // namespace
}  // namespace nightshift::testing
