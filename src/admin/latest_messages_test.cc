#include "admin/latest_messages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>
#include <tuple>

#include "backend/fake_cluster.h"

namespace ferry::admin {
namespace {

using backend::ConsumedRecord;
using backend::FakeGroupMember;
using backend::TopicPartition;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;

// Partition 0 holds offsets 0..9, partition 1 offsets 5..6 (0..4 expired),
// partition 2 nothing.
class WatermarkCluster : public backend::FakeCluster {
 public:
  absl::StatusOr<backend::TopicInfo> DescribeTopic(const std::string& topic) override {
    if (topic != "orders") return absl::NotFoundError("unknown topic " + topic);
    backend::TopicInfo info{.name = topic};
    for (auto [id, low, high] : {std::tuple{0, 0, 10}, {1, 5, 7}, {2, 3, 3}}) {
      backend::PartitionInfo& p = info.partitions.emplace_back();
      p.id = id;
      p.low_watermark = low;
      p.high_watermark = high;
    }
    return info;
  }
};

ConsumedRecord At(int32_t partition, int64_t offset) {
  return {.topic = "orders",
          .partition = partition,
          .offset = offset,
          .value = "v" + std::to_string(offset),
          // Partition 1's records are older than partition 0's.
          .timestamp_ms = 1000 + offset * 10 - partition * 100};
}

// Waits for the scan's reader, whose member thread the test plays.
FakeGroupMember* AwaitReader(WatermarkCluster& cluster) {
  while (cluster.members("ferry-tail-orders").empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cluster.members("ferry-tail-orders").front();
}

TEST(LatestMessages, ReadsTheLastOffsetsOfEachPartitionWithoutAGroup) {
  WatermarkCluster cluster;
  std::map<TopicPartition, int64_t> starts;
  std::thread member_thread([&] {
    FakeGroupMember* member = AwaitReader(cluster);
    EXPECT_TRUE(member->options().standalone);
    starts = member->options().start_offsets;
    member->AssignAtStartOffsets();
    // Left out: a record before the range (a fetch may hand over a whole
    // batch starting before the fetch offset) and one published after the
    // read began; offset 9 is gone (compacted), so partition 0 ends by going
    // quiet.
    member->Deliver({At(0, 6), At(0, 7), At(0, 8), At(0, 10)});
    member->Deliver({At(1, 5), At(1, 6)});
  });
  auto records =
      LatestMessages(cluster, "orders", {.limit = 3, .quiet = absl::Milliseconds(200)});
  member_thread.join();
  ASSERT_TRUE(records.ok()) << records.status();
  // The reader starts each partition at the scan's start: no seek.
  EXPECT_EQ(starts,
            (std::map<TopicPartition, int64_t>{{{"orders", 0}, 7}, {{"orders", 1}, 5}}));
  // The 3 newest of the 4 in range, newest first.
  auto at = [](int32_t partition, int64_t offset) {
    return AllOf(Field(&ConsumedRecord::partition, partition),
                 Field(&ConsumedRecord::offset, offset));
  };
  EXPECT_THAT(*records, ElementsAre(at(0, 8), at(0, 7), at(1, 6)));
  EXPECT_TRUE(cluster.leave_commits("ferry-tail-orders").empty() ||
              cluster.leave_commits("ferry-tail-orders").front().empty());
}

TEST(LatestMessages, ReturnsWhatArrivedWhenPartitionsGoQuiet) {
  WatermarkCluster cluster;
  std::thread member_thread([&] {
    FakeGroupMember* member = AwaitReader(cluster);
    member->AssignAtStartOffsets();
    member->Deliver({At(1, 5)});  // offset 6 never comes (e.g. a transaction marker)
  });
  const absl::Time start = absl::Now();
  auto records = LatestMessages(
      cluster, "orders",
      {.limit = 5, .timeout = absl::Seconds(30), .quiet = absl::Milliseconds(200)});
  member_thread.join();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_THAT(*records, ElementsAre(Field(&ConsumedRecord::offset, 5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(LatestMessages, EmptyTopicsNeedNoReaderAndBadInputIsRefused) {
  WatermarkCluster cluster;
  auto unknown = LatestMessages(cluster, "missing");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  for (int limit : {0, kMaxLatestMessages + 1}) {
    auto refused = LatestMessages(cluster, "orders", {.limit = limit});
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << limit;
    EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("limit"));
  }
  EXPECT_TRUE(cluster.members("ferry-tail-orders").empty());
}

}  // namespace
}  // namespace ferry::admin
