// Dual consume on two embedded clusters: a route reading [a, b] makes one
// subscriber stream receive both clusters' messages, each naming its cluster;
// acks commit on the cluster the message came from; DescribeGroup, pause and
// seek by time cover both clusters; an open stream follows read-list changes.
//
// One node holds both stores, and a route writes one cluster: the route is
// changed at runtime (ferry routes put) from writing `a` to writing `b`, to
// put records on each.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr absl::Duration kWait = absl::Seconds(20);

constexpr char kYaml[] =
    "clusters:\n"
    "  a: { type: embedded, path: store-a }\n"
    "  b: { type: embedded, path: store-b }\n"
    "routes:\n"
    "  - { topic: \"orders\", write: [a], read: [a, b] }\n"
    "subscribe:\n  commit_interval: 100ms\n";

grpc::ClientContext* Deadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return &context;
}

// cluster -> values
std::map<std::string, std::vector<std::string>> ByCluster(
    const std::vector<v1::ReceivedMessage>& messages) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& m : messages) out[m.cluster()].push_back(m.value());
  return out;
}

std::vector<std::string> ReceiptsOf(const std::vector<v1::ReceivedMessage>& messages) {
  std::vector<std::string> receipts;
  for (const auto& m : messages) receipts.push_back(m.receipt());
  return receipts;
}

class DualConsumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/ferry-dual-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    node_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void StartNode() {
    auto node = FerrydProcess::Start(kYaml, {}, dir_);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
  }

  void Ferry(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {"--server", node_->grpc_address()});
    auto result = testing::RunFerryCli(args, {}, input);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->exit_code, 0) << result->err;
  }

  // Cluster a holds a1 a2 | a3 a4, cluster b holds b1 b2 b3 b4, where "|" is
  // the time returned; the node runs on, writing b. Every line has the same
  // key: unkeyed lines have no order promise (the SDK may send a3 and a4 in
  // concurrent batches), and the tests check the order within a cluster.
  absl::Time Seed() {
    StartNode();
    Ferry({"topics", "create", "orders", "--cluster", "a", "--partitions", "1"});
    Ferry({"topics", "create", "orders", "--cluster", "b", "--partitions", "1"});
    Ferry({"produce", "--topic", "orders", "--key", "k"}, "a1\na2\n");
    absl::SleepFor(absl::Milliseconds(20));
    const absl::Time middle = absl::Now();
    absl::SleepFor(absl::Milliseconds(20));
    Ferry({"produce", "--topic", "orders", "--key", "k"}, "a3\na4\n");
    Ferry({"routes", "put", "--topic", "orders", "--write", "b", "--read", "a,b"});
    Ferry({"produce", "--topic", "orders", "--key", "k"}, "b1\nb2\nb3\nb4\n");
    return middle;
  }

  std::unique_ptr<v1::Admin::Stub> Admin() {
    return v1::Admin::NewStub(
        grpc::CreateChannel(node_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  // On the group's read clusters, or on `cluster` only.
  v1::Group Describe(const std::string& cluster = "") {
    v1::DescribeGroupRequest request;
    request.set_group("g");
    request.set_cluster(cluster);
    v1::Group group;
    grpc::ClientContext context;
    grpc::Status status = Admin()->DescribeGroup(Deadline(context), request, &group);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return group;
  }

  // cluster -> committed offset of orders/0
  std::map<std::string, int64_t> Committed(const std::string& cluster = "") {
    std::map<std::string, int64_t> committed;
    const v1::Group group = Describe(cluster);
    for (const auto& p : group.partitions()) {
      committed[p.cluster()] = p.committed_offset();
    }
    return committed;
  }

  std::string dir_;
  std::unique_ptr<FerrydProcess> node_;
};

TEST_F(DualConsumeTest, OneStreamReadsBothClustersAndCommitsEachSeparately) {
  Seed();
  SubscriberStream stream(node_->grpc_address(), MakeOpen("g", {"orders"}));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  std::vector<v1::ReceivedMessage> first = stream.Take(8, kWait);
  auto by_cluster = ByCluster(first);
  EXPECT_THAT(by_cluster["a"], ElementsAre("a1", "a2", "a3", "a4"));
  EXPECT_THAT(by_cluster["b"], ElementsAre("b1", "b2", "b3", "b4"));

  // Both clusters hold offsets 0..3 of orders/0: ack all of a, b's first two.
  std::vector<v1::ReceivedMessage> acked;
  for (const auto& m : first) {
    if (m.cluster() == "a" || m.value() == "b1" || m.value() == "b2") acked.push_back(m);
  }
  ASSERT_TRUE(stream.Ack(ReceiptsOf(acked)));
  ASSERT_TRUE(stream.Sync());
  for (const auto& result : stream.ReceiptResults()) {
    EXPECT_TRUE(result.receipt().starts_with("sync-")) << result.status().message();
  }
  const absl::Time give_up = absl::Now() + kWait;
  std::map<std::string, int64_t> committed;
  while ((committed = Committed()) !=
             std::map<std::string, int64_t>{{"a", 4}, {"b", 2}} &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(committed, (std::map<std::string, int64_t>{{"a", 4}, {"b", 2}}));

  const v1::Group group = Describe();
  EXPECT_EQ(group.cluster(), "a");
  ASSERT_EQ(group.partitions_size(), 2);
  for (const auto& p : group.partitions()) {
    EXPECT_EQ(p.topic(), "orders");
    EXPECT_EQ(p.high_watermark(), 4) << p.cluster();
    EXPECT_EQ(p.lag(), p.cluster() == "a" ? 0 : 2) << p.cluster();
  }
  auto cli = testing::RunFerryCli(
      {"--server", node_->grpc_address(), "groups", "describe", "g"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  EXPECT_THAT(cli->out, HasSubstr("CLUSTER"));
  EXPECT_THAT(cli->out, ContainsRegex("\na +orders +0 .* 4 +4 +0 "));
  EXPECT_THAT(cli->out, ContainsRegex("\nb +orders +0 .* 2 +4 +2 "));
  ASSERT_TRUE(stream.Close().ok());

  // What was acked stays acked, per cluster; the rest comes again.
  SubscriberStream again(node_->grpc_address(), MakeOpen("g", {"orders"}));
  ASSERT_TRUE(again.WaitOpened().has_value()) << again.WaitEnded().error_message();
  std::vector<v1::ReceivedMessage> redelivered = again.Take(2, kWait);
  EXPECT_THAT(ByCluster(redelivered),
              (ElementsAre(::testing::Pair("b", ElementsAre("b3", "b4")))));
  EXPECT_FALSE(again.Next(absl::Seconds(1)).has_value()) << "an acked message came back";
}

TEST_F(DualConsumeTest, PauseStopsBothClustersAndSeekByTimeMovesEach) {
  const absl::Time middle = Seed();
  SubscriberStream stream(node_->grpc_address(), MakeOpen("g", {"orders"}));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  ASSERT_TRUE(stream.Ack(ReceiptsOf(stream.Take(8, kWait))));

  {
    v1::PauseGroupRequest pause;
    pause.set_group("g");
    v1::PauseGroupResponse paused;
    grpc::ClientContext context;
    ASSERT_TRUE(Admin()->PauseGroup(Deadline(context), pause, &paused).ok());
  }
  Ferry({"produce", "--topic", "orders", "--key", "k"}, "b5\n");
  // To a time between a2 and a3, so a moves to offset 2 and b to 0.
  v1::SeekRequest seek;
  seek.set_group("g");
  seek.mutable_to()->mutable_timestamp()->set_seconds(absl::ToUnixSeconds(middle));
  seek.mutable_to()->mutable_timestamp()->set_nanos(
      static_cast<int32_t>(absl::ToUnixNanos(middle) % 1000000000));
  v1::SeekResponse moved;
  {
    grpc::ClientContext context;
    grpc::Status status = Admin()->Seek(Deadline(context), seek, &moved);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  std::map<std::string, int64_t> targets;
  for (const auto& o : moved.offsets()) targets[o.cluster()] = o.offset();
  EXPECT_EQ(targets, (std::map<std::string, int64_t>{{"a", 2}, {"b", 0}}));
  EXPECT_FALSE(stream.Next(absl::Milliseconds(1500)).has_value())
      << "a paused group delivered";

  {
    v1::ResumeGroupRequest resume;
    resume.set_group("g");
    v1::ResumeGroupResponse resumed;
    grpc::ClientContext context;
    ASSERT_TRUE(Admin()->ResumeGroup(Deadline(context), resume, &resumed).ok());
  }
  auto by_cluster = ByCluster(stream.Take(7, kWait));
  EXPECT_THAT(by_cluster["a"], ElementsAre("a3", "a4"));
  EXPECT_THAT(by_cluster["b"], UnorderedElementsAre("b1", "b2", "b3", "b4", "b5"));
}

// The read list changes under an open stream: [a] -> [a, b] -> [b], as in a
// migration from a to b (writes move to b first, then reads follow).
TEST_F(DualConsumeTest, OpenStreamFollowsReadListChangesWithoutReconnecting) {
  StartNode();
  Ferry({"topics", "create", "orders", "--cluster", "a", "--partitions", "1"});
  Ferry({"topics", "create", "orders", "--cluster", "b", "--partitions", "1"});
  Ferry({"routes", "put", "--topic", "orders", "--write", "a", "--read", "a"});
  Ferry({"produce", "--topic", "orders", "--key", "k"}, "a1\na2\na3\n");
  SubscriberStream stream(node_->grpc_address(), MakeOpen("g", {"orders"}));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  std::vector<v1::ReceivedMessage> from_a = stream.Take(3, kWait);
  ASSERT_THAT(ByCluster(from_a),
              ElementsAre(::testing::Pair("a", ElementsAre("a1", "a2", "a3"))));
  ASSERT_TRUE(stream.Ack({from_a[0].receipt()}));

  // Writes move to b; b is not read yet.
  Ferry({"routes", "put", "--topic", "orders", "--write", "b", "--read", "a"});
  Ferry({"produce", "--topic", "orders", "--key", "k"}, "b1\nb2\n");
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value()) << "b is not read yet";

  // Reads add b: what was written to b before comes, on the same stream.
  Ferry({"routes", "put", "--topic", "orders", "--write", "b", "--read", "a,b"});
  std::vector<v1::ReceivedMessage> from_b = stream.Take(2, kWait);
  EXPECT_THAT(ByCluster(from_b),
              ElementsAre(::testing::Pair("b", ElementsAre("b1", "b2"))));
  ASSERT_TRUE(stream.Ack(ReceiptsOf(from_b)));

  // Reads drop a: a2 and a3 stay unacked; a is left at its acked prefix.
  Ferry({"routes", "put", "--topic", "orders", "--write", "a", "--read", "b"});
  const absl::Time give_up = absl::Now() + kWait;
  const auto a_in_flight = [&] { return Describe("a").partitions(0).in_flight(); };
  while (a_in_flight() > 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(a_in_flight(), 0) << "the node still holds a's messages";
  ASSERT_TRUE(stream.Ack({from_a[1].receipt(), from_a[2].receipt()}));
  const std::vector<v1::ReceiptResult> expired = stream.WaitReceiptResults(2, kWait);
  ASSERT_EQ(expired.size(), 2u);
  for (const auto& result : expired) {
    EXPECT_EQ(result.status().code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(result.status().message(), "receipt expired");
  }
  Ferry({"produce", "--topic", "orders", "--key", "k"}, "a4\n");
  Ferry({"routes", "put", "--topic", "orders", "--write", "b", "--read", "b"});
  Ferry({"produce", "--topic", "orders", "--key", "k"}, "b3\n");
  std::optional<v1::ReceivedMessage> b3 = stream.Next(kWait);
  ASSERT_TRUE(b3.has_value());
  EXPECT_EQ(b3->cluster(), "b");
  EXPECT_EQ(b3->value(), "b3");
  ASSERT_TRUE(stream.Ack({b3->receipt()}));
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value()) << "a is still read";
  EXPECT_FALSE(stream.ended());

  std::map<std::string, int64_t> committed;
  while ((committed = Committed("b")) != std::map<std::string, int64_t>{{"b", 3}} &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(committed, (std::map<std::string, int64_t>{{"b", 3}}));
  EXPECT_EQ(Committed("a"), (std::map<std::string, int64_t>{{"a", 1}}));
}

}  // namespace
}  // namespace ferry
