#include "routing/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(GlobMatch, StarAndQuestionMark) {
  EXPECT_TRUE(GlobMatch("orders.*", "orders.eu"));
  EXPECT_TRUE(GlobMatch("orders.*", "orders."));
  EXPECT_FALSE(GlobMatch("orders.*", "orders"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("a*b*c", "axxbyyc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "axxbyy"));
  EXPECT_TRUE(GlobMatch("t?", "t1"));
  EXPECT_FALSE(GlobMatch("t?", "t12"));
  EXPECT_TRUE(GlobMatch("exact", "exact"));
  EXPECT_FALSE(GlobMatch("exact", "exactly"));
}

config::RouteConfig R(std::string topic, std::vector<std::string> write,
                      std::vector<std::string> read = {}) {
  return {.topic = std::move(topic), .write = std::move(write), .read = std::move(read)};
}

TEST(Router, MostSpecificRouteWins) {
  Router router({R("*", {"a"}), R("orders.*", {"b"}), R("orders.eu.*", {"c"}),
                 R("orders.eu.vip", {"d"})},
                {"a", "b", "c", "d"});
  EXPECT_THAT(router.Resolve("payments")->write, ElementsAre("a"));
  EXPECT_THAT(router.Resolve("orders.us")->write, ElementsAre("b"));
  EXPECT_THAT(router.Resolve("orders.eu.x")->write, ElementsAre("c"));
  EXPECT_THAT(router.Resolve("orders.eu.vip")->write, ElementsAre("d"));
}

TEST(Router, ReadDefaultsToTheWriteList) {
  Router router({R("t", {"a", "b"})}, {"a", "b"});
  EXPECT_THAT(router.Resolve("t")->read, ElementsAre("a", "b"));
  Router dual({R("t", {"b"}, {"a", "b"})}, {"a", "b"});
  EXPECT_THAT(dual.Resolve("t")->read, ElementsAre("a", "b"));
}

TEST(Router, UnroutedTopicUsesTheOnlyCluster) {
  Router router({}, {"main"});
  auto route = router.Resolve("anything");
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_THAT(route->write, ElementsAre("main"));
}

TEST(Router, UnroutedTopicWithSeveralClustersIsNotFound) {
  Router router({R("orders.*", {"a"})}, {"a", "b"});
  auto route = router.Resolve("payments");
  ASSERT_FALSE(route.ok());
  EXPECT_EQ(route.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(route.status().message()),
              HasSubstr("no route for topic \"payments\""));
}

}  // namespace
}  // namespace ferry::routing
