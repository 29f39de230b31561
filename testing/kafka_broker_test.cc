#include "testing/kafka_broker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/kafka_client.h"

namespace ferry::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(KafkaBroker, GivenRunningBroker_WhenTopicCreated_ThenListTopicsHasIt) {
  KafkaBroker* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);

  ASSERT_EQ(broker->CreateTopic("listed", 3), absl::OkStatus());

  absl::StatusOr<std::vector<std::string>> topics = broker->ListTopics();
  ASSERT_TRUE(topics.ok()) << topics.status();
  EXPECT_THAT(*topics, Contains("listed"));
}

TEST(KafkaBroker, GivenExistingTopic_WhenCreatedAgain_ThenAlreadyExists) {
  KafkaBroker* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  ASSERT_EQ(broker->CreateTopic("twice", 1), absl::OkStatus());

  absl::Status again = broker->CreateTopic("twice", 1);

  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_THAT(again.message(), HasSubstr("twice"));
  EXPECT_THAT(again.message(), HasSubstr("TOPIC_ALREADY_EXISTS"));
}

TEST(KafkaBroker, GivenBadPartitionCount_WhenCreated_ThenInvalidArgument) {
  KafkaBroker* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);

  absl::Status status = broker->CreateTopic("no-partitions", 0);

  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
}

TEST(KafkaBroker, GivenProducedRecord_WhenKilledAndRestarted_ThenRecordIsKept) {
  absl::StatusOr<std::unique_ptr<KafkaBroker>> broker = KafkaBroker::Start("restart");
  ASSERT_TRUE(broker.ok()) << broker.status();
  KafkaBroker& kafka = **broker;
  ASSERT_EQ(kafka.CreateTopic("durable", 1), absl::OkStatus());
  ASSERT_EQ(ProduceOne(kafka.bootstrap(), "durable", "survives kill -9"),
            absl::OkStatus());

  ASSERT_EQ(kafka.Kill9(), absl::OkStatus());
  ASSERT_EQ(kafka.Restart(), absl::OkStatus());

  absl::StatusOr<std::vector<std::string>> values =
      ConsumeFromBeginning(kafka.bootstrap(), "durable", 0, 1);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_THAT(*values, ElementsAre("survives kill -9"));
}

TEST(KafkaBroker, GivenTwoBrokers_WhenTopicCreatedOnOne_ThenOtherLacksIt) {
  absl::StatusOr<std::unique_ptr<KafkaBroker>> first = KafkaBroker::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<KafkaBroker>> second = KafkaBroker::Start();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE((*first)->name(), (*second)->name());
  EXPECT_NE((*first)->bootstrap(), (*second)->bootstrap());

  ASSERT_EQ((*first)->CreateTopic("only-on-first", 1), absl::OkStatus());

  absl::StatusOr<std::vector<std::string>> on_first = (*first)->ListTopics();
  absl::StatusOr<std::vector<std::string>> on_second = (*second)->ListTopics();
  ASSERT_TRUE(on_first.ok()) << on_first.status();
  ASSERT_TRUE(on_second.ok()) << on_second.status();
  EXPECT_THAT(*on_first, Contains("only-on-first"));
  EXPECT_THAT(*on_second, Not(Contains("only-on-first")));
}

}  // namespace
}  // namespace ferry::testing
