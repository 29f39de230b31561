#include "security/acl_set.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::security {
namespace {

using ::testing::HasSubstr;

AclRule Rule(std::string_view principal, std::string_view resource,
             std::string_view operations) {
  auto rule = ParseAclRule(principal, resource, operations);
  EXPECT_TRUE(rule.ok()) << rule.status();
  return rule.ok() ? *rule : AclRule{};
}

Resource Topic(std::string name) { return {.kind = ResourceKind::kTopic, .name = name}; }
Resource Group(std::string name) { return {.kind = ResourceKind::kGroup, .name = name}; }

TEST(AclRule, ParsesAndPrintsBack) {
  AclRule rule = Rule("tenant-a", "topic:a.*", "publish, describe");
  EXPECT_EQ(rule.ToString(), "tenant-a topic:a.* publish,describe");
  EXPECT_EQ(Rule("*", "cluster", "all").ToString(),
            "* cluster publish,subscribe,describe,seek,pause,admin");
}

TEST(AclRule, BadPartsAreNamed) {
  EXPECT_THAT(std::string(ParseAclRule("a b", "admin", "admin").status().message()),
              HasSubstr("principal: \"a b\""));
  EXPECT_THAT(std::string(ParseAclRule("a", "queue:x", "admin").status().message()),
              HasSubstr("resource: \"queue:x\" is not topic:GLOB"));
  EXPECT_THAT(std::string(ParseAclRule("a", "topic:", "admin").status().message()),
              HasSubstr("needs a glob"));
  EXPECT_THAT(std::string(ParseAclRule("a", "admin", "write").status().message()),
              HasSubstr("operations: \"write\" is not one of"));
  EXPECT_THAT(std::string(ParseAclRule("a", "admin", "").status().message()),
              HasSubstr("operations: none given"));
}

TEST(AclSet, DeniesWhatNoRuleAllows) {
  AclSet acl({Rule("tenant-a", "topic:a.*", "publish,subscribe"),
              Rule("tenant-a", "group:a-*", "subscribe,seek"),
              Rule("*", "cluster", "describe")});
  EXPECT_TRUE(acl.Allows("tenant-a", Operation::kPublish, Topic("a.orders")));
  EXPECT_FALSE(acl.Allows("tenant-a", Operation::kPublish, Topic("b.orders")));
  EXPECT_FALSE(acl.Allows("tenant-b", Operation::kPublish, Topic("a.orders")));
  EXPECT_FALSE(acl.Allows("tenant-a", Operation::kDescribe, Topic("a.orders")));
  EXPECT_TRUE(acl.Allows("tenant-a", Operation::kSeek, Group("a-billing")));
  EXPECT_FALSE(acl.Allows("tenant-a", Operation::kPause, Group("a-billing")));
  // A topic glob says nothing about groups of the same name.
  EXPECT_FALSE(acl.Allows("tenant-a", Operation::kSubscribe, Group("a.orders")));
  EXPECT_TRUE(
      acl.Allows("anyone", Operation::kDescribe, {.kind = ResourceKind::kCluster}));
  EXPECT_FALSE(acl.Allows("anyone", Operation::kAdmin, {.kind = ResourceKind::kCluster}));
  EXPECT_FALSE(AclSet().Allows("tenant-a", Operation::kDescribe,
                               {.kind = ResourceKind::kCluster}));
}

}  // namespace
}  // namespace ferry::security
