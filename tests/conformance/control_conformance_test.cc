// Group control on every backend, while a stream is open: Admin.Seek to the
// earliest offset and to a timestamp, Admin.PauseGroup / ResumeGroup; and dead
// letters after max_delivery_attempts.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <set>

#include "fmt/format.h"
#include "tests/conformance/conformance_test.h"

namespace ferry::conformance {
namespace {

using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;
using ::testing::HasSubstr;

// Publishes "v<i>" for i in [from, from + count) with keys "k<i>", stamped
// `stamp` (plus i ms).
void PublishAt(const testing::FerrydProcess& node, const std::string& topic, int from,
               int count, absl::Time stamp) {
  v1::PublishRequest request;
  request.set_topic(topic);
  for (int i = from; i < from + count; ++i) {
    v1::OutgoingMessage* m =
        AddMessage(request, fmt::format("k{}", i), fmt::format("v{}", i));
    const int64_t ms = absl::ToUnixMillis(stamp) + i;
    m->mutable_timestamp()->set_seconds(ms / 1000);
    m->mutable_timestamp()->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
  }
  Conformance::PublishOk(node, request);
}

grpc::Status Seek(const testing::FerrydProcess& node, const std::string& group,
                  const std::string& topic, const v1::Position& to,
                  v1::SeekResponse* moved) {
  v1::SeekRequest seek;
  seek.set_group(group);
  seek.add_topics(topic);
  *seek.mutable_to() = to;
  grpc::ClientContext context;
  return Conformance::Admin(node)->Seek(WithDeadline(context), seek, moved);
}

// Consumes all `count` messages on `stream` and acks all but the one with
// value `hold`, which it returns.
v1::ReceivedMessage ConsumeHolding(SubscriberStream& stream, size_t count,
                                   const std::string& hold) {
  std::vector<v1::ReceivedMessage> got = stream.Take(count, kWait);
  EXPECT_EQ(got.size(), count);
  v1::ReceivedMessage held;
  std::vector<std::string> acks;
  for (const auto& m : got) {
    if (m.value() == hold) {
      held = m;
    } else {
      acks.push_back(m.receipt());
    }
  }
  EXPECT_FALSE(held.receipt().empty()) << hold << " not delivered";
  EXPECT_TRUE(stream.Ack(acks));
  EXPECT_TRUE(stream.Sync());
  return held;
}

// The receipt of `held`, handed out before a seek, is void afterwards.
void ExpectExpired(SubscriberStream& stream, const v1::ReceivedMessage& held) {
  const size_t before = stream.ReceiptResults().size();  // Sync markers
  ASSERT_TRUE(stream.Ack({held.receipt()}));
  auto results = stream.WaitReceiptResults(before + 1, absl::Seconds(10));
  ASSERT_EQ(results.size(), before + 1);
  EXPECT_EQ(results.back().receipt(), held.receipt());
  EXPECT_EQ(results.back().status().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(results.back().status().message(), HasSubstr("receipt expired"));
}

std::set<std::string> AckValues(SubscriberStream& stream, size_t count) {
  std::set<std::string> values;
  for (const auto& m : stream.Take(count, kWait)) {
    values.insert(m.value());
    EXPECT_TRUE(stream.Ack({m.receipt()}));
  }
  return values;
}

TEST_P(Conformance, SeekToEarliestRedeliversOnTheOpenStream) {
  REQUIRE_CAPABILITY(Capability::kSeek);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 2);
  PublishAt(*node, topic, 0, 20, absl::Now());
  SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
  const v1::ReceivedMessage held = ConsumeHolding(stream, 20, "v7");

  v1::Position earliest;
  earliest.set_earliest(true);
  v1::SeekResponse moved;
  grpc::Status status = Seek(*node, Name(), topic, earliest, &moved);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  ASSERT_EQ(moved.offsets_size(), 2) << moved.DebugString();
  for (const auto& o : moved.offsets()) EXPECT_EQ(o.offset(), 0) << o.DebugString();

  std::set<std::string> values = AckValues(stream, 20);
  EXPECT_EQ(values.size(), 20u);
  EXPECT_TRUE(values.contains("v0") && values.contains("v7") && values.contains("v19"));
  EXPECT_FALSE(stream.ended()) << "the stream must survive the seek";
  ExpectExpired(stream, held);
}

TEST_P(Conformance, SeekToATimestampRedeliversFromThatTime) {
  REQUIRE_CAPABILITY(Capability::kSeekToTimestamp);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 2);
  // Explicit record timestamps make the split exact on every backend.
  const absl::Time old_time = absl::Now() - absl::Hours(2);
  const absl::Time new_time = absl::Now() - absl::Hours(1);
  PublishAt(*node, topic, 0, 10, old_time);
  PublishAt(*node, topic, 10, 10, new_time);
  SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
  const v1::ReceivedMessage held = ConsumeHolding(stream, 20, "v15");

