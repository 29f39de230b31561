// kill -9 of a ferryd on the embedded store while it publishes 100k messages:
// after a restart every acknowledged message is where its acknowledgement
// said, offsets are dense, and committed offsets survive a kill -9 as well.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "ferry/client/publisher.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;

constexpr int kMessages = 100000;
constexpr int kPartitions = 4;

class EmbeddedCrashTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/ferry-embedded-crash-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<FerrydProcess> Node() {
    auto node =
        FerrydProcess::Start(absl::StrCat("clusters:\n  main: { type: embedded, path: \"",
                                          dir_, "/store\", durability: ", GetParam(),
                                          " }\nsubscribe:\n  commit_interval: 100ms\n"));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static v1::Topic Describe(const FerrydProcess& node, const std::string& topic) {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::DescribeTopicRequest request;
    request.set_name(topic);
    v1::Topic out;
    grpc::Status status = admin->DescribeTopic(&context, request, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  std::string dir_;
};

TEST_P(EmbeddedCrashTest, KillNineLosesNoAcknowledgedMessageAndKeepsOffsetsDense) {
  const std::string topic = "crash";
  auto node = Node();
  ASSERT_NE(node, nullptr);
  {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(node->grpc_address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::CreateTopicRequest request;
    request.set_name(topic);
    request.set_partitions(kPartitions);
    v1::Topic created;
    ASSERT_TRUE(admin->CreateTopic(&context, request, &created).ok());
  }

  // Publish; kill -9 the node once 40% were acknowledged.
  std::string error;
  auto publisher = client::Publisher::Builder()
                       .Endpoints({node->grpc_address()})
                       .DeliveryTimeout(std::chrono::seconds(3))
                       .Build(&error);
  ASSERT_NE(publisher, nullptr) << error;
  std::vector<std::future<client::PublishResult>> results;
  for (int i = 0; i < kMessages; ++i) {
    results.push_back(publisher->Publish(
        topic, {.key = absl::StrCat("k", i % 50), .value = absl::StrCat("v", i)}));
  }
  std::map<std::string, std::pair<int32_t, int64_t>> acked;  // value -> where
  for (int i = 0; i < kMessages; ++i) {
    client::PublishResult r = results[i].get();
    if (r.ok()) acked[absl::StrCat("v", i)] = {r.partition, r.offset};
    if (i == kMessages * 4 / 10) node->process().Signal(SIGKILL);
  }
  publisher.reset();
  std::printf("[ measured ] acknowledged before the kill: %zu of %d\n", acked.size(),
              kMessages);
  ASSERT_GE(acked.size(), static_cast<size_t>(kMessages * 4 / 10));
  node.reset();

  // Restart on the same store and read everything back through Ferry.
  node = Node();
  ASSERT_NE(node, nullptr);
  int64_t stored = 0;
  const v1::Topic described = Describe(*node, topic);
  for (const auto& p : described.partitions()) {
    EXPECT_EQ(p.low_watermark(), 0);
    stored += p.high_watermark();
  }
  ASSERT_GE(stored, static_cast<int64_t>(acked.size()));
  v1::SubscriptionOpen open = MakeOpen("crash-readers", {topic});
  open.mutable_flow()->set_max_outstanding_messages(5000);
  auto stream = std::make_unique<SubscriberStream>(node->grpc_address(), open);
  std::map<int32_t, std::set<int64_t>> offsets;
  std::map<std::string, std::pair<int32_t, int64_t>> found;
  int64_t received = 0;
  int64_t redelivered = 0;
  // Small takes, acked at once: a take that waited for a full batch would
  // hold the last messages unacked until their 30 s ack deadline passed.
  const absl::Time give_up = absl::Now() + absl::Seconds(90);
  absl::Time last_message = absl::Now();
  while (absl::Now() < give_up) {
    std::vector<v1::ReceivedMessage> batch = stream->Take(1000, absl::Milliseconds(100));
    if (batch.empty()) {
      // Past the watermarks nothing more may come; wait a little to see.
      if (received >= stored && absl::Now() - last_message > absl::Seconds(2)) break;
      continue;
    }
    last_message = absl::Now();
    std::vector<std::string> receipts;
    for (const auto& m : batch) {
      offsets[m.partition()].insert(m.offset());
      found[m.value()] = {m.partition(), m.offset()};
      receipts.push_back(m.receipt());
      if (m.delivery_attempt() > 1) ++redelivered;
    }
    received += static_cast<int64_t>(batch.size());
    ASSERT_TRUE(stream->Ack(receipts));
  }
  std::printf("[ measured ] read back %ld records, %zu distinct values\n",
              static_cast<long>(received), found.size());
  EXPECT_EQ(received, stored) << "every stored record once, nothing beyond";
  EXPECT_EQ(redelivered, 0);
  for (const auto& [value, where] : acked) {
    auto it = found.find(value);
    ASSERT_NE(it, found.end()) << "acknowledged " << value << " is missing";
    EXPECT_EQ(it->second, where) << value << " is not where its ack said";
  }
  for (const auto& [partition, set] : offsets) {
    EXPECT_EQ(static_cast<int64_t>(set.size()), *set.rbegin() + 1)
        << "offsets of partition " << partition << " are not dense";
  }

  // Wait until the acks are committed, kill -9 again: the group resumes at
  // the end, with nothing delivered twice.
  const absl::Time until = absl::Now() + absl::Seconds(30);
  bool committed = false;
  while (!committed && absl::Now() < until) {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(node->grpc_address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::DescribeGroupRequest request;
    request.set_group("crash-readers");
    v1::Group group;
    if (admin->DescribeGroup(&context, request, &group).ok()) {
      int64_t lag = 0;
      for (const auto& p : group.partitions()) lag += p.lag();
      committed = group.partitions_size() == kPartitions && lag == 0;
    }
    if (!committed) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(committed) << "acks were never committed";
  node->process().Signal(SIGKILL);
  stream.reset();
  node.reset();
  node = Node();
  ASSERT_NE(node, nullptr);
  SubscriberStream again(node->grpc_address(), open);
  ASSERT_TRUE(again.WaitOpened().has_value());
  EXPECT_FALSE(again.Next(absl::Seconds(2)).has_value())
      << "a committed message was delivered again after kill -9";
}

INSTANTIATE_TEST_SUITE_P(Durability, EmbeddedCrashTest,
                         ::testing::Values("sync", "batch"));

}  // namespace
}  // namespace ferry
