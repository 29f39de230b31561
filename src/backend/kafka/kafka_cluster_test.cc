// KafkaCluster against librdkafka's in-process mock cluster: where keyless
// records of a batch land.
#include "backend/kafka/kafka_cluster.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "backend/idle_listener.h"
#include "backend/refused_member_options.h"
#include "testing/mock_cluster.h"

namespace ferry::backend::kafka {
namespace {

class KafkaClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mock = testing::MockKafkaCluster::Start(1);
    ASSERT_TRUE(mock.ok()) << mock.status();
    mock_ = *std::move(mock);
  }

  std::unique_ptr<KafkaCluster> StartCluster(KafkaCluster::Options options) {
    auto cluster = KafkaCluster::Start(
        config::ClusterConfig{
            .name = "main", .type = "kafka", .bootstrap = mock_->bootstrap()},
        options, factory_);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    return cluster.ok() ? *std::move(cluster) : nullptr;
  }

  std::unique_ptr<testing::MockKafkaCluster> mock_;
  LibrdkafkaClientFactory factory_;
};

// Partitions of the published records, in publish order.
std::vector<int32_t> PublishAll(KafkaCluster& cluster, std::vector<Record> records) {
  std::vector<int32_t> partitions(records.size(), -1);
  absl::BlockingCounter done(static_cast<int>(records.size()));
  for (size_t i = 0; i < records.size(); ++i) {
    cluster.Publish(std::move(records[i]), [&, i](PublishOutcome outcome) {
      EXPECT_TRUE(outcome.status.ok()) << outcome.status;
      partitions[i] = outcome.partition;
      done.DecrementCount();
    });
  }
  done.Wait();
  return partitions;
}

// Start offsets and chosen partitions bind only a standalone reader, start
// offsets only at 0 or more; before, a group member silently ignored them and
// a negative one meant librdkafka's logical offsets (the end, stored offsets).
TEST_F(KafkaClusterTest, JoinGroupRefusesStartOffsetsItCannotHonour) {
  ASSERT_TRUE(mock_->CreateTopic("t", 1).ok());
  std::unique_ptr<KafkaCluster> cluster = StartCluster({});
  ASSERT_NE(cluster, nullptr);
  IdleListener listener;
  for (const GroupMemberOptions& options : RefusedMemberOptions()) {
    auto refused = cluster->JoinGroup(options, &listener);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << options.group << ": " << refused.status();
  }
}

TEST_F(KafkaClusterTest, KeylessRecordsOfOneGroupShareAPartitionAndKeysKeepTheirs) {
  ASSERT_TRUE(mock_->CreateTopic("spread", 10).ok());
  std::unique_ptr<KafkaCluster> cluster = StartCluster({});
  ASSERT_NE(cluster, nullptr);

  std::vector<Record> grouped;
  for (int i = 0; i < 20; ++i) {
    grouped.push_back({.topic = "spread", .value = "v", .keyless_group = 1234567});
  }
  for (int32_t partition : PublishAll(*cluster, std::move(grouped))) {
    EXPECT_EQ(partition, 1234567 % 10);
  }

  std::vector<Record> ungrouped;
  for (int i = 0; i < 40; ++i) ungrouped.push_back({.topic = "spread", .value = "v"});
  const std::vector<int32_t> spread = PublishAll(*cluster, std::move(ungrouped));
  EXPECT_GT(std::set<int32_t>(spread.begin(), spread.end()).size(), 1u);

  // A key decides its partition whatever the group.
  const std::vector<int32_t> keyed = PublishAll(
      *cluster, {{.topic = "spread", .key = "k", .value = "v"},
                 {.topic = "spread", .key = "k", .value = "v", .keyless_group = 3},
                 {.topic = "spread", .key = "k", .value = "v", .keyless_group = 4}});
  EXPECT_EQ(keyed[1], keyed[0]);
  EXPECT_EQ(keyed[2], keyed[0]);
}

}  // namespace
}  // namespace ferry::backend::kafka
