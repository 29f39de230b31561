#include "control/acl_grants.h"

#include <gtest/gtest.h>

#include "control/control_record.h"

namespace ferry::control {
namespace {

using security::Operation;
using security::Resource;
using security::ResourceKind;

AclGrant Grant(std::string principal, Resource resource, Operation operation,
               bool allowed = true) {
  return {.principal = std::move(principal),
          .resource = std::move(resource),
          .operation = operation,
          .allowed = allowed};
}

const Resource kOrders{.kind = ResourceKind::kTopic, .name = "orders.*"};

TEST(AclGrantRecord, RoundTripsThroughTheControlRecord) {
  for (bool allowed : {true, false}) {
    const AclGrant grant = Grant("tenant-b", kOrders, Operation::kPublish, allowed);
    EncodedRecord record = Encode(grant);
    EXPECT_EQ(record.key, "acl/tenant-b topic:orders.* publish");
    EXPECT_EQ(record.value, allowed ? "1" : "0");
    auto decoded = Decode(record.key, record.value);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(std::get<AclGrant>(*decoded), grant);
  }
  const AclGrant any =
      Grant("*", Resource{.kind = ResourceKind::kCluster}, Operation::kDescribe);
  EncodedRecord record = Encode(any);
  EXPECT_EQ(record.key, "acl/* cluster describe");
  EXPECT_EQ(std::get<AclGrant>(*Decode(record.key, record.value)), any);
}

TEST(AclGrantRecord, MalformedRecordsAreSkipped) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"acl/tenant-b topic:orders publish", "2"},
           {"acl/tenant-b topic:orders publish", ""},
           {"acl/tenant-b topic:orders", "1"},
           {"acl/tenant-b", "1"},
           {"acl/", "1"},
           {"acl/tenant-b topic: publish", "1"},
           {"acl/tenant-b queue:x publish", "1"},
           {"acl/tenant-b topic:x fly", "1"},
           // One operation per record, by its name.
           {"acl/tenant-b topic:x all", "1"},
           {"acl/tenant-b topic:x publish,describe", "1"},
           {"acl/tenant-b topic:x publish,publish", "1"},
           {"acl/tenant-b topic:x  publish", "1"},
           {"acl/tenant-b topic:x publish extra", "1"},
       }) {
    EXPECT_FALSE(Decode(key, value).has_value()) << key << " = " << value;
  }
}

TEST(AclGrants, FoldGrantsIntoOneRulePerPrincipalAndResource) {
  AclGrants grants;
  EXPECT_TRUE(grants.Apply(Grant("tenant-b", kOrders, Operation::kPublish)));
  EXPECT_TRUE(grants.Apply(Grant("tenant-b", kOrders, Operation::kDescribe)));
  EXPECT_FALSE(grants.Apply(Grant("tenant-b", kOrders, Operation::kPublish)));
  EXPECT_TRUE(grants.Apply(
      Grant("*", Resource{.kind = ResourceKind::kCluster}, Operation::kDescribe)));
  std::vector<security::AclRule> rules = grants.Rules();
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].ToString(), "* cluster describe");
  EXPECT_EQ(rules[1].ToString(), "tenant-b topic:orders.* publish,describe");
  EXPECT_EQ(grants.Operations("tenant-b", kOrders),
            (1u << static_cast<int>(Operation::kPublish)) |
                (1u << static_cast<int>(Operation::kDescribe)));
  EXPECT_EQ(grants.Operations("tenant-a", kOrders), 0u);
}

TEST(AclGrants, RevokingTheLastOperationDropsTheRule) {
  AclGrants grants;
  grants.Apply(Grant("tenant-b", kOrders, Operation::kPublish));
  EXPECT_FALSE(grants.Apply(Grant("tenant-b", kOrders, Operation::kSeek, false)));
  EXPECT_TRUE(grants.Apply(Grant("tenant-b", kOrders, Operation::kPublish, false)));
  EXPECT_TRUE(grants.Rules().empty());
  EXPECT_FALSE(grants.Apply(Grant("tenant-b", kOrders, Operation::kPublish, false)));
}

}  // namespace
}  // namespace ferry::control
