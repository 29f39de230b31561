// What KafkaCluster's producer asks the broker when it meets many topics at
// once, against a real broker (librdkafka's mock creates any topic a
// Metadata request names, so it cannot show a missing one).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backend/kafka/kafka_cluster.h"
#include "testing/kafka_broker.h"

namespace ferry::backend::kafka {
namespace {

// The Metadata requests the cluster's producer (client.id ferryd-main) has
// sent, from librdkafka's statistics: the "req" map of each broker. The
// statistics callback has no opaque of its own (the cluster's is taken),
// hence one shared record.
class ProducerMetadataRequests {
 public:
  static int OnStatistics(rd_kafka_t* rk, char* json, size_t json_len, void*) {
    if (!std::string_view(rd_kafka_name(rk)).starts_with("ferryd-main#producer"))
      return 0;
    static const std::regex kMetadata("\"Metadata\": ([0-9]+)");
    const std::string text(json, json_len);
    int64_t sent = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), kMetadata), end; it != end;
         ++it) {
      sent += std::stoll((*it)[1].str());
    }
    absl::MutexLock lock(&mu_);
    sent_ = sent;
    ++reports_;
    return 0;  // librdkafka frees the JSON
  }

  // The count in a report made after this call (-1 if none came in 5 s).
  static int64_t SentByNextReport() {
    absl::MutexLock lock(&mu_);
    const int64_t seen = reports_;
    auto later = [seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reports_ > seen; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&later), absl::Seconds(5))) return -1;
    return sent_;
  }

 private:
  static inline absl::Mutex mu_;
  static inline int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  static inline int64_t reports_ ABSL_GUARDED_BY(mu_) = 0;
};

class StatisticsFactory final : public ClientFactory {
 public:
  absl::StatusOr<RdKafkaPtr> Create(rd_kafka_type_t type, RdKafkaConfPtr conf) override {
    char error[512];
    EXPECT_EQ(rd_kafka_conf_set(conf.get(), "statistics.interval.ms", "100", error,
                                sizeof(error)),
              RD_KAFKA_CONF_OK)
        << error;
    rd_kafka_conf_set_stats_cb(conf.get(), &ProducerMetadataRequests::OnStatistics);
    return real_.Create(type, std::move(conf));
  }

 private:
  LibrdkafkaClientFactory real_;
};

struct Published {
  PublishOutcome outcome;
  absl::Duration took;
};

// Publishes one record to each topic without waiting in between, then waits
// for every outcome.
std::vector<Published> PublishToEach(KafkaCluster& cluster,
                                     const std::vector<std::string>& topics) {
  std::vector<Published> published(topics.size());
  absl::BlockingCounter done(static_cast<int>(topics.size()));
  for (size_t i = 0; i < topics.size(); ++i) {
    const absl::Time start = absl::Now();
    cluster.Publish({.topic = topics[i], .key = "k", .value = "v"},
                    [&, i, start](PublishOutcome outcome) {
                      published[i] = {std::move(outcome), absl::Now() - start};
                      done.DecrementCount();
                    });
  }
  done.Wait();
  return published;
}

// Creates the topics four at a time (each creation waits for its leaders).
absl::Status CreateTopics(testing::KafkaBroker& broker,
                          const std::vector<std::string>& topics, int partitions) {
  absl::Mutex mu;
  absl::Status status;
  std::vector<std::thread> creators;
  for (size_t first = 0; first < 4; ++first) {
    creators.emplace_back([&, first] {
      for (size_t i = first; i < topics.size(); i += 4) {
        absl::Status created = broker.CreateTopic(topics[i], partitions);
        absl::MutexLock lock(&mu);
        status.Update(created);
      }
    });
  }
  for (std::thread& creator : creators) creator.join();
  return status;
}

// Topic names of their own for each run of a test (the broker is shared by
// the tests of this process, --gtest_repeat runs included): "<base>.<run>.".
std::string FreshPrefix(std::string_view base) {
  static std::atomic<int> runs{0};
  return fmt::format("{}.{}.", base, runs.fetch_add(1));
}

absl::StatusOr<std::unique_ptr<KafkaCluster>> StartOnSharedBroker(
    ClientFactory& factory) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  if (broker == nullptr) return absl::UnavailableError("no shared Kafka broker");
  return KafkaCluster::Start(
      config::ClusterConfig{
          .name = "main", .type = "kafka", .bootstrap = broker->bootstrap()},
      {}, factory);
}

// A record to `topic`, which does not exist, fails NOT_FOUND.
void ExpectNotFound(KafkaCluster& cluster, const std::string& topic) {
  const PublishOutcome outcome = PublishToEach(cluster, {topic}).front().outcome;
  ASSERT_EQ(outcome.status.code(), absl::StatusCode::kNotFound) << outcome.status;
}

