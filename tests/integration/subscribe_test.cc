// The subscribe path through ferryd's gRPC API against a real Kafka broker:
// delivery, per-message acks, commits of the acked prefix only, redelivery
// after nack / deadline / stream loss, and precise statuses for bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SharedBroker;
using ::ferry::testing::SubscriberStream;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(60);

class SubscribeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = SharedBroker();
    ASSERT_NE(broker_, nullptr);
  }

  std::string Name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // A fresh topic per test with `count` keyed records "k<i % keys>" = "v<i>".
  std::string Topic(int partitions, int count, int keys = 10) {
    std::string topic = absl::StrCat("subscribe.", Name());
    EXPECT_TRUE(broker_->CreateTopic(topic, partitions).ok());
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = 0; i < count; ++i) {
      records.emplace_back(absl::StrCat("k", i % keys), absl::StrCat("v", i));
    }
    if (count > 0) {
      EXPECT_TRUE(testing::ProduceMany(broker_->bootstrap(), topic, records).ok());
    }
    return topic;
  }

  std::unique_ptr<FerrydProcess> Node(const std::string& extra_yaml = "") {
    auto node =
        FerrydProcess::Start(testing::MainClusterYaml(broker_->bootstrap()) +
                             "subscribe:\n  commit_interval: 100ms\n" + extra_yaml);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  // Waits until the group's committed offsets equal `expected`.
  void ExpectCommitted(const std::string& group, const std::string& topic,
                       std::map<int32_t, int64_t> expected) {
    std::map<int32_t, int64_t> last;
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (absl::Now() < until) {
      auto committed = testing::CommittedOffsets(broker_->bootstrap(), group, topic,
                                                 static_cast<int32_t>(expected.size()));
      if (committed.ok()) {
        last = *committed;
        if (last == expected) return;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "committed offsets never reached the expected ones; last: "
                  << ::testing::PrintToString(last);
  }

  KafkaBroker* broker_ = nullptr;
};

std::vector<std::string> Receipts(const std::vector<v1::ReceivedMessage>& messages) {
  std::vector<std::string> receipts;
  for (const auto& m : messages) receipts.push_back(m.receipt());
  return receipts;
}

TEST_F(SubscribeTest, DeliversEveryRecordAndCommitsTheAckedPrefix) {
  const std::string topic = Topic(3, 300);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();

  std::vector<v1::ReceivedMessage> messages = stream.Take(300, kWait);
  ASSERT_EQ(messages.size(), 300u);
  std::set<std::string> values;
  std::map<int32_t, int64_t> end;
  for (const auto& m : messages) {
    values.insert(m.value());
    EXPECT_EQ(m.topic(), topic);
    EXPECT_EQ(m.delivery_attempt(), 1);
    EXPECT_EQ(m.cluster(), "main");
    EXPECT_GT(m.publish_time().seconds(), 0);
    end[m.partition()] = std::max(end[m.partition()], m.offset() + 1);
  }
  EXPECT_EQ(values.size(), 300u);  // no duplicates, none missing

  // Leave the first message of partition 0 unacked: nothing of partition 0
  // may be committed past it, other partitions commit to their end.
  const v1::ReceivedMessage* held = nullptr;
  std::vector<std::string> acks;
  for (const auto& m : messages) {
    if (m.partition() == 0 && m.offset() == 0) {
      held = &m;
    } else {
      acks.push_back(m.receipt());
    }
  }
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(stream.Ack(acks));
  std::map<int32_t, int64_t> expected = end;
  expected[0] = 0;
  ExpectCommitted(Name(), topic, expected);
  ASSERT_TRUE(stream.Ack({held->receipt()}));
  ExpectCommitted(Name(), topic, end);
  EXPECT_TRUE(stream.ReceiptResults().empty());
  EXPECT_TRUE(stream.Close().ok());
}

TEST_F(SubscribeTest, NackedExpiredAndAbandonedMessagesComeBack) {
  const std::string topic = Topic(1, 3);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_ack_deadline()->set_seconds(1);
  auto stream = std::make_unique<SubscriberStream>(node->grpc_address(), open);
  std::vector<v1::ReceivedMessage> first = stream->Take(3, kWait);
  ASSERT_EQ(first.size(), 3u);

  // Nack offset 0 with a delay, let offset 1's deadline pass, ack offset 2.
  const absl::Time nacked_at = absl::Now();
  ASSERT_TRUE(stream->Nack({first[0].receipt()}, absl::Milliseconds(1500)));
  ASSERT_TRUE(stream->Ack({first[2].receipt()}));
  std::vector<v1::ReceivedMessage> again = stream->Take(2, absl::Seconds(10));
  ASSERT_EQ(again.size(), 2u);
  std::map<int64_t, v1::ReceivedMessage> by_offset;
  for (auto& m : again) by_offset[m.offset()] = m;
  ASSERT_TRUE(by_offset.contains(0) && by_offset.contains(1));
  EXPECT_EQ(by_offset[0].delivery_attempt(), 2);
  EXPECT_EQ(by_offset[1].delivery_attempt(), 2);
  EXPECT_GE(absl::Now() - nacked_at, absl::Milliseconds(1400));

  // A stale receipt (attempt 1 of offset 1) no longer settles anything.
  ASSERT_TRUE(stream->Ack({first[1].receipt()}));
  auto results = stream->WaitReceiptResults(1, absl::Seconds(10));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(results[0].status().message(), HasSubstr("receipt expired"));

  // The stream breaks with two messages unacked: a new stream gets them.
  stream->Cancel();
  stream.reset();
  SubscriberStream next(node->grpc_address(), open);
  std::vector<v1::ReceivedMessage> after = next.Take(2, kWait);
  ASSERT_EQ(after.size(), 2u);
  ASSERT_TRUE(next.Ack(Receipts(after)));
  ExpectCommitted(Name(), topic, {{0, 3}});
}

TEST_F(SubscribeTest, FlowControlBoundsOutstandingMessagesPerStream) {
  const std::string topic = Topic(2, 50);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_flow()->set_max_outstanding_messages(5);
  SubscriberStream stream(node->grpc_address(), open);
  std::vector<v1::ReceivedMessage> got = stream.Take(5, kWait);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value()) << "more than 5 outstanding";
  size_t total = got.size();
  while (total < 50) {
    ASSERT_TRUE(stream.Ack(Receipts(got)));
    got = stream.Take(5, absl::Seconds(20));
    ASSERT_FALSE(got.empty());
    total += got.size();
  }
  EXPECT_EQ(total, 50u);
}

TEST_F(SubscribeTest, BadInputGetsPreciseStatuses) {
  const std::string topic = Topic(1, 1);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  auto ended_with = [&](const v1::SubscriptionOpen& open) {
    SubscriberStream stream(node->grpc_address(), open);
    return stream.WaitEnded();
  };
  grpc::Status s = ended_with(MakeOpen("", {topic}));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("open.group"));
  s = ended_with(MakeOpen(Name(), {}));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("open.topics"));
  s = ended_with(MakeOpen(Name(), {"no.such.topic"}));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no.such.topic"));
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_ack_deadline()->set_seconds(3600);
  s = ended_with(open);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("open.ack_deadline"));

  // A first request that is not `open`.
  {
    SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
    ASSERT_TRUE(stream.WaitOpened().has_value());
    v1::SubscribeRequest again;
    *again.mutable_open() = MakeOpen(Name(), {topic});
    stream.Send(again);
    EXPECT_EQ(stream.WaitEnded().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  // Garbage and forged receipts are answered per receipt; the stream and the
  // real message survive.
  SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
  auto message = stream.Next(kWait);
  ASSERT_TRUE(message.has_value());
  std::string forged = message->receipt();
  forged[1] ^= 0x01;  // another stream id
  ASSERT_TRUE(stream.Ack({"garbage", forged}));
  auto results = stream.WaitReceiptResults(2, absl::Seconds(10));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(results[0].status().message(), HasSubstr("malformed receipt"));
  EXPECT_EQ(results[1].status().code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(stream.Ack({message->receipt()}));
  ExpectCommitted(Name(), topic, {{0, 1}});
  EXPECT_TRUE(stream.Close().ok());
}

}  // namespace
}  // namespace ferry
