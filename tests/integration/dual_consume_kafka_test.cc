// Dual consume on two real Kafka brokers: a group whose route reads
// [primary, standby] receives every message written to either broker, keeps
// each key's order within each cluster (and no cluster waits for the other),
// keeps serving one broker while the other is down, and follows a change of
// the route's read list on an open stream.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;

constexpr absl::Duration kWait = absl::Seconds(60);

class DualConsumeKafkaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (auto* broker : {&primary_, &standby_}) {
      auto started = KafkaBroker::Start("dual");
      ASSERT_TRUE(started.ok()) << started.status();
      *broker = started->release();
    }
  }
  static void TearDownTestSuite() {
    delete primary_;
    delete standby_;
  }

  std::string Name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // A control topic per test: the YAML routes seed only a fresh one.
  std::unique_ptr<FerrydProcess> Node(
      const std::string& topic,
      const std::string& clusters =
          "write: [primary, standby], read: [primary, standby]") {
    auto node = FerrydProcess::Start(absl::StrCat(
        "clusters:\n", testing::KafkaClusterEntry("primary", primary_->bootstrap()),
        testing::KafkaClusterEntry("standby", standby_->bootstrap()),
        "control: { cluster: primary, topic: __ferry_control.", Name(), " }\n",
        "routes:\n  - { topic: \"", topic, "\", ", clusters,
        " }\n"
        "subscribe:\n  commit_interval: 100ms\n  session_timeout: 6s\n"
        "cluster_probe: { interval: 500ms, timeout: 1s }\n"));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static void Produce(KafkaBroker& broker, const std::string& topic,
                      const std::vector<std::pair<std::string, std::string>>& records) {
    ASSERT_TRUE(testing::ProduceMany(broker.bootstrap(), topic, records).ok());
  }

  static KafkaBroker* primary_;
  static KafkaBroker* standby_;
};

KafkaBroker* DualConsumeKafkaTest::primary_ = nullptr;
KafkaBroker* DualConsumeKafkaTest::standby_ = nullptr;

TEST_F(DualConsumeKafkaTest, KeyOrderHoldsWithinEachClusterAndNoClusterWaitsForTheOther) {
  const std::string topic = "dual." + Name();
  ASSERT_TRUE(primary_->CreateTopic(topic, 3).ok());
  ASSERT_TRUE(standby_->CreateTopic(topic, 3).ok());
  auto node = Node(topic);
  ASSERT_NE(node, nullptr);
  SubscriberStream stream(node->grpc_address(),
                          MakeOpen(Name(), {topic}, v1::ORDERING_KEY));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();

  // Key "held": its first message on primary stays unacked; standby's copy
  // of the key goes on regardless, primary's next waits.
  Produce(*primary_, topic, {{"held", "primary-0"}, {"held", "primary-1"}});
  Produce(*standby_, topic, {{"held", "standby-0"}, {"held", "standby-1"}});
  std::map<std::string, v1::ReceivedMessage> first;  // value -> message
  for (const auto& m : stream.Take(2, kWait)) first[m.value()] = m;
  ASSERT_TRUE(first.contains("primary-0") && first.contains("standby-0"))
      << "one cluster's key blocked the other's";
  EXPECT_EQ(first["primary-0"].cluster(), "primary");
  EXPECT_EQ(first["standby-0"].cluster(), "standby");
  ASSERT_TRUE(stream.Ack({first["standby-0"].receipt()}));
  std::optional<v1::ReceivedMessage> next = stream.Next(kWait);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->value(), "standby-1");
  ASSERT_TRUE(stream.Ack({next->receipt()}));
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value())
      << "primary-1 overtook primary-0, still unacked";
  ASSERT_TRUE(stream.Ack({first["primary-0"].receipt()}));
  next = stream.Next(kWait);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->value(), "primary-1");
  ASSERT_TRUE(stream.Ack({next->receipt()}));

  // Many keys on both clusters: everything arrives, each key in order per
  // cluster.
  constexpr int kKeys = 6, kPerKey = 25;
  for (auto [broker, cluster] : {std::pair{primary_, "primary"}, {standby_, "standby"}}) {
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = 0; i < kPerKey; ++i) {
      for (int k = 0; k < kKeys; ++k) {
        records.emplace_back(absl::StrCat("k", k),
                             absl::StrCat(cluster, "/k", k, "/", i));
      }
    }
    Produce(*broker, topic, records);
  }
  std::map<std::pair<std::string, std::string>, std::vector<int>> seen;  // cluster, key
  const absl::Time give_up = absl::Now() + kWait;
  int received = 0;
  while (received < 2 * kKeys * kPerKey && absl::Now() < give_up) {
    std::optional<v1::ReceivedMessage> m = stream.Next(give_up - absl::Now());
    if (!m.has_value()) break;
    ++received;
    std::vector<std::string> parts = absl::StrSplit(m->value(), '/');
    ASSERT_EQ(parts.size(), 3u) << m->value();
    EXPECT_EQ(parts[0], m->cluster());
    EXPECT_EQ(parts[1], m->key());
    seen[{m->cluster(), m->key()}].push_back(std::stoi(parts[2]));
    ASSERT_TRUE(stream.Ack({m->receipt()}));
  }
  EXPECT_EQ(received, 2 * kKeys * kPerKey);
  std::vector<int> in_order(kPerKey);
  for (int i = 0; i < kPerKey; ++i) in_order[i] = i;
  ASSERT_EQ(seen.size(), 2u * kKeys);
  for (const auto& [cluster_key, sequence] : seen) {
    EXPECT_EQ(sequence, in_order) << cluster_key.first << " " << cluster_key.second;
  }
}