// librdkafka 2.0.2's rd_kafka_topic_new sends one Metadata request per topic
// it does not know; behind produce traffic, 1,000 of them made librdkafka's
// broker thread spend 57-73 % of ferryd walking them (bench/RESULTS.md,
// scale5).
TEST(KafkaNewTopics, ManyNewTopicsPublishedTogetherCostAFewMetadataRequestsNotOneEach) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  constexpr int kTopics = 200;
  std::vector<std::string> topics;
  const std::string prefix = FreshPrefix("new.topics");
  for (int i = 0; i < kTopics; ++i) topics.push_back(prefix + std::to_string(i));
  const absl::Status created = CreateTopics(*broker, topics, 2);
  ASSERT_TRUE(created.ok()) << created;
  StatisticsFactory factory;
  auto cluster = StartOnSharedBroker(factory);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const int64_t before = ProducerMetadataRequests::SentByNextReport();
  ASSERT_GE(before, 0) << "no statistics from the producer";

  for (const Published& p : PublishToEach(**cluster, topics)) {
    EXPECT_TRUE(p.outcome.status.ok()) << p.outcome.status;
  }

  const int64_t sent = ProducerMetadataRequests::SentByNextReport() - before;
  std::printf("%lld Metadata requests for %d new topics\n", static_cast<long long>(sent),
              kTopics);
  EXPECT_LE(sent, kTopics / 10)
      << sent << " Metadata requests for " << kTopics << " new topics";
  EXPECT_GE(sent, 1);
}

// A topic the cluster does not have fails NOT_FOUND, not retryable, after
// librdkafka's topic.metadata.propagation.max.ms (2 s, set by KafkaCluster)
// and its next 1-s topic scan; so it does when it arrives among new topics
// that exist.
TEST(KafkaNewTopics, MissingTopicsAmongNewOnesFailNotFoundAfterThePropagationWait) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  std::vector<std::string> topics;
  std::vector<std::string> existing;
  const std::string prefix = FreshPrefix("new.mixed");
  for (int i = 0; i < 20; ++i) {
    topics.push_back(prefix + std::to_string(i));
    if (i % 4 != 0) existing.push_back(topics.back());
  }
  const absl::Status created = CreateTopics(*broker, existing, 2);
  ASSERT_TRUE(created.ok()) << created;
  StatisticsFactory factory;
  auto cluster = StartOnSharedBroker(factory);
  ASSERT_TRUE(cluster.ok()) << cluster.status();

  const std::vector<Published> published = PublishToEach(**cluster, topics);
  for (size_t i = 0; i < topics.size(); ++i) {
    const PublishOutcome& outcome = published[i].outcome;
    if (i % 4 != 0) {
      EXPECT_TRUE(outcome.status.ok()) << topics[i] << ": " << outcome.status;
      continue;
    }
    EXPECT_EQ(outcome.status.code(), absl::StatusCode::kNotFound)
        << topics[i] << ": " << outcome.status;
    EXPECT_FALSE(outcome.retryable);
    std::printf("%s failed after %s\n", topics[i].c_str(),
                absl::FormatDuration(published[i].took).c_str());
    EXPECT_GE(published[i].took, absl::Seconds(2)) << topics[i];
    EXPECT_LE(published[i].took, absl::Seconds(5)) << topics[i];
  }
}

// A topic's first record fails NOT_FOUND while the topic does not exist
// (librdkafka then keeps the topic as not existing); once the cluster
// created it, the next record is acknowledged at once (CreateTopic's
// contract), and the next new topic is learned as usual.
TEST(KafkaNewTopics,
     ATopicTheClusterCreatedAfterARecordFailedNotFoundTakesTheNextRecord) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  const std::string prefix = FreshPrefix("new.late");
  const std::string late = prefix + "created";
  const std::string next = prefix + "next";
  ASSERT_TRUE(broker->CreateTopic(next, 2).ok());
  StatisticsFactory factory;
  auto cluster = StartOnSharedBroker(factory);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_NO_FATAL_FAILURE(ExpectNotFound(**cluster, late));

  const absl::Status created = (*cluster)->CreateTopic(late, 2, 1, {});
  ASSERT_TRUE(created.ok()) << created;

  for (const Published& p : PublishToEach(**cluster, {late, next})) {
    EXPECT_TRUE(p.outcome.status.ok()) << p.outcome.status;
  }
}

// Created by someone else, the topic is known by librdkafka's next 1-s topic
// scan; until then its records fail NOT_FOUND at once.
TEST(KafkaNewTopics,
     ATopicCreatedElsewhereAfterARecordFailedNotFoundTakesRecordsWithinAScan) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  const std::string late = FreshPrefix("new.elsewhere") + "created";
  StatisticsFactory factory;
  auto cluster = StartOnSharedBroker(factory);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_NO_FATAL_FAILURE(ExpectNotFound(**cluster, late));

  const absl::Status created = broker->CreateTopic(late, 2);
  ASSERT_TRUE(created.ok()) << created;
  const absl::Time start = absl::Now();
  PublishOutcome outcome;
  int refused = 0;
  while (absl::Now() - start < absl::Seconds(3)) {
    outcome = PublishToEach(**cluster, {late}).front().outcome;
    if (outcome.status.ok()) break;
    EXPECT_EQ(outcome.status.code(), absl::StatusCode::kNotFound) << outcome.status;
    ++refused;
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::printf("acknowledged %s after the creation (%d refused before)\n",
              absl::FormatDuration(absl::Now() - start).c_str(), refused);
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
}

}  // namespace
}  // namespace ferry::backend::kafka
