#include "admin_http/path_router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::admin_http {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

TEST(PathRouter, GenericRouteCallsTheNamedMethod) {
  PathLookup lookup = LookUpPath("POST", "/api/v1/admin/ListTopics");
  ASSERT_TRUE(lookup.match.has_value());
  EXPECT_EQ(lookup.match->method, "ListTopics");
  EXPECT_THAT(lookup.match->path_fields, IsEmpty());
  EXPECT_EQ(lookup.match->body_field, "");
}

TEST(PathRouter, GenericRouteTakesOnlyPost) {
  PathLookup lookup = LookUpPath("GET", "/api/v1/admin/ListTopics");
  EXPECT_FALSE(lookup.match.has_value());
  EXPECT_THAT(lookup.allowed_verbs, ElementsAre("POST"));
}

TEST(PathRouter, GenericRouteNeedsExactlyOneMethodSegment) {
  for (std::string_view path :
       {"/api/v1/admin/", "/api/v1/admin/ListTopics/", "/api/v1/admin/a/b"}) {
    PathLookup lookup = LookUpPath("POST", path);
    EXPECT_FALSE(lookup.match.has_value()) << path;
    EXPECT_THAT(lookup.allowed_verbs, IsEmpty()) << path;
  }
}

TEST(PathRouter, ResourceRoutesFillFieldsFromThePath) {
  struct Case {
    std::string_view verb, path, method;
    QueryParams fields;
    std::string_view body_field = {};
  };
  const Case cases[] = {
      {"GET", "/api/v1/nodes", "ListNodes", {}},
      {"GET", "/api/v1/clusters", "ListClusters", {}},
      {"GET", "/api/v1/topics", "ListTopics", {}},
      {"POST", "/api/v1/topics", "CreateTopic", {}},
      {"GET", "/api/v1/topics/orders.eu", "DescribeTopic", {{"name", "orders.eu"}}},
      {"DELETE", "/api/v1/topics/orders.eu", "DeleteTopic", {{"name", "orders.eu"}}},
      {"GET",
       "/api/v1/topics/orders.eu/messages",
       "ListLatestMessages",
       {{"name", "orders.eu"}}},
      {"GET", "/api/v1/groups", "ListGroups", {}},
      {"GET", "/api/v1/groups/billing", "DescribeGroup", {{"group", "billing"}}},
      {"POST", "/api/v1/groups/billing/seek", "Seek", {{"group", "billing"}}},
      {"POST", "/api/v1/groups/billing/pause", "PauseGroup", {{"group", "billing"}}},
      {"POST", "/api/v1/groups/billing/resume", "ResumeGroup", {{"group", "billing"}}},
      {"GET", "/api/v1/routes", "ListRoutes", {}},
      {"PUT", "/api/v1/routes", "PutRoute", {}, "route"},
      {"DELETE", "/api/v1/routes/orders.*", "DeleteRoute", {{"topic", "orders.*"}}},
      {"GET", "/api/v1/mirrors", "ListMirrors", {}},
      {"POST", "/api/v1/mirrors", "StartMirror", {}, "job"},
      {"GET", "/api/v1/migrations", "ListMigrations", {}},
      {"POST", "/api/v1/migrations", "StartMigration", {}},
      {"GET", "/api/v1/migrations/orders", "GetMigration", {{"topic", "orders"}}},
      {"POST",
       "/api/v1/migrations/orders/advance",
       "AdvanceMigration",
       {{"topic", "orders"}}},
      {"POST",
       "/api/v1/migrations/orders/rollback",
       "RollbackMigration",
       {{"topic", "orders"}}},
  };
  for (const Case& c : cases) {
    PathLookup lookup = LookUpPath(c.verb, c.path);
    ASSERT_TRUE(lookup.match.has_value()) << c.verb << " " << c.path;
    EXPECT_EQ(lookup.match->method, c.method) << c.path;
    EXPECT_EQ(lookup.match->path_fields, c.fields) << c.path;
    EXPECT_EQ(lookup.match->body_field, c.body_field) << c.path;
  }
}

TEST(PathRouter, KnownPathWithAnotherVerbListsTheAllowedOnes) {
  PathLookup lookup = LookUpPath("PUT", "/api/v1/topics/orders");
  EXPECT_FALSE(lookup.match.has_value());
  EXPECT_THAT(lookup.allowed_verbs, UnorderedElementsAre("GET", "DELETE"));

  lookup = LookUpPath("DELETE", "/api/v1/groups/billing/pause");
  EXPECT_THAT(lookup.allowed_verbs, ElementsAre("POST"));
}

TEST(PathRouter, UnknownPathsMatchNothing) {
  for (std::string_view path :
       {"", "/", "/api/v1", "/api/v1/", "/api/v1/topic", "/api/v1/topics/",
        "/api/v1/topics//", "/api/v1/topics/a/b", "/api/v2/topics", "api/v1/topics",
        "/api/v1/groups//seek", "/api/v1/groups/g/rewind"}) {
    PathLookup lookup = LookUpPath("GET", path);
    EXPECT_FALSE(lookup.match.has_value()) << path;
    EXPECT_THAT(lookup.allowed_verbs, IsEmpty()) << path;
  }
}

TEST(PathRouter, PatternFieldsAreTheBracedSegments) {
  EXPECT_THAT(PatternFields("/api/v1/groups/{group}/seek"), ElementsAre("group"));
  EXPECT_THAT(PatternFields("/api/v1/topics"), IsEmpty());
  EXPECT_THAT(PatternFields("/a/{x}/{y}"), ElementsAre("x", "y"));
}

TEST(PathRouter, EveryResourceRouteMatchesItsOwnPattern) {
  for (const ResourceRoute& route : ResourceRoutes()) {
    PathLookup lookup = LookUpPath(route.verb, route.pattern);
    ASSERT_TRUE(lookup.match.has_value()) << route.pattern;
    EXPECT_EQ(lookup.match->method, route.method) << route.pattern;
    EXPECT_EQ(lookup.match->path_fields.size(), PatternFields(route.pattern).size());
  }
}

}  // namespace
}  // namespace ferry::admin_http
