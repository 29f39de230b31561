// ProducerHandle::RelearnTopic against librdkafka's in-process mock cluster,
// which can answer Metadata requests with an error for a topic it has: a
// broker that has not heard of a topic just created says the same.
#include "backend/kafka/producer_handle.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka_mock.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "testing/mock_cluster.h"

namespace ferry::backend::kafka {
namespace {

class ProducerHandleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mock = testing::MockKafkaCluster::Start(1);
    ASSERT_TRUE(mock.ok()) << mock.status();
    mock_ = *std::move(mock);
    ASSERT_TRUE(mock_->CreateTopic("late", 1).ok());
    auto conf = BuildConf({{"bootstrap.servers", mock_->bootstrap()}}, "");
    ASSERT_TRUE(conf.ok()) << conf.status();
    rd_kafka_conf_set_dr_msg_cb(
        conf->get(), +[](rd_kafka_t*, const rd_kafka_message_t* message, void*) {
          *static_cast<rd_kafka_resp_err_t*>(message->_private) = message->err;
        });
    auto producer = LibrdkafkaClientFactory().Create(RD_KAFKA_PRODUCER, *std::move(conf));
    ASSERT_TRUE(producer.ok()) << producer.status();
    handle_ = std::make_unique<ProducerHandle>(*std::move(producer));
  }

  // Metadata answers say "late" does not exist (it has its partition still).
  void SetTopicUnknown(bool unknown) {
    rd_kafka_mock_topic_set_error(
        mock_->raw(), "late",
        unknown ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // A record to "late" through its handle: its delivery report's error.
  rd_kafka_resp_err_t ProduceAndFlush() {
    rd_kafka_resp_err_t delivered = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    char value[] = "v";
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        handle_->get(), RD_KAFKA_V_RKT(handle_->Topic("late")),
        RD_KAFKA_V_VALUE(value, 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(&delivered), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return err;
    rd_kafka_flush(handle_->get(), 10'000);
    return delivered;
  }

  std::unique_ptr<testing::MockKafkaCluster> mock_;
  std::unique_ptr<ProducerHandle> handle_;
};

// The first answers still say the topic does not exist: RelearnTopic asks
// again until one shows it, and a record right after is acknowledged (not
// NOT_FOUND until librdkafka's 1-s topic scan).
TEST_F(ProducerHandleTest, RelearnTopicAsksAgainUntilTheAnswerShowsTheTopic) {
  SetTopicUnknown(true);
  ASSERT_NE(handle_->Open("late"), nullptr);
  std::thread heard([this] {
    absl::SleepFor(absl::Milliseconds(300));
    SetTopicUnknown(false);
  });
  const absl::Time start = absl::Now();
  const bool learned = handle_->RelearnTopic("late", start + absl::Seconds(10));
  const absl::Duration took = absl::Now() - start;
  heard.join();
  EXPECT_TRUE(learned);
  EXPECT_GE(took, absl::Milliseconds(250)) << "returned on an answer without the topic";
  EXPECT_EQ(ProduceAndFlush(), RD_KAFKA_RESP_ERR_NO_ERROR);
}

// Answers that never show the topic: RelearnTopic gives up at its deadline.
TEST_F(ProducerHandleTest, RelearnTopicGivesUpAtTheDeadline) {
  SetTopicUnknown(true);
  ASSERT_NE(handle_->Open("late"), nullptr);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(handle_->RelearnTopic("late", start + absl::Milliseconds(600)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(3));
}

// No handle yet (no record went to the topic): nothing to relearn.
TEST_F(ProducerHandleTest, RelearnTopicWithoutAHandleDoesNothing) {
  const absl::Time start = absl::Now();
  EXPECT_FALSE(handle_->RelearnTopic("late", start + absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));
}

}  // namespace
}  // namespace ferry::backend::kafka
