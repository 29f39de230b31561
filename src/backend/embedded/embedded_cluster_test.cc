#include "backend/embedded/embedded_cluster.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "testing/test_dir.h"

namespace ferry::backend::embedded {
namespace {

using ::ferry::testing::TestDir;

using ::testing::HasSubstr;

// Collects Publish outcomes; Wait() returns them once `count` arrived.
class Outcomes {
 public:
  PublishCallback Callback(int index) {
    return [this, index](PublishOutcome outcome) {
      absl::MutexLock lock(&mu_);
      outcomes_[index] = std::move(outcome);
      threads_.insert(std::this_thread::get_id());
    };
  }
  std::map<int, PublishOutcome> Wait(size_t count) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return outcomes_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(20));
    return outcomes_;
  }
  bool RanOn(std::thread::id thread) {
    absl::MutexLock lock(&mu_);
    return threads_.contains(thread);
  }

 private:
  absl::Mutex mu_;
  std::map<int, PublishOutcome> outcomes_ ABSL_GUARDED_BY(mu_);
  std::set<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<EmbeddedCluster> OpenCluster(const std::string& path,
                                             EmbeddedCluster::Durability durability) {
  auto cluster = EmbeddedCluster::Open(
      "local",
      {.path = path, .durability = durability, .group_commit = absl::Milliseconds(5)});
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

class EmbeddedClusterTest : public ::testing::TestWithParam<EmbeddedCluster::Durability> {
 protected:
  TestDir dir_;
};

TEST_P(EmbeddedClusterTest, PublishAcknowledgesOnABackendThreadInCallOrderPerKey) {
  auto cluster = OpenCluster(dir_.path(), GetParam());
  ASSERT_TRUE(cluster->CreateTopic("orders", 4, 1, {}).ok());
  Outcomes outcomes;
  constexpr int kRecords = 300;
  for (int i = 0; i < kRecords; ++i) {
    cluster->Publish({.topic = "orders",
                      .key = "customer-" + std::to_string(i % 3),
                      .value = std::to_string(i)},
                     outcomes.Callback(i));
  }
  std::map<int, PublishOutcome> done = outcomes.Wait(kRecords);
  ASSERT_EQ(done.size(), size_t{kRecords});
  EXPECT_FALSE(outcomes.RanOn(std::this_thread::get_id()));
  std::map<int32_t, int64_t> last_offset;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(done[i].status.ok()) << done[i].status;
    EXPECT_EQ(done[i].partition, done[i % 3].partition);  // same key, same partition
    auto [last, inserted] = last_offset.try_emplace(done[i].partition, -1);
    EXPECT_EQ(done[i].offset, last->second + 1) << "dense and in call order";
    last->second = done[i].offset;
    EXPECT_GT(done[i].timestamp_ms, 0);
  }
}

TEST_P(EmbeddedClusterTest, PublishToAnUnknownTopicFailsNotFound) {
  auto cluster = OpenCluster(dir_.path(), GetParam());
  Outcomes outcomes;
  cluster->Publish({.topic = "missing", .value = "v"}, outcomes.Callback(0));
  PublishOutcome outcome = outcomes.Wait(1)[0];
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(outcome.retryable);
}

// The mirror's placement: a record names its partition, whatever its key;
// a partition the topic lacks fails that record alone.
TEST_P(EmbeddedClusterTest, ARecordMayNameItsPartition) {
  auto cluster = OpenCluster(dir_.path(), GetParam());
  ASSERT_TRUE(cluster->CreateTopic("orders", 3, 1, {}).ok());
  Outcomes outcomes;
  for (int i = 0; i < 3; ++i) {
    cluster->Publish({.topic = "orders", .key = "same", .value = "v", .partition = i},
                     outcomes.Callback(i));
  }
  cluster->Publish({.topic = "orders", .value = "v", .partition = 3},
                   outcomes.Callback(3));
  std::map<int, PublishOutcome> done = outcomes.Wait(4);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(done[i].status.ok()) << done[i].status;
    EXPECT_EQ(done[i].partition, i);
  }
  EXPECT_EQ(done[3].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(done[3].status.message(), HasSubstr("topic orders has no partition 3"));
}

INSTANTIATE_TEST_SUITE_P(Durability, EmbeddedClusterTest,
                         ::testing::Values(EmbeddedCluster::Durability::kSync,
                                           EmbeddedCluster::Durability::kBatch),
                         [](const auto& info) {
                           return info.param == EmbeddedCluster::Durability::kSync
                                      ? "sync"
                                      : "batch";
                         });

TEST(EmbeddedCluster, IsUpAndListsItsTopics) {
  TestDir dir;
  auto cluster = OpenCluster(dir.path(), EmbeddedCluster::Durability::kSync);
  ASSERT_TRUE(cluster->CreateTopic("a", 1, 1, {}).ok());
  ASSERT_TRUE(cluster->CreateTopic("__internal", 1, 1, {}).ok());
  ClusterStatus status = cluster->Describe(/*include_topics=*/true);
  EXPECT_EQ(status.state, ClusterState::kUp);
  EXPECT_EQ(status.topics, std::vector<std::string>{"a"});
  EXPECT_EQ(cluster->type(), "embedded");
  EXPECT_EQ(cluster->bootstrap(), dir.path());
}

TEST(EmbeddedCluster, ASecondClusterOnTheSameDirectoryFailsNamingIt) {
  TestDir dir;
  auto first = OpenCluster(dir.path(), EmbeddedCluster::Durability::kSync);
  auto second = EmbeddedCluster::Open("other", {.path = dir.path()});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("clusters.other: embedded store " + dir.path()));
}

TEST(EmbeddedCluster, AlterCommittedOffsetsMovesAnInactiveGroup) {
  TestDir dir;
  auto cluster = OpenCluster(dir.path(), EmbeddedCluster::Durability::kSync);
  ASSERT_TRUE(cluster->CreateTopic("t", 1, 1, {}).ok());
  ASSERT_TRUE(cluster->AlterCommittedOffsets("g", {{{"t", 0}, 5}}).ok());
  EXPECT_EQ(cluster->CommittedOffsets("g", {"t"}).value().at({"t", 0}), 5);
  EXPECT_EQ(cluster->ListGroups().value(), std::vector<std::string>{"g"});
  EXPECT_EQ(cluster->AlterCommittedOffsets("g", {{{"missing", 0}, 5}}).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::backend::embedded
