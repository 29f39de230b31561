// Subscribe semantics on every backend: redelivery after a nack, an expired
// ack deadline and a broken stream; key and partition ordering; commits of the
// acked prefix only.
#include <gmock/gmock.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "fmt/format.h"
#include "tests/conformance/conformance_test.h"

namespace ferry::conformance {
namespace {

using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;
using ::testing::HasSubstr;

// Publishes `count` messages "v<i>" with keys "k<i % keys>" in one batch.
void PublishNumbered(const testing::FerrydProcess& node, const std::string& topic,
                     int from, int count, int keys) {
  v1::PublishRequest request;
  request.set_topic(topic);
  for (int i = from; i < from + count; ++i) {
    AddMessage(request, fmt::format("k{}", i % keys), fmt::format("v{}", i));
  }
  Conformance::PublishOk(node, request);
}

TEST_P(Conformance, NackedMessageIsRedeliveredAfterItsDelay) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  PublishNumbered(*node, topic, 0, 3, 3);
  SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
  std::vector<v1::ReceivedMessage> first = stream.Take(3, kWait);
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(first[0].offset(), 0);

  const absl::Time nacked_at = absl::Now();
  ASSERT_TRUE(stream.Nack({first[0].receipt()}, absl::Milliseconds(800)));
  ASSERT_TRUE(stream.Ack({first[1].receipt(), first[2].receipt()}));
  auto again = stream.Next(absl::Seconds(10));
  ASSERT_TRUE(again.has_value()) << "nacked message not redelivered";
  EXPECT_GE(absl::Now() - nacked_at, absl::Milliseconds(700)) << "nack delay ignored";
  EXPECT_EQ(again->offset(), 0);
  EXPECT_EQ(again->value(), "v0");
  EXPECT_EQ(again->delivery_attempt(), 2);
  EXPECT_NE(again->receipt(), first[0].receipt());

  // The old receipt settles nothing any more; the new one does.
  ASSERT_TRUE(stream.Ack({first[0].receipt()}));
  auto results = stream.WaitReceiptResults(1, absl::Seconds(10));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(results[0].status().message(), HasSubstr("receipt expired"));
  ASSERT_TRUE(stream.Ack({again->receipt()}));
  WaitCommitted(*node, Name(), topic, {{0, 3}});
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value()) << "delivered a third time";
}

TEST_P(Conformance, MessagePastItsAckDeadlineIsRedelivered) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  PublishNumbered(*node, topic, 0, 2, 2);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_ack_deadline()->set_seconds(1);
  SubscriberStream stream(node->grpc_address(), open);
  std::vector<v1::ReceivedMessage> first = stream.Take(2, kWait);
  ASSERT_EQ(first.size(), 2u);
  const absl::Time delivered_at = absl::Now();
  ASSERT_TRUE(stream.Ack({first[1].receipt()}));  // offset 0 is left to expire

  auto again = stream.Next(absl::Seconds(10));
  ASSERT_TRUE(again.has_value()) << "expired message not redelivered";
  EXPECT_GE(absl::Now() - delivered_at, absl::Milliseconds(900)) << "redelivered early";
  EXPECT_EQ(again->offset(), first[0].offset());
  EXPECT_EQ(again->delivery_attempt(), 2);
  ASSERT_TRUE(stream.Ack({again->receipt()}));
  WaitCommitted(*node, Name(), topic, {{0, 2}});
}

TEST_P(Conformance, MessagesOfABrokenStreamGoToTheNextStream) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 2);
  PublishNumbered(*node, topic, 0, 10, 10);
  auto stream =
      std::make_unique<SubscriberStream>(node->grpc_address(), MakeOpen(Name(), {topic}));
  std::vector<v1::ReceivedMessage> first = stream->Take(10, kWait);
  ASSERT_EQ(first.size(), 10u);
  std::set<std::string> unacked;
  std::vector<std::string> acks;
  for (const auto& m : first) {
    if (m.offset() % 2 == 0) {
      acks.push_back(m.receipt());
    } else {
      unacked.insert(m.value());
    }
  }
  ASSERT_TRUE(stream->Ack(acks));
  ASSERT_TRUE(stream->Sync());
  stream->Cancel();  // as a crashed client would
  stream.reset();

  SubscriberStream next(node->grpc_address(), MakeOpen(Name(), {topic}));
  std::vector<v1::ReceivedMessage> again = next.Take(unacked.size(), kWait);
  std::set<std::string> values;
  for (const auto& m : again) {
    values.insert(m.value());
    EXPECT_GE(m.delivery_attempt(), 2) << m.value();
  }
  EXPECT_EQ(values, unacked);
  EXPECT_FALSE(next.Next(absl::Seconds(1)).has_value()) << "an acked message came back";
}

