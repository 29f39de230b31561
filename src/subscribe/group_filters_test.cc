#include "subscribe/group_filters.h"

#include <gtest/gtest.h>

namespace ferry::subscribe {
namespace {

filter::Filter Parse(std::string_view text) { return *filter::Filter::Parse(text); }

backend::ConsumedRecord Record(std::string key, std::string value = "{}",
                               std::vector<backend::HeaderView> headers = {}) {
  return backend::Owned(
      {.topic = "orders", .key = key, .value = value, .headers = std::move(headers)});
}

class GroupFiltersTest : public ::testing::Test {
 protected:
  double Rendered(std::string_view series) {
    const std::string text = registry_.Render();
    const size_t at = text.find(series);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 1));
  }

  metrics::Registry registry_;
  GroupMetrics metrics_{&registry_, "g"};
  GroupFilters filters_{&metrics_};
};

TEST_F(GroupFiltersTest, WithoutFiltersEveryRecordIsWanted) {
  EXPECT_TRUE(filters_.Wanted(Record("a")));
  filters_.AddStream(1, {}, "");
  EXPECT_TRUE(filters_.Wanted(Record("a")));
  EXPECT_TRUE(filters_.WantedBy(1, Record("a")));
}

TEST_F(GroupFiltersTest, ARecordIsWantedWhenSomeStreamsFilterMatches) {
  filters_.AddStream(1, Parse("key = 'a'"), "key = 'a'");
  filters_.AddStream(2, Parse("headers.t = 'x'"), "headers.t = 'x'");
  EXPECT_FALSE(filters_.streams_agree());
  EXPECT_TRUE(filters_.Wanted(Record("a")));
  EXPECT_TRUE(filters_.Wanted(Record("b", "", {{"t", "x"}})));
  EXPECT_FALSE(filters_.Wanted(Record("b")));
  EXPECT_TRUE(filters_.WantedBy(1, Record("a")));
  EXPECT_FALSE(filters_.WantedBy(2, Record("a")));
  EXPECT_FALSE(filters_.WantedBy(3, Record("a"))) << "unknown stream";

  EXPECT_TRUE(filters_.RemoveStream(2)) << "its filter is gone";
  EXPECT_TRUE(filters_.streams_agree());
  EXPECT_FALSE(filters_.Wanted(Record("b", "", {{"t", "x"}})));
}

TEST_F(GroupFiltersTest, StreamsWithTheSameFilterAgree) {
  filters_.AddStream(1, Parse("key = 'a'"), "key = 'a'");
  filters_.AddStream(2, Parse("key = 'a'"), "key = 'a'");
  EXPECT_TRUE(filters_.streams_agree());
  EXPECT_FALSE(filters_.RemoveStream(1)) << "stream 2 has the same filter";
  EXPECT_FALSE(filters_.Wanted(Record("b")));
  EXPECT_TRUE(filters_.RemoveStream(2));
  EXPECT_TRUE(filters_.Wanted(Record("b"))) << "no stream: only the group filter decides";
}

TEST_F(GroupFiltersTest, TheGroupFilterAndAStreamFilterMustBothMatch) {
  filters_.SetGroupFilter(Parse("json.n > 1"), "json.n > 1");
  EXPECT_FALSE(filters_.Wanted(Record("a", R"({"n": 1})")));
  EXPECT_TRUE(filters_.Wanted(Record("a", R"({"n": 2})")));
  filters_.AddStream(1, Parse("key = 'a'"), "key = 'a'");
  EXPECT_FALSE(filters_.Wanted(Record("b", R"({"n": 2})")));
  EXPECT_TRUE(filters_.Wanted(Record("a", R"({"n": 2})")));
  filters_.SetGroupFilter({}, "");
  EXPECT_TRUE(filters_.Wanted(Record("a", R"({"n": 1})")));
}

TEST_F(GroupFiltersTest, ValuesThatAreNotJsonAreCounted) {
  filters_.SetGroupFilter(Parse("json.n = 1"), "json.n = 1");
  EXPECT_FALSE(filters_.Wanted(Record("a", "plain text")));
  EXPECT_FALSE(filters_.Wanted(Record("a", R"({"m": 1})")));
  EXPECT_EQ(Rendered("ferry_subscribe_filter_errors_total{group=\"g\"}"), 2);
}

TEST_F(GroupFiltersTest, EvaluationTimeIsSampled) {
  filters_.SetGroupFilter(Parse("key = 'a'"), "key = 'a'");
  for (int i = 0; i < 640; ++i) filters_.Wanted(Record("a"));
  EXPECT_EQ(Rendered("ferry_subscribe_filter_eval_seconds_count{group=\"g\"}"), 10);
}

}  // namespace
}  // namespace ferry::subscribe