  v1::Position at;
  const absl::Time middle = new_time - absl::Minutes(30);
  at.mutable_timestamp()->set_seconds(absl::ToUnixSeconds(middle));
  v1::SeekResponse moved;
  grpc::Status status = Seek(*node, Name(), topic, at, &moved);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(moved.offsets_size(), 2) << moved.DebugString();

  std::set<std::string> values = AckValues(stream, 10);
  std::set<std::string> expected;
  for (int i = 10; i < 20; ++i) expected.insert(fmt::format("v{}", i));
  EXPECT_EQ(values, expected);
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value()) << "older message redelivered";
  ExpectExpired(stream, held);
}

TEST_P(Conformance, PausedGroupGetsNothingUntilResumed) {
  REQUIRE_CAPABILITY(Capability::kPauseResume);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 2);
  auto admin = Admin(*node);
  PublishAt(*node, topic, 0, 5, absl::Now());
  SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
  std::vector<v1::ReceivedMessage> before = stream.Take(5, kWait);
  ASSERT_EQ(before.size(), 5u);
  ASSERT_TRUE(stream.Ack(Receipts(before)));

  v1::PauseGroupRequest pause;
  pause.set_group(Name());
  v1::PauseGroupResponse paused;
  grpc::ClientContext pause_context;
  grpc::Status status = admin->PauseGroup(WithDeadline(pause_context), pause, &paused);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  PublishAt(*node, topic, 5, 10, absl::Now());
  EXPECT_FALSE(stream.Next(absl::Seconds(3)).has_value()) << "delivered while paused";

  v1::DescribeGroupRequest describe;
  describe.set_group(Name());
  v1::Group group;
  grpc::ClientContext describe_context;
  status = admin->DescribeGroup(WithDeadline(describe_context), describe, &group);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(group.paused());

  v1::ResumeGroupRequest resume;
  resume.set_group(Name());
  v1::ResumeGroupResponse resumed;
  grpc::ClientContext resume_context;
  status = admin->ResumeGroup(WithDeadline(resume_context), resume, &resumed);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  std::set<std::string> values = AckValues(stream, 10);
  EXPECT_EQ(values.size(), 10u);
  EXPECT_TRUE(values.contains("v5") && values.contains("v14"));
  EXPECT_FALSE(stream.ended());
}

TEST_P(Conformance, MessageNackedTooOftenGoesToTheDeadLetterTopic) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  const std::string dlq = topic + ".dlq";
  CreateTopic(*node, dlq, 1);
  PublishAt(*node, topic, 0, 3, absl::Now());
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.set_max_delivery_attempts(2);
  SubscriberStream stream(node->grpc_address(), open);

  std::vector<v1::ReceivedMessage> first = stream.Take(3, kWait);
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(first[1].offset(), 1);
  ASSERT_TRUE(stream.Ack({first[0].receipt(), first[2].receipt()}));
  ASSERT_TRUE(stream.Nack({first[1].receipt()}, absl::ZeroDuration()));
  auto second = stream.Next(absl::Seconds(10));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->offset(), 1);
  EXPECT_EQ(second->delivery_attempt(), 2);
  ASSERT_TRUE(stream.Nack({second->receipt()}, absl::ZeroDuration()));
  ASSERT_TRUE(stream.Sync());
  EXPECT_EQ(stream.ReceiptResults().size(), 1u) << "only the Sync marker";

  // The dead letter, read back through Ferry by another group.
  std::vector<v1::ReceivedMessage> dead = ReadBack(*node, dlq, Name() + ".dlq-reader", 1);
  ASSERT_EQ(dead.size(), 1u) << node->Log();
  EXPECT_EQ(dead[0].key(), first[1].key());
  EXPECT_EQ(dead[0].value(), first[1].value());
  std::map<std::string, std::string> headers;
  for (const auto& h : dead[0].headers()) headers[h.key()] = h.value();
  EXPECT_EQ(headers["ferry.dlq.topic"], topic);
  EXPECT_EQ(headers["ferry.dlq.partition"], "0");
  EXPECT_EQ(headers["ferry.dlq.offset"], "1");
  EXPECT_EQ(headers["ferry.dlq.group"], Name());
  EXPECT_EQ(headers["ferry.dlq.attempts"], "2");

  // The message counts as acked: the group commits past it, no third try.
  WaitCommitted(*node, Name(), topic, {{0, 3}});
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value()) << "delivered a third time";
  // Exactly one dead letter.
  SubscriberStream dlq_again(node->grpc_address(), MakeOpen(Name() + ".dlq-2", {dlq}));
  EXPECT_EQ(dlq_again.Take(1, kWait).size(), 1u);
  EXPECT_FALSE(dlq_again.Next(absl::Seconds(1)).has_value()) << "a second dead letter";
}

}  // namespace
}  // namespace ferry::conformance
