#include "admin_http/query_string.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::admin_http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(QueryString, PairsInOrderWithRepeatedNames) {
  auto params = ParseQueryString("cluster=a&topics=x&topics=y");
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_THAT(*params, ElementsAre(Pair("cluster", "a"), Pair("topics", "x"),
                                   Pair("topics", "y")));
}

TEST(QueryString, PercentEscapesAndPlusAreDecoded) {
  auto params = ParseQueryString("topic=orders.%2A&filter=a+%3D+1&%6Eame=%c3%a9");
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_THAT(*params, ElementsAre(Pair("topic", "orders.*"), Pair("filter", "a = 1"),
                                   Pair("name", "\xc3\xa9")));
}

TEST(QueryString, EmptyPartsAndMissingValues) {
  EXPECT_THAT(*ParseQueryString(""), IsEmpty());
  EXPECT_THAT(*ParseQueryString("&&"), IsEmpty());
  EXPECT_THAT(*ParseQueryString("include_topics&a=&b=1=2"),
              ElementsAre(Pair("include_topics", ""), Pair("a", ""), Pair("b", "1=2")));
}

TEST(QueryString, BadEscapesAndEmptyNamesAreRefused) {
  for (std::string_view query : {"a=%", "a=%2", "a=%zz", "%g1=1", "=1", "%=1"}) {
    auto params = ParseQueryString(query);
    EXPECT_EQ(params.status().code(), absl::StatusCode::kInvalidArgument) << query;
    EXPECT_THAT(std::string(params.status().message()), HasSubstr("query string: "));
  }
  EXPECT_THAT(std::string(ParseQueryString("a=%zz").status().message()),
              HasSubstr(R"(query string: "a=%zz": "%zz" is not a %XX escape)"));
}

}  // namespace
}  // namespace ferry::admin_http
