// What KafkaCluster's probe and its single-topic administration ask a real
// broker for (librdkafka's mock answers metadata requests differently from
// Kafka, so this needs the real one).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backend/kafka/kafka_cluster.h"
#include "testing/kafka_broker.h"

namespace ferry::backend::kafka {
namespace {

// librdkafka's metadata debug lines of every handle the cluster creates. The
// log callback has no opaque of its own (the cluster's is taken), hence one
// shared capture.
class MetadataLog {
 public:
  static void Capture(const rd_kafka_t*, int, const char*, const char* line) {
    absl::MutexLock lock(&mu_);
    lines_.emplace_back(line);
  }
  static std::vector<std::string> Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(lines_, {});
  }

 private:
  static inline absl::Mutex mu_;
  static inline std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

class MetadataLoggingFactory final : public ClientFactory {
 public:
  absl::StatusOr<RdKafkaPtr> Create(rd_kafka_type_t type, RdKafkaConfPtr conf) override {
    char error[512];
    EXPECT_EQ(rd_kafka_conf_set(conf.get(), "debug", "metadata", error, sizeof(error)),
              RD_KAFKA_CONF_OK)
        << error;
    rd_kafka_conf_set_log_cb(conf.get(), &MetadataLog::Capture);
    return real_.Create(type, std::move(conf));
  }

 private:
  LibrdkafkaClientFactory real_;
};

bool Contains(const std::string& line, const char* part) {
  return line.find(part) != std::string::npos;
}

absl::StatusOr<std::unique_ptr<KafkaCluster>> StartOnSharedBroker(
    ClientFactory& factory, absl::Duration probe_interval) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  if (broker == nullptr) return absl::UnavailableError("no shared Kafka broker");
  return KafkaCluster::Start(
      config::ClusterConfig{
          .name = "main", .type = "kafka", .bootstrap = broker->bootstrap()},
      {.probe_interval = probe_interval}, factory);
}

TEST(KafkaClusterProbe, GivenManyTopicsEachProbeAsksForOneTopicNotForAllOfThem) {
  MetadataLoggingFactory factory;
  auto cluster = StartOnSharedBroker(factory, absl::Milliseconds(100));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        (*cluster)->CreateTopic("probe.many." + std::to_string(i), 3, 1, {}).ok());
  }
  // Listing the topics is the one request that asks for them all.
  EXPECT_GE((*cluster)->Describe(/*include_topics=*/true).topics.size(), 5u);
  MetadataLog::Take();

  // The probe's answers: "(for 1 requested topics)" when it names one topic,
  // "Caching full metadata ... topic(s)" when it asked for all of them.
  int named_one = 0;
  std::vector<std::string> full;
  for (absl::Time deadline = absl::Now() + absl::Seconds(20);
       named_one < 5 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(100));
    for (const std::string& line : MetadataLog::Take()) {
      if (!Contains(line, "application requested")) continue;
      if (Contains(line, "Received metadata (for 1 requested topics)")) ++named_one;
      if (Contains(line, "Caching full metadata")) full.push_back(line);
    }
  }
  EXPECT_GE(named_one, 5);
  EXPECT_TRUE(full.empty()) << full.size() << " full answers, e.g. " << full.front();
  EXPECT_EQ((*cluster)->Status().state, ClusterState::kUp) << (*cluster)->Status().error;
}

// Creating or describing one topic must not fetch the metadata of every
// topic: creating N topics one by one would cost O(N^2).
TEST(KafkaClusterProbe, GivenManyTopicsCreatingAndDescribingOneAsksForThatTopicOnly) {
  MetadataLoggingFactory factory;
  auto cluster = StartOnSharedBroker(factory, absl::Minutes(5));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  MetadataLog::Take();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE((*cluster)->CreateTopic("admin.one." + std::to_string(i), 3, 1, {}).ok());
  }
  auto described = (*cluster)->DescribeTopic("admin.one.0");
  ASSERT_TRUE(described.ok()) << described.status();
  EXPECT_EQ(described->partitions.size(), 3u);
  EXPECT_EQ((*cluster)->DescribeTopic("admin.one.missing").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE((*cluster)->DeleteTopic("admin.one.4").ok());

  int named_one = 0;
  std::vector<std::string> full;
  for (const std::string& line : MetadataLog::Take()) {
    if (!Contains(line, "application requested")) continue;
    if (Contains(line, "Received metadata (for 1 requested topics)")) ++named_one;
    if (Contains(line, "Caching full metadata")) full.push_back(line);
  }
  EXPECT_GE(named_one, 8);  // at least one per call above
  EXPECT_TRUE(full.empty()) << full.size() << " full answers, e.g. " << full.front();
}

}  // namespace
}  // namespace ferry::backend::kafka
