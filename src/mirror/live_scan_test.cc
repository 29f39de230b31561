// ScanPartitions and an offset translation's search on a real broker while a
// producer keeps appending to the partitions they read, as the console's
// latest-messages view and a migration's translation (while the mirror
// copies) do. A scan from `from` to the end read before it must hand its
// sinks exactly the records [from, end): none before `from` and none skipped
// (a reader that starts at the end and then seeks receives records of the
// end first).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backend/fake_cluster.h"
#include "backend/kafka/kafka_cluster.h"
#include "backend/partition_scan.h"
#include "control/control_record.h"
#include "mirror/offset_translator.h"
#include "mirror/origin.h"
#include "testing/kafka_broker.h"

namespace ferry::mirror {
namespace {

using backend::ConsumedRecord;
using backend::PartitionInfo;
using backend::PartitionToScan;
using backend::RecordSink;
using backend::TopicInfo;
using backend::TopicPartition;
using backend::kafka::KafkaCluster;
using backend::kafka::LibrdkafkaClientFactory;

constexpr int kPartitions = 2;

// Writes to every partition of `topic` until destroyed: records whose value
// is their sequence number in the partition. The producer is idempotent and
// alone on the topic, so a record's offset is its sequence number. Each
// record is a mirror's copy (kOriginHeader) of source offset 2 x its
// sequence number in cluster "a": as if the odd ones were not copied.
class Appender {
 public:
  Appender(const std::string& bootstrap, const std::string& topic) : topic_(topic) {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (const auto& [key, value] :
         std::map<std::string, std::string>{{"bootstrap.servers", bootstrap},
                                            {"enable.idempotence", "true"},
                                            {"linger.ms", "2"}}) {
      EXPECT_EQ(rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof error),
                RD_KAFKA_CONF_OK)
          << error;
    }
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    EXPECT_NE(producer_, nullptr) << error;
  }
  ~Appender() {
    Stop();
    if (producer_ != nullptr) rd_kafka_destroy(producer_);
  }

