// A Kafka cluster's publish outcomes driving its circuit breaker, with
// failures injected by librdkafka's mock cluster: which errors count against
// the cluster is decided by the one error table (backend/kafka/errors.cc),
// and this checks that decision end to end, through a real producer.
#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "backend/kafka/kafka_cluster.h"
#include "metrics/registry.h"
#include "routing/cluster_breakers.h"
#include "testing/mock_cluster.h"

namespace ferry {
namespace {

using ::ferry::testing::MockKafkaCluster;

class BreakerOnMockCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mock = MockKafkaCluster::Start(1);
    ASSERT_TRUE(mock.ok()) << mock.status();
    mock_ = *std::move(mock);
    auto cluster = backend::kafka::KafkaCluster::Start(
        {.name = "main", .type = "kafka", .bootstrap = mock_->bootstrap()},
        {.publish_timeout = absl::Seconds(1)}, factory_);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    breakers_ = std::make_unique<routing::ClusterBreakers>(
        config::BreakerConfig{}, std::vector<backend::Cluster*>{cluster_.get()},
        &registry_);
  }

  // Publishes `n` records to `topic` as the publish path does (outcomes into
  // the cluster's breaker) and waits for every outcome; returns how many
  // failed.
  int Publish(const std::string& topic, int n) {
    routing::ClusterBreaker* breaker = breakers_->Find("main");
    std::atomic<int> remaining{n}, failed{0};
    absl::Notification done;
    for (int i = 0; i < n; ++i) {
      cluster_->Publish({.topic = topic, .key = std::to_string(i), .value = "v"},
                        [&](backend::PublishOutcome o) {
                          breaker->Record(1, o.counts_against_cluster ? 1 : 0, o.status);
                          if (!o.status.ok()) ++failed;
                          if (--remaining == 0) done.Notify();
                        });
    }
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    return failed;
  }

  // The mock may take a moment to serve a new topic's metadata; a few early
  // failures stay far below the breaker's minimum number of outcomes.
  bool BecomesWritable(const std::string& topic) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (Publish(topic, 1) == 0) return true;
    }
    return false;
  }

  routing::BreakerState State() { return breakers_->Find("main")->state(); }

  backend::kafka::LibrdkafkaClientFactory factory_;
  std::unique_ptr<MockKafkaCluster> mock_;
  std::unique_ptr<backend::kafka::KafkaCluster> cluster_;
  metrics::Registry registry_;
  std::unique_ptr<routing::ClusterBreakers> breakers_;
};

TEST_F(BreakerOnMockCluster, GivenRejectedMessagesTheBreakerStaysClosed) {
  ASSERT_TRUE(mock_->CreateTopic("orders", 1).ok());
  ASSERT_TRUE(BecomesWritable("orders"));
  mock_->PushRequestErrors(
      testing::kProduceApiKey,
      std::vector<rd_kafka_resp_err_t>(30, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
  int failed = 0;
  for (int i = 0; i < 30 && failed < 25; ++i) failed += Publish("orders", 1);
  EXPECT_GE(failed, 25);
  EXPECT_EQ(State(), routing::BreakerState::kClosed);
}

// A partial failure: one topic has no leader, the cluster answers
// otherwise. Its publishes time out while nothing is acknowledged, which
// counts against the cluster.
TEST_F(BreakerOnMockCluster, GivenATopicWithoutLeaderItsTimeoutsOpenTheBreaker) {
  ASSERT_TRUE(mock_->CreateTopic("orders", 1).ok());
  ASSERT_TRUE(mock_->CreateTopic("orders.broken", 1).ok());
  ASSERT_TRUE(BecomesWritable("orders.broken"));
  ASSERT_EQ(rd_kafka_mock_partition_set_leader(mock_->raw(), "orders.broken", 0, -1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(Publish("orders.broken", 25), 25);
  EXPECT_EQ(State(), routing::BreakerState::kOpen);
}

}  // namespace
}  // namespace ferry
