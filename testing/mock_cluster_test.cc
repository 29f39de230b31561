#include "testing/mock_cluster.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/kafka_client.h"

namespace ferry::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(MockKafkaCluster, GivenTopic_WhenRecordProduced_ThenItIsReadable) {
  absl::StatusOr<std::unique_ptr<MockKafkaCluster>> cluster = MockKafkaCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->CreateTopic("events", 1), absl::OkStatus());

  ASSERT_EQ(ProduceOne((*cluster)->bootstrap(), "events", "hello"), absl::OkStatus());

  absl::StatusOr<std::vector<std::string>> values =
      ConsumeFromBeginning((*cluster)->bootstrap(), "events", 0, 1);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_THAT(*values, ElementsAre("hello"));
}

TEST(MockKafkaCluster, GivenBrokerDown_WhenRecordProduced_ThenDeliveryTimesOut) {
  absl::StatusOr<std::unique_ptr<MockKafkaCluster>> cluster = MockKafkaCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->CreateTopic("events", 1), absl::OkStatus());
  (*cluster)->SetBrokerDown(1, true);

  absl::Status status = ProduceOne((*cluster)->bootstrap(), "events", "lost",
                                   {{"message.timeout.ms", "2000"}});

  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("_MSG_TIMED_OUT"));
}

TEST(MockKafkaCluster, GivenPushedProduceError_WhenRecordProduced_ThenItFails) {
  absl::StatusOr<std::unique_ptr<MockKafkaCluster>> cluster = MockKafkaCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->CreateTopic("events", 1), absl::OkStatus());
  (*cluster)->PushRequestErrors(kProduceApiKey,
                                {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED});

  absl::Status status = ProduceOne((*cluster)->bootstrap(), "events", "denied");

  EXPECT_THAT(status.message(), HasSubstr("TOPIC_AUTHORIZATION_FAILED"));
}

}  // namespace
}  // namespace ferry::testing