TEST_F(DualConsumeKafkaTest, AReadClusterThatIsDownDoesNotStopTheOther) {
  const std::string topic = "dual." + Name();
  ASSERT_TRUE(primary_->CreateTopic(topic, 1).ok());
  ASSERT_TRUE(standby_->CreateTopic(topic, 1).ok());
  auto node = Node(topic);
  ASSERT_NE(node, nullptr);
  ASSERT_TRUE(standby_->Stop().ok());
  const absl::Time give_up = absl::Now() + kWait;
  while (node->HttpGet("/metrics")
                 .second.find("ferry_cluster_up{cluster=\"standby\",type=\"kafka\"} 0") ==
             std::string::npos &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(100));
  }

  // Opened while standby is down: served from primary.
  SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  Produce(*primary_, topic, {{"", "while-down"}});
  std::optional<v1::ReceivedMessage> m = stream.Next(kWait);
  ASSERT_TRUE(m.has_value()) << "primary was not served while standby was down";
  EXPECT_EQ(m->value(), "while-down");
  EXPECT_EQ(m->cluster(), "primary");
  ASSERT_TRUE(stream.Ack({m->receipt()}));

  // DescribeGroup still shows the group, by the cluster that answers.
  {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(node->grpc_address(), grpc::InsecureChannelCredentials()));
    v1::DescribeGroupRequest request;
    request.set_group(Name());
    v1::Group group;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Status status = admin->DescribeGroup(&context, request, &group);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_THAT(group.state(), ::testing::HasSubstr("standby: unreachable"));
    ASSERT_EQ(group.partitions_size(), 1);
    EXPECT_EQ(group.partitions(0).cluster(), "primary");
    EXPECT_EQ(group.partitions(0).high_watermark(), 1);
  }

  // Standby comes back: the group picks it up without a new open.
  ASSERT_TRUE(standby_->Restart().ok());
  Produce(*standby_, topic, {{"", "after-restart"}});
  m = stream.Next(kWait);
  ASSERT_TRUE(m.has_value()) << "standby was not picked up after it came back";
  EXPECT_EQ(m->value(), "after-restart");
  EXPECT_EQ(m->cluster(), "standby");
  ASSERT_TRUE(stream.Ack({m->receipt()}));
}