  // Appends `count` records to each partition and waits until they are
  // written.
  void Append(int count) {
    for (int i = 0; i < count; ++i) {
      for (int32_t p = 0; p < kPartitions; ++p) Produce(p);
    }
    EXPECT_EQ(rd_kafka_flush(producer_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Appends in the background, `batch` records per partition every 10 ms.
  void Start(int batch) {
    thread_ = std::thread([this, batch] {
      while (!stop_.load()) {
        for (int i = 0; i < batch; ++i) {
          for (int32_t p = 0; p < kPartitions; ++p) Produce(p);
        }
        rd_kafka_poll(producer_, 10);
      }
      EXPECT_EQ(rd_kafka_flush(producer_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Produce(int32_t partition) {
    const int64_t seq = next_[partition]++;
    std::string value = std::to_string(seq);
    const std::string origin = FormatOrigin(
        {.cluster = "a", .partition = {topic_, partition}, .offset = 2 * seq});
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    do {
      err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic_.c_str()),
                              RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_VALUE(value.data(), value.size()),
                              RD_KAFKA_V_HEADER(kOriginHeader, origin.data(),
                                                static_cast<ssize_t>(origin.size())),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(producer_, 10);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  const std::string topic_;
  rd_kafka_t* producer_ = nullptr;
  std::map<int32_t, int64_t> next_;  // producing thread only
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Keeps every record it is handed as (offset, value); never done, so the
// scan ends the partition at its end.
class KeepAll final : public RecordSink {
 public:
  bool Add(const ConsumedRecord& record) override {
    absl::MutexLock lock(&mu_);
    records_.emplace_back(record.offset, std::string(record.value));
    return false;
  }
  std::vector<std::pair<int64_t, std::string>> records() const {
    absl::MutexLock lock(&mu_);
    return records_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<int64_t, std::string>> records_ ABSL_GUARDED_BY(mu_);
};

// Every offset in [from, end) with its value, the sequence number.
std::vector<std::pair<int64_t, std::string>> Range(int64_t from, int64_t end) {
  std::vector<std::pair<int64_t, std::string>> records;
  for (int64_t offset = from; offset < end; ++offset) {
    records.emplace_back(offset, std::to_string(offset));
  }
  return records;
}

// A topic of its own per run (--gtest_repeat: offsets are sequence numbers)
// on the shared broker, a KafkaCluster on it, and 2,000 records in each
// partition already.
class LiveScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::KafkaBroker* broker = testing::SharedBroker();
    ASSERT_NE(broker, nullptr);
    static std::atomic<int> runs{0};
    topic_ = fmt::format("scan.live.{}", runs.fetch_add(1));
    ASSERT_TRUE(broker->CreateTopic(topic_, kPartitions).ok());
    auto cluster = KafkaCluster::Start(
        config::ClusterConfig{
            .name = "b", .type = "kafka", .bootstrap = broker->bootstrap()},
        {}, factory_);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    appender_ = std::make_unique<Appender>(broker->bootstrap(), topic_);
    appender_->Append(2000);
    // About 2,000 records a second per partition: each scan's reader starts
    // well after the ends it reads were taken.
    appender_->Start(/*batch=*/20);
  }
  void TearDown() override {
    if (appender_ != nullptr) appender_->Stop();
  }

  std::string topic_;
  LibrdkafkaClientFactory factory_;
  std::unique_ptr<KafkaCluster> cluster_;
  std::unique_ptr<Appender> appender_;
};

constexpr int kScans = 40;

TEST_F(LiveScanTest, AScanReadsExactlyItsRange) {
  const std::string& topic = topic_;
  for (int scan = 0; scan < kScans; ++scan) {
    SCOPED_TRACE(fmt::format("scan {}", scan));
    absl::StatusOr<TopicInfo> info = cluster_->DescribeTopic(topic);
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_EQ(info->partitions.size(), static_cast<size_t>(kPartitions));
    std::map<TopicPartition, PartitionToScan> scans;
    std::map<TopicPartition, std::unique_ptr<KeepAll>> sinks;
    for (const PartitionInfo& p : info->partitions) {
      // Ranges of different lengths, down to a single record.
      const int64_t from = p.high_watermark - 1 - (scan * 97 + p.id * 300) % 1500;
      ASSERT_GE(from, 0);
      auto& sink = sinks[{topic, p.id}] = std::make_unique<KeepAll>();
      scans[{topic, p.id}] = {.end = p.high_watermark, .sink = sink.get(), .from = from};
    }
    const absl::Status scanned =
        ScanPartitions(*cluster_, "scan-live", scans, absl::Now() + absl::Seconds(30),
                       /*quiet=*/absl::Seconds(10));
    ASSERT_TRUE(scanned.ok()) << scanned;
    for (const auto& [tp, target] : scans) {
      EXPECT_EQ(sinks.at(tp)->records(), Range(*target.from, target.end))
          << tp.topic << "/" << tp.partition << " from " << *target.from << " to "
          << target.end;
    }
  }
}

// The source of the translation: the group and the mirror committed
// `committed` in every partition of the job's topic (kPartitions of them).
class SourceCluster final : public backend::FakeCluster {
 public:
  explicit SourceCluster(int64_t committed) : FakeCluster("a"), committed_(committed) {}
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string&, const std::vector<std::string>& topics) override {
    std::map<TopicPartition, int64_t> offsets;
    for (int32_t p = 0; p < kPartitions; ++p) offsets[{topics.at(0), p}] = committed_;
    return offsets;
  }
  absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) override {
    TopicInfo info{.name = topic};
    for (int32_t p = 0; p < kPartitions; ++p) info.partitions.emplace_back().id = p;
    return info;
  }

 private:
  const int64_t committed_;
};

// The search a migration's consumer stage runs on the target while the
// mirror copies: from where an earlier search stopped, the first copy of a
// source record at or after the group's offset. Target offset t holds the
// copy of source offset 2t, so a group at odd offset g resumes at (g + 1) / 2.
TEST_F(LiveScanTest, ATranslationFindsTheFirstCopyFromWhereTheEarlierSearchStopped) {
  const control::MirrorSpec job{
      .name = "live", .source = "a", .target = "b", .topics = {topic_}};
  for (int scan = 0; scan < kScans; ++scan) {
    SCOPED_TRACE(fmt::format("translation {}", scan));
    absl::StatusOr<TopicInfo> info = cluster_->DescribeTopic(topic_);
    ASSERT_TRUE(info.ok()) << info.status();
    // The group's offset and an earlier search that stopped before its copy
    // (down to right before it), near the partitions' current end.
    const int64_t end =
        std::min(info->partitions[0].high_watermark, info->partitions[1].high_watermark);
    const int64_t wanted = end - 1 - (scan * 37) % 1000;
    const int64_t group_offset = 2 * wanted - 1;
    ForwardHints hints;
    for (int32_t p = 0; p < kPartitions; ++p) {
      hints.earlier.push_back({.partition = {topic_, p},
                               .group_offset = group_offset - 2,
                               .searched_to = wanted - 1 - scan % 7});
    }
    SourceCluster source(group_offset);
    absl::StatusOr<std::vector<Translation>> translated = TranslateOffsets(
        job, "g", source, *cluster_,
        {.timeout = absl::Seconds(30), .quiet = absl::Seconds(10)}, hints);
    ASSERT_TRUE(translated.ok()) << translated.status();
    ASSERT_EQ(translated->size(), static_cast<size_t>(kPartitions));
    for (const Translation& t : *translated) {
      EXPECT_EQ(t.state, Translation::State::kTranslated) << t.partition.partition;
      EXPECT_EQ(t.target_offset, wanted) << t.partition.partition;
    }
  }
}

}  // namespace
}  // namespace ferry::mirror
