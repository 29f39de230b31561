#include "security/access_map.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include "ferry/v1/admin.pb.h"
#include "ferry/v1/publisher.pb.h"
#include "ferry/v1/subscriber.pb.h"

namespace ferry::security {
namespace {

std::vector<std::string> Describe(const google::protobuf::Message& request) {
  std::vector<std::string> out;
  for (const auto& [operation, resource] : RequiredAccess(request)) {
    out.push_back(std::string(OperationName(operation)) + " " + resource.ToString());
  }
  return out;
}

using Strings = std::vector<std::string>;

TEST(AccessMap, TopicAndGroupFieldsNameTheResource) {
  v1::PublishRequest publish;
  publish.set_topic("orders");
  EXPECT_EQ(Describe(publish), Strings{"publish topic:orders"});
  v1::SubscribeRequest subscribe;
  subscribe.mutable_open()->set_group("billing");
  subscribe.mutable_open()->add_topics("orders");
  subscribe.mutable_open()->add_topics("refunds");
  EXPECT_EQ(Describe(subscribe),
            (Strings{"subscribe group:billing", "subscribe topic:orders",
                     "subscribe topic:refunds"}));
  v1::SeekRequest seek;
  seek.set_group("billing");
  EXPECT_EQ(Describe(seek), Strings{"seek group:billing"});
  v1::PauseGroupRequest pause;
  pause.set_group("billing");
  EXPECT_EQ(Describe(pause), Strings{"pause group:billing"});
  v1::DescribeTopicRequest describe;
  describe.set_name("orders");
  EXPECT_EQ(Describe(describe), Strings{"describe topic:orders"});
  EXPECT_EQ(Describe(v1::ListTopicsRequest()), Strings{"describe cluster"});
  // Lists every topic's migration, like ListTopics every topic.
  v1::ListMigrationsRequest migrations;
  migrations.set_stage("consumers");
  EXPECT_EQ(Describe(migrations), Strings{"describe cluster"});
}

TEST(AccessMap, AcksOnAnOpenStreamNeedNothingMore) {
  v1::SubscribeRequest ack;
  ack.mutable_ack()->add_receipts("r");
  EXPECT_TRUE(Describe(ack).empty());
}

// Every Admin method has a mapping or falls to admin; none is open.
TEST(AccessMap, EveryAdminRequestNeedsSomething) {
  const auto* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "ferry.v1.Admin");
  ASSERT_NE(service, nullptr);
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* type = service->method(i)->input_type();
    const auto* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
    ASSERT_NE(prototype, nullptr);
    std::unique_ptr<google::protobuf::Message> request(prototype->New());
    // Pushed SDK settings are for every authenticated client.
    if (type->full_name() == "ferry.v1.GetClientConfigRequest") continue;
    EXPECT_FALSE(Describe(*request).empty()) << service->method(i)->name();
  }
  v1::PutRouteRequest put;
  EXPECT_EQ(Describe(put), Strings{"admin admin"});
  v1::GetClientConfigRequest config;
  EXPECT_EQ(Describe(config), Strings{});
  config.add_topics("orders");
  EXPECT_EQ(Describe(config), Strings{"publish topic:orders"});
}

TEST(AccessMap, ListingAclsNeedsDescribeAndChangingThemAdmin) {
  EXPECT_EQ(Describe(v1::ListAclsRequest()), Strings{"describe cluster"});
  v1::AddAclRequest add;
  add.set_resource("topic:x");
  EXPECT_EQ(Describe(add), Strings{"admin admin"});
  v1::RemoveAclRequest remove;
  remove.set_resource("topic:x");
  EXPECT_EQ(Describe(remove), Strings{"admin admin"});
}

}  // namespace
}  // namespace ferry::security
