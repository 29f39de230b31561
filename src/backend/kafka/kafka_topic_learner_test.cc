// KafkaCluster's producer under failure around new topics (a topic's first
// record goes by name and the topic learner asks for its metadata), against
// librdkafka's in-process mock cluster: shutdown while a learning round waits
// on a broker that does not answer, a fatal producer, a topic whose first
// record fails while its broker is down.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backend/kafka/kafka_cluster.h"
#include "testing/mock_cluster.h"

namespace ferry::backend::kafka {
namespace {

// Creates real handles and keeps the idempotent producers it made (the
// cluster's administration handle is not idempotent). Once Hold() was called
// it keeps a further producer (the cluster's replacement after a fatal
// error) waiting inside Create until Release().
class HoldingFactory final : public ClientFactory {
 public:
  absl::StatusOr<RdKafkaPtr> Create(rd_kafka_type_t type, RdKafkaConfPtr conf) override {
    char value[16];
    size_t size = sizeof(value);
    const bool idempotent = rd_kafka_conf_get(conf.get(), "enable.idempotence", value,
                                              &size) == RD_KAFKA_CONF_OK &&
                            std::string(value) == "true";
    if (idempotent) {
      absl::MutexLock lock(&mu_);
      if (holding_ && !producers_.empty()) {
        waiting_ = true;
        mu_.Await(absl::Condition(
            +[](bool* holding) { return !*holding; }, &holding_));
      }
    }
    auto handle = real_.Create(type, std::move(conf));
    if (handle.ok() && idempotent) {
      absl::MutexLock lock(&mu_);
      producers_.push_back(handle->get());
    }
    return handle;
  }

  void Hold() {
    absl::MutexLock lock(&mu_);
    holding_ = true;
  }
  // Whether a producer's creation waits in Hold, within `timeout`.
  bool AwaitHeld(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&waiting_), timeout);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    holding_ = false;
  }
  rd_kafka_t* first_producer() {
    absl::MutexLock lock(&mu_);
    return producers_.empty() ? nullptr : producers_.front();
  }

 private:
  LibrdkafkaClientFactory real_;
  absl::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<rd_kafka_t*> producers_ ABSL_GUARDED_BY(mu_);
};

// Outcomes of records published without waiting, in publish order.
class Outcomes {
 public:
  PublishCallback Next() {
    absl::MutexLock lock(&mu_);
    const size_t index = outcomes_.size();
    outcomes_.emplace_back();
    return [this, index](PublishOutcome outcome) {
      absl::MutexLock lock(&mu_);
      outcomes_[index] = std::move(outcome);
    };
  }
  size_t answered() {
    absl::MutexLock lock(&mu_);
    size_t answered = 0;
    for (const auto& outcome : outcomes_) answered += outcome.has_value() ? 1 : 0;
    return answered;
  }
  // Every outcome, once all are in or `timeout` passed (nullopt: unanswered).
  std::vector<std::optional<PublishOutcome>> AwaitAll(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& outcome : outcomes_) {
        if (!outcome.has_value()) return false;
      }
      return true;
    };
    mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
    return outcomes_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::optional<PublishOutcome>> outcomes_ ABSL_GUARDED_BY(mu_);
};

PublishOutcome PublishAndWait(KafkaCluster& cluster, Record record) {
  Outcomes outcomes;
  cluster.Publish(std::move(record), outcomes.Next());
  std::optional<PublishOutcome> outcome = outcomes.AwaitAll(absl::Seconds(30)).front();
  EXPECT_TRUE(outcome.has_value()) << "a publish was not answered in 30 s";
  return outcome.value_or(PublishOutcome{.status = absl::DeadlineExceededError("none")});
}

class KafkaTopicLearnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mock = testing::MockKafkaCluster::Start(1);
    ASSERT_TRUE(mock.ok()) << mock.status();
    mock_ = *std::move(mock);
  }

  // A cluster whose first probe is done. The probe runs only then: a probe
  // waiting on a stalled broker would hold shutdown for probe_timeout, which
  // is not what these tests are about.
  std::unique_ptr<KafkaCluster> StartCluster(KafkaCluster::Options options = {},
                                             Properties properties = {}) {
    options.probe_interval = absl::Hours(1);
    auto cluster =
        KafkaCluster::Start(config::ClusterConfig{.name = "main",
                                                  .type = "kafka",
                                                  .bootstrap = mock_->bootstrap(),
                                                  .properties = std::move(properties)},
                            options, factory_);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    if (!cluster.ok()) return nullptr;
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while ((*cluster)->Status().state != ClusterState::kUp && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_EQ((*cluster)->Status().state, ClusterState::kUp);
    return *std::move(cluster);
  }

  // A cluster (publish timeout 60 s) that had a record to "orders"
  // acknowledged, and so a learning round for it; "fresh" exists too.
  std::unique_ptr<KafkaCluster> StartAfterAnAcknowledgedRecord(
      absl::Duration learning_interval =
          KafkaCluster::Options{}.topic_learning_interval) {
    EXPECT_TRUE(mock_->CreateTopic("orders", 1).ok());
    EXPECT_TRUE(mock_->CreateTopic("fresh", 1).ok());
    std::unique_ptr<KafkaCluster> cluster =
        StartCluster({.publish_timeout = absl::Seconds(60),
                      .topic_learning_interval = learning_interval});
    if (cluster == nullptr) return nullptr;
    const PublishOutcome first =
        PublishAndWait(*cluster, {.topic = "orders", .value = "v"});
    EXPECT_TRUE(first.status.ok()) << first.status;
    return first.status.ok() ? std::move(cluster) : nullptr;
  }

  // What the server does at the end of its grace: fail what the brokers
  // still hold, then close the cluster. How long that took (printed).
  static absl::Duration FailPendingAndClose(std::unique_ptr<KafkaCluster> cluster,
                                            const char* when) {
    const absl::Time start = absl::Now();
    cluster->FailPendingPublishes();
    cluster.reset();
    const absl::Duration took = absl::Now() - start;
    std::printf("[ measured ] closed in %s %s\n", absl::FormatDuration(took).c_str(),
                when);
    return took;
  }

  // Records published while the broker answers nothing for 30 s (its round
  // trip; librdkafka 2.0.2's mock injects no errors or delays into Metadata
  // requests alone), publish timeout 60 s: those to "orders" are sent and
  // wait for the broker's answer; those to the new topic "fresh" wait for
  // its partitions, and the learning round the first of them asked for
  // waits for the broker.
  void PublishWhileTheBrokerStalls(KafkaCluster& cluster, Outcomes& outcomes) {
    ASSERT_EQ(rd_kafka_mock_broker_set_rtt(mock_->raw(), 1, 30'000),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    for (const char* topic : {"orders", "fresh"}) {
      for (int i = 0; i < 5; ++i) {
        cluster.Publish({.topic = topic, .key = "k", .value = "v"}, outcomes.Next());
      }
    }
  }

  // Each record failed UNAVAILABLE and retryable (purged at shutdown), none
  // acknowledged: the broker confirmed none of them.
  static void ExpectFailedRetryably(Outcomes& outcomes) {
    for (const auto& outcome : outcomes.AwaitAll(absl::ZeroDuration())) {
      ASSERT_TRUE(outcome.has_value()) << "a record was not answered at shutdown";
      EXPECT_EQ(outcome->status.code(), absl::StatusCode::kUnavailable)
          << outcome->status;
      EXPECT_TRUE(outcome->retryable) << outcome->status;
      EXPECT_FALSE(outcome->counts_against_cluster) << outcome->status;
    }
  }

  std::unique_ptr<testing::MockKafkaCluster> mock_;
  HoldingFactory factory_;
};

// A round waits at most kTopicLearningTimeout (1 s) for a broker that does
// not answer, and the cluster's close waits for the round: so it waits about
// that long (~0.7 s, what is left of the round), not for the broker (30 s).
TEST_F(KafkaTopicLearnerTest,
       CloseDuringALearningRoundOnAStalledBrokerWaitsAtMostTheRound) {
  std::unique_ptr<KafkaCluster> cluster = StartAfterAnAcknowledgedRecord();
  ASSERT_NE(cluster, nullptr);
  // Past the learning interval, so the next round starts at once.
  absl::SleepFor(absl::Milliseconds(300));

  Outcomes outcomes;
  PublishWhileTheBrokerStalls(*cluster, outcomes);
  absl::SleepFor(absl::Milliseconds(300));  // the round is waiting
  ASSERT_EQ(outcomes.answered(), 0u) << "the stalled broker answered";

  EXPECT_LT(FailPendingAndClose(std::move(cluster), "during a learning round"),
            absl::Seconds(5));
  ExpectFailedRetryably(outcomes);
}

// A round still waiting for its turn when the cluster closes does not start:
// started, it would wait 1 s for the stalled broker. Rounds are 10 s apart
// here, so the round is still waiting however slow the machine; a close that
// waited for the turn (10 s) or the round (1 s) fails the bound.
TEST_F(KafkaTopicLearnerTest, CloseDoesNotStartALearningRoundWaitingForItsTurn) {
  // "orders" had a round of its own just now, so the next one waits.
  std::unique_ptr<KafkaCluster> cluster =
      StartAfterAnAcknowledgedRecord(/*learning_interval=*/absl::Seconds(10));
  ASSERT_NE(cluster, nullptr);

  Outcomes outcomes;
  PublishWhileTheBrokerStalls(*cluster, outcomes);

  EXPECT_LT(FailPendingAndClose(std::move(cluster), "with a learning round queued"),
            absl::Milliseconds(900));
  ExpectFailedRetryably(outcomes);
}

// A producer librdkafka gave up refuses records in produceva until the
// cluster replaced it. The cause here is one librdkafka treats as fatal for
// an idempotent producer (the cluster refused its InitProducerId), made by
// rd_kafka_test_fatal_error: each record is answered at once with __FATAL's
// status (ABORTED, retryable: a new producer takes over), not the cause's
// (PERMISSION_DENIED, final); the cluster keeps answering meanwhile, and
// records are acknowledged again once the new producer is there.
TEST_F(KafkaTopicLearnerTest, AFatalProducerAnswersEachRecordAbortedUntilItIsReplaced) {
  ASSERT_TRUE(mock_->CreateTopic("orders", 1).ok());
  ASSERT_TRUE(mock_->CreateTopic("fresh", 1).ok());
  std::unique_ptr<KafkaCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(PublishAndWait(*cluster, {.topic = "orders", .value = "v"}).status.ok());

  factory_.Hold();
  ASSERT_EQ(rd_kafka_test_fatal_error(factory_.first_producer(),
                                      RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
                                      "injected by the test"),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  // A topic the producer has a handle for, and a new one (sent by name).
  for (int i = 0; i < 3; ++i) {
    for (const char* topic : {"orders", "fresh"}) {
      const absl::Time start = absl::Now();
      const PublishOutcome outcome =
          PublishAndWait(*cluster, {.topic = topic, .value = "v"});
      EXPECT_LT(absl::Now() - start, absl::Seconds(1)) << topic;
      EXPECT_EQ(outcome.status.code(), absl::StatusCode::kAborted)
          << topic << ": " << outcome.status;
      EXPECT_TRUE(outcome.retryable) << topic << ": " << outcome.status;
    }
  }
  const bool replacing = factory_.AwaitHeld(absl::Seconds(10));
  EXPECT_TRUE(replacing) << "the cluster did not start replacing its producer";
  const ClusterStatus status = cluster->Describe(/*include_topics=*/false);
  EXPECT_EQ(status.state, ClusterState::kDown);
  EXPECT_NE(status.error.find("fatal producer error"), std::string::npos) << status.error;

  // Acknowledged again once the new producer took over; until then refused
  // as before.
  factory_.Release();
  for (const char* topic : {"orders", "fresh"}) {
    PublishOutcome outcome;
    const absl::Time until = absl::Now() + absl::Seconds(10);
    do {
      outcome = PublishAndWait(*cluster, {.topic = topic, .value = "v"});
      if (!outcome.status.ok()) {
        EXPECT_EQ(outcome.status.code(), absl::StatusCode::kAborted) << outcome.status;
        absl::SleepFor(absl::Milliseconds(20));
      }
    } while (!outcome.status.ok() && absl::Now() < until);
    EXPECT_TRUE(outcome.status.ok()) << topic << ": " << outcome.status;
  }
}

// A new topic's first record fails while its broker is down (timed out:
// UNAVAILABLE, retryable) and so does its learning round; once the broker is
// back, the next record to the topic is acknowledged (a failed round is not
// retried: librdkafka reconnects, then its metadata refresh learns the
// topic) and the learner goes on with the next new topics. Reconnect backoff
// at most 250 ms: librdkafka's default doubles up to 10 s with jitter, which
// could outlast the record's 4-s publish timeout.
TEST_F(KafkaTopicLearnerTest,
       ANewTopicWhoseFirstRecordFailedOnADownBrokerTakesTheNextOne) {
  constexpr int kLaterTopics = 5;
  for (const char* topic : {"orders", "fresh"}) {
    ASSERT_TRUE(mock_->CreateTopic(topic, 1).ok());
  }
  for (int i = 0; i < kLaterTopics; ++i) {
    ASSERT_TRUE(mock_->CreateTopic("later." + std::to_string(i), 1).ok());
  }
  std::unique_ptr<KafkaCluster> cluster = StartCluster(
      {.publish_timeout = absl::Seconds(4)}, {{"reconnect.backoff.max.ms", "250"}});
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(PublishAndWait(*cluster, {.topic = "orders", .value = "v"}).status.ok());

  mock_->SetBrokerDown(1, true);
  const PublishOutcome failed =
      PublishAndWait(*cluster, {.topic = "fresh", .value = "v"});
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kUnavailable) << failed.status;
  EXPECT_TRUE(failed.retryable) << failed.status;

  mock_->SetBrokerDown(1, false);
  const PublishOutcome next = PublishAndWait(*cluster, {.topic = "fresh", .value = "v"});
  EXPECT_TRUE(next.status.ok()) << next.status;

  // Each later topic's first record has a round of its own at once (the
  // previous one ended over 200 ms before) rather than waiting up to 1 s for
  // the topic scan: a learner that stopped after the failed round took about
  // 2.5 s for the five (under 1 s with a chance of 1 in 120).
  absl::Duration learning = absl::ZeroDuration();
  for (int i = 0; i < kLaterTopics; ++i) {
    absl::SleepFor(absl::Milliseconds(250));
    const std::string topic = "later." + std::to_string(i);
    const absl::Time start = absl::Now();
    const PublishOutcome outcome =
        PublishAndWait(*cluster, {.topic = topic, .value = "v"});
    learning += absl::Now() - start;
    EXPECT_TRUE(outcome.status.ok()) << topic << ": " << outcome.status;
  }
  std::printf("[ measured ] %d later new topics acknowledged in %s in all\n",
              kLaterTopics, absl::FormatDuration(learning).c_str());
  EXPECT_LT(learning, absl::Seconds(1));
}

}  // namespace
}  // namespace ferry::backend::kafka