// A migration's read moves on two brokers: the route reads [primary], then
// [primary, standby], then [standby], changed with `ferry routes put` while
// one stream stays open.
TEST_F(DualConsumeKafkaTest, OpenStreamFollowsReadListChangesWithoutReconnecting) {
  const std::string topic = "dual." + Name();
  const std::string group = Name();
  ASSERT_TRUE(primary_->CreateTopic(topic, 1).ok());
  ASSERT_TRUE(standby_->CreateTopic(topic, 1).ok());
  std::unique_ptr<FerrydProcess> node = Node(topic, "write: [primary], read: [primary]");
  ASSERT_NE(node, nullptr);
  const auto read = [&](const std::string& clusters) {
    auto result = testing::RunFerryCli({"--server", node->grpc_address(), "routes", "put",
                                        "--topic", topic, "--write", "primary", "--read",
                                        clusters});
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->exit_code, 0) << result->err;
  };
  const auto committed = [&](KafkaBroker& broker) {
    auto offsets = testing::CommittedOffsets(broker.bootstrap(), group, topic, 1);
    return offsets.ok() ? offsets->at(0) : -2;
  };

  Produce(*primary_, topic, {{"", "p0"}, {"", "p1"}, {"", "p2"}});
  SubscriberStream stream(node->grpc_address(), MakeOpen(group, {topic}));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  std::vector<v1::ReceivedMessage> from_primary = stream.Take(3, kWait);
  ASSERT_EQ(from_primary.size(), 3u);
  ASSERT_TRUE(stream.Ack({from_primary[0].receipt()}));

  // Written to standby before the group reads it: delivered once it does.
  Produce(*standby_, topic, {{"", "s0"}, {"", "s1"}});
  read("primary,standby");
  std::vector<v1::ReceivedMessage> from_standby = stream.Take(2, kWait);
  ASSERT_EQ(from_standby.size(), 2u);
  for (const auto& m : from_standby) {
    EXPECT_EQ(m.cluster(), "standby");
    ASSERT_TRUE(stream.Ack({m.receipt()}));
  }

  // primary is left at its acked prefix; p1 and p2's receipts expire.
  read("standby");
  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel(node->grpc_address(), grpc::InsecureChannelCredentials()));
  const auto primary_in_flight = [&] {
    v1::DescribeGroupRequest request;
    request.set_group(group);
    request.set_cluster("primary");
    v1::Group described;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    EXPECT_TRUE(admin->DescribeGroup(&context, request, &described).ok());
    return described.partitions_size() == 1 ? described.partitions(0).in_flight() : -1;
  };
  const absl::Time give_up = absl::Now() + kWait;
  while (primary_in_flight() != 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(primary_in_flight(), 0) << "the node still holds primary's messages";
  EXPECT_EQ(committed(*primary_), 1);
  ASSERT_TRUE(stream.Ack({from_primary[1].receipt(), from_primary[2].receipt()}));
  const std::vector<v1::ReceiptResult> expired = stream.WaitReceiptResults(2, kWait);
  ASSERT_EQ(expired.size(), 2u);
  for (const auto& result : expired) {
    EXPECT_EQ(result.status().code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(result.status().message(), "receipt expired");
  }
  Produce(*primary_, topic, {{"", "p3"}});
  Produce(*standby_, topic, {{"", "s2"}});
  std::optional<v1::ReceivedMessage> s2 = stream.Next(kWait);
  ASSERT_TRUE(s2.has_value());
  EXPECT_EQ(s2->value(), "s2");
  ASSERT_TRUE(stream.Ack({s2->receipt()}));
  EXPECT_FALSE(stream.Next(absl::Seconds(2)).has_value()) << "primary is still read";
  while (committed(*standby_) != 3 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(committed(*standby_), 3);
  EXPECT_EQ(committed(*primary_), 1);
  EXPECT_FALSE(stream.ended());
}

}  // namespace
}  // namespace ferry
