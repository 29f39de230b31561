// A partition scan of a Kafka cluster (librdkafka's in-process mock): its
// reader assigns only the scanned partitions.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "backend/kafka/kafka_cluster.h"
#include "backend/partition_scan.h"
#include "testing/mock_cluster.h"

namespace ferry::backend::kafka {
namespace {

// Collects the values it is handed; done at the partition's last record.
class CollectingSink final : public RecordSink {
 public:
  explicit CollectingSink(int64_t last) : last_(last) {}
  bool Add(const ConsumedRecord& record) override {
    values.emplace_back(record.value);
    return record.offset >= last_;
  }
  std::vector<std::string> values;

 private:
  const int64_t last_;
};

// Before, the reader was assigned every partition of the topic and looked up
// the start position of each one not scanned: partition 1 without a leader
// held the whole assignment, and the scan of partition 0 ran to its deadline.
TEST(KafkaPartitionScanTest, AnUnscannedPartitionWithoutALeaderDoesNotHoldTheScan) {
  auto mock = testing::MockKafkaCluster::Start(1);
  ASSERT_TRUE(mock.ok()) << mock.status();
  ASSERT_TRUE((*mock)->CreateTopic("t", 2).ok());
  LibrdkafkaClientFactory factory;
  auto cluster = KafkaCluster::Start(
      config::ClusterConfig{
          .name = "main", .type = "kafka", .bootstrap = (*mock)->bootstrap()},
      {}, factory);
  ASSERT_TRUE(cluster.ok()) << cluster.status();

  // Shared with the callbacks, which may outlive a failed wait.
  struct Published {
    absl::Mutex mu;
    int count ABSL_GUARDED_BY(mu) = 0;
  };
  auto published = std::make_shared<Published>();
  for (const char* value : {"a", "b", "c"}) {
    (*cluster)->Publish({.topic = "t", .value = value, .partition = 0},
                        [published](PublishOutcome outcome) {
                          EXPECT_TRUE(outcome.status.ok()) << outcome.status;
                          absl::MutexLock lock(&published->mu);
                          ++published->count;
                        });
  }
  {
    absl::MutexLock lock(&published->mu);
    const auto all = [&published]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(published->mu) {
      return published->count == 3;
    };
    ASSERT_TRUE(published->mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(30)))
        << published->count << " of 3 publishes answered";
  }
  ASSERT_EQ(rd_kafka_mock_partition_set_leader((*mock)->raw(), "t", 1, -1),
            RD_KAFKA_RESP_ERR_NO_ERROR);

  CollectingSink sink(/*last=*/2);
  const absl::Time start = absl::Now();
  const absl::Status scanned = ScanPartitions(
      **cluster, "scan", {{{"t", 0}, {.end = 3, .sink = &sink, .from = 1}}},
      start + absl::Seconds(15), absl::Seconds(5));
  EXPECT_TRUE(scanned.ok()) << scanned;
  EXPECT_EQ(sink.values, (std::vector<std::string>{"b", "c"}));
  // A reader's start: a broker client, metadata, a fetch; the deadline is 15 s.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace ferry::backend::kafka