// Counts, per gate (key or partition), messages delivered while the gate's
// previous message was still unacked. The gate is released just before the
// ack is sent, so an overlap seen here is a real one.
class GateRecorder {
 public:
  explicit GateRecorder(bool by_key) : by_key_(by_key) {}
  std::string Gate(const v1::ReceivedMessage& m) const {
    return by_key_ ? fmt::format("{}/{}", m.partition(), m.key())
                   : fmt::format("{}", m.partition());
  }
  void Delivered(const v1::ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    auto [it, fresh] = holding_.emplace(Gate(m), m.offset());
    if (!fresh && overlaps_++ == 0) {
      first_overlap_ = fmt::format("gate {}: offset {} delivered while {} was unacked",
                                   it->first, m.offset(), it->second);
    }
    it->second = m.offset();
  }
  void Acking(const v1::ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    auto it = holding_.find(Gate(m));
    if (it != holding_.end() && it->second == m.offset()) holding_.erase(it);
    acked_[Gate(m)].push_back(m.offset());
    ++acked_count_;
  }
  bool WaitAcked(int64_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return acked_count_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  // No overlaps, and each gate's offsets acked once each in increasing order.
  void Check() {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(overlaps_, 0) << "first: " << first_overlap_;
    for (const auto& [gate, offsets] : acked_) {
      EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()) &&
                  std::adjacent_find(offsets.begin(), offsets.end()) == offsets.end())
          << "gate " << gate << " acked " << ::testing::PrintToString(offsets);
    }
  }

 private:
  const bool by_key_;
  absl::Mutex mu_;
  std::map<std::string, int64_t> holding_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<int64_t>> acked_ ABSL_GUARDED_BY(mu_);
  int64_t acked_count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t overlaps_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_overlap_ ABSL_GUARDED_BY(mu_);
};

// Three streams of one group, each acking every message after 0-2 ms of
// "work", until `count` messages were acked.
void RunOrdered(const testing::FerrydProcess& node, const v1::SubscriptionOpen& open,
                int64_t count, GateRecorder& recorder) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(c + 1);
      std::uniform_int_distribution<int> micros(0, 2000);
      SubscriberStream stream(
          node.grpc_address(), open,
          [&](const v1::ReceivedMessage& m) { recorder.Delivered(m); });
      while (!stop) {
        auto m = stream.Next(absl::Milliseconds(50));
        if (!m.has_value()) {
          if (stream.ended()) return;
          continue;
        }
        absl::SleepFor(absl::Microseconds(micros(rng)));
        recorder.Acking(*m);
        stream.Ack({m->receipt()});
      }
      stream.Close();
    });
  }
  EXPECT_TRUE(recorder.WaitAcked(count, absl::Seconds(60))) << "not all acked";
  stop = true;
  for (auto& t : clients) t.join();
}

TEST_P(Conformance, KeyOrderingKeepsOneMessagePerKeyOutstanding) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  constexpr int kMessages = 300;
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 2);
  PublishNumbered(*node, topic, 0, kMessages, 15);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic}, v1::ORDERING_KEY);
  open.mutable_flow()->set_max_outstanding_messages(10);
  GateRecorder recorder(/*by_key=*/true);
  RunOrdered(*node, open, kMessages, recorder);
  recorder.Check();
}

TEST_P(Conformance, PartitionOrderingKeepsOneMessagePerPartitionOutstanding) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  constexpr int kMessages = 150;
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 3);
  PublishNumbered(*node, topic, 0, kMessages, 15);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic}, v1::ORDERING_PARTITION);
  open.mutable_flow()->set_max_outstanding_messages(10);
  GateRecorder recorder(/*by_key=*/false);
  RunOrdered(*node, open, kMessages, recorder);
  recorder.Check();
}

TEST_P(Conformance, NewStreamResumesAtTheFirstUnackedMessage) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  PublishNumbered(*node, topic, 0, 10, 10);
  {
    SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
    std::vector<v1::ReceivedMessage> got = stream.Take(10, kWait);
    ASSERT_EQ(got.size(), 10u);
    std::vector<std::string> acks;
    for (const auto& m : got) {
      if (m.offset() != 4) acks.push_back(m.receipt());  // a gap at offset 4
    }
    ASSERT_TRUE(stream.Ack(acks));
    ASSERT_TRUE(stream.Sync());
    // Only the contiguous acked prefix is committed.
    WaitCommitted(*node, Name(), topic, {{0, 4}});
    EXPECT_TRUE(stream.Close().ok());
  }
  {
    // The next stream on the node starts at the first unacked message. (The
    // node may remember that 5..9 were acked and skip them.)
    SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
    auto first = stream.Next(kWait);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->offset(), 4);
    EXPECT_EQ(first->value(), "v4");
    EXPECT_TRUE(stream.Close().ok());
  }
  // A node that starts afresh knows only the commit: 4..9 all come again.
  StopNode(node);
  node = Node();
  ASSERT_NE(node, nullptr);
  SubscriberStream next(node->grpc_address(), MakeOpen(Name(), {topic}));
  std::vector<v1::ReceivedMessage> again = next.Take(6, kWait);
  ASSERT_EQ(again.size(), 6u);
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].offset(), static_cast<int64_t>(4 + i));
    EXPECT_EQ(again[i].value(), fmt::format("v{}", 4 + i));
  }
  EXPECT_FALSE(next.Next(absl::Seconds(1)).has_value()) << "more than offsets 4..9 came";
  ASSERT_TRUE(next.Ack(Receipts(again)));
  WaitCommitted(*node, Name(), topic, {{0, 10}});
}

}  // namespace
}  // namespace ferry::conformance
