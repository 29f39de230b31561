// Issue 20 end to end, on a real Kafka broker and two ferryd nodes: an SDK
// with Fallback publishes keyed messages through both nodes; both nodes are
// killed (kill -9); after FallbackAfter the SDK publishes straight to the
// cluster; one node restarts and traffic returns through Ferry. No
// acknowledged message is lost, each key keeps its order in Kafka and lands
// in the Java partitioner's partition. Also: a setting pushed at runtime
// (ferry client-settings set) reaches a running SDK's node path, and a
// subscriber waits out the outage and then gets what was published directly.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ferry/client/publisher.h"
#include "ferry/client/subscriber.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/java_partitioner.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/publisher_batches.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;

constexpr int kPartitions = 3;
constexpr int kKeys = 12;
constexpr char kTopic[] = "orders.fallback";

std::string NodeYaml(const std::string& bootstrap) {
  return absl::StrCat(testing::MainClusterYaml(bootstrap),
                      "routes:\n"
                      "  - { topic: \"orders.*\", write: [main], fallback: true }\n"
                      "client: { refresh_interval: 1s }\n");
}

struct Sent {
  int key = 0;
  int seq = 0;
  std::future<client::PublishResult> future;
  client::PublishResult result;
};

class FallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = KafkaBroker::Start("fallback");
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    ASSERT_TRUE(broker_->CreateTopic(kTopic, kPartitions).ok());
    for (auto* node : {&node1_, &node2_}) {
      auto started = FerrydProcess::Start(NodeYaml(broker_->bootstrap()));
      ASSERT_TRUE(started.ok()) << started.status();
      *node = *std::move(started);
    }
  }

  std::unique_ptr<client::Publisher> NewPublisher() {
    std::string error;
    auto publisher = client::Publisher::Builder()
                         .Endpoints({node1_->grpc_address(), node2_->grpc_address()})
                         .Fallback(true)
                         .FallbackAfter(std::chrono::seconds(2))
                         .DeliveryTimeout(std::chrono::seconds(4))
                         .RequestTimeout(std::chrono::seconds(1))
                         .ClientId("fallback-test")
                         .Build(&error);
    EXPECT_NE(publisher, nullptr) << error;
    return publisher;
  }

  // Publishes one message every 5 ms, keys round-robin, for `period`.
  void Publish(client::Publisher& publisher, absl::Duration period) {
    const absl::Time end = absl::Now() + period;
    while (absl::Now() < end) {
      Sent sent;
      sent.key = static_cast<int>(sent_.size() % kKeys);
      sent.seq = next_seq_[sent.key]++;
      client::Message message{.key = absl::StrCat("key-", sent.key),
                              .value = absl::StrCat(sent.key, ":", sent.seq)};
      sent.future = publisher.Publish(kTopic, std::move(message));
      sent_.push_back(std::move(sent));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::unique_ptr<KafkaBroker> broker_;
  std::unique_ptr<FerrydProcess> node1_;
  std::unique_ptr<FerrydProcess> node2_;
  std::vector<Sent> sent_;
  std::map<int, int> next_seq_;
};

TEST_F(FallbackTest, PublishingContinuesStraightToKafkaWhileEveryNodeIsDown) {
  auto publisher = NewPublisher();
  ASSERT_NE(publisher, nullptr);
  Publish(*publisher, absl::Seconds(2));
  ASSERT_TRUE(publisher->Flush(std::chrono::seconds(10)));
  EXPECT_TRUE(publisher->Stats().config_fetched);
  EXPECT_EQ(publisher->Stats().direct_messages, 0u);

  const std::string node1_grpc = node1_->grpc_address();
  node1_->process().Signal(SIGKILL);
  node2_->process().Signal(SIGKILL);
  Publish(*publisher, absl::Seconds(8));
  EXPECT_TRUE(publisher->Stats().fallback_active);
  const uint64_t direct_during_outage = publisher->Stats().direct_messages;
  EXPECT_GT(direct_during_outage, 0u);

  // A node answers again at the same address: new messages go through it.
  auto restarted = FerrydProcess::Start(NodeYaml(broker_->bootstrap()),
                                        {{"FERRY_LISTEN_GRPC", node1_grpc}});
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  node1_ = *std::move(restarted);
  const uint64_t ferry_before_return = publisher->Stats().ferry_messages;
  Publish(*publisher, absl::Seconds(4));
  ASSERT_TRUE(publisher->Flush(std::chrono::seconds(30)));
  EXPECT_FALSE(publisher->Stats().fallback_active);
  EXPECT_GT(publisher->Stats().ferry_messages, ferry_before_return);

  // Every acknowledged message is in Kafka, in its key's Java partition, and
  // each key's acknowledged messages are in publish order.
  std::map<std::string, const Sent*> acked;  // by id
  size_t direct = 0;
  for (Sent& sent : sent_) {
    sent.result = sent.future.get();
    if (!sent.result.ok()) continue;
    acked[sent.result.id] = &sent;
    direct += sent.result.direct ? 1 : 0;
  }
  EXPECT_GT(direct, 0u);
  EXPECT_GT(acked.size(), sent_.size() * 9 / 10)
      << "most messages are acknowledged, through one path or the other";
  auto records = testing::ConsumeToEnd(broker_->bootstrap(), kTopic, {0, 1, 2},
                                       std::chrono::seconds(60));
  ASSERT_TRUE(records.ok()) << records.status();
  std::set<std::string> stored;
  std::map<int, int> last_seq;  // per key, in partition order
  for (const testing::ConsumedRecord& record : *records) {
    std::string id;
    for (const auto& [key, value] : record.headers) {
      if (key == "ferry.id") id = value;
    }
    if (!stored.insert(id).second) continue;  // a duplicate after a failover
    std::vector<std::string> parts = absl::StrSplit(record.value, ':');
    int key = 0;
    int seq = 0;
    ASSERT_TRUE(parts.size() == 2 && absl::SimpleAtoi(parts[0], &key) &&
                absl::SimpleAtoi(parts[1], &seq));
    EXPECT_EQ(record.partition, testing::JavaPartition(record.key, kPartitions))
        << record.key;
    if (!acked.contains(id)) continue;  // failed for the client: may be anywhere
    auto [it, first] = last_seq.try_emplace(key, seq);
    if (!first) {
      EXPECT_GT(seq, it->second) << "key " << key << " out of order";
      it->second = seq;
    }
  }
  size_t lost = 0;
  for (const auto& [id, sent] : acked) lost += stored.contains(id) ? 0 : 1;
  EXPECT_EQ(lost, 0u) << "acknowledged messages missing from Kafka";
  std::cout << "published " << sent_.size() << ", acknowledged " << acked.size()
            << " (direct " << direct << "), records in Kafka " << records->size() << " ("
            << records->size() - stored.size() << " duplicates), lost " << lost << "\n";

  // The restarted node heard of the fallback when the SDK reconnected.
  auto [code, metrics] = node1_->HttpGet("/metrics");
  EXPECT_NE(metrics.find("ferry_client_fallback_messages_total"), std::string::npos);
  EXPECT_EQ(metrics.find("ferry_client_fallback_messages_total 0\n"), std::string::npos);
  EXPECT_NE(node1_->Log().find("client fallback-test published"), std::string::npos);
}

uint64_t BatchesFor(client::Publisher& publisher, int count) {
  return testing::NodeBatchesFor(publisher, kTopic, count);
}

TEST_F(FallbackTest, SettingPushedAtRuntimeReachesARunningPublisher) {
  auto publisher = NewPublisher();
  ASSERT_NE(publisher, nullptr);
  EXPECT_EQ(publisher->Stats().linger, std::chrono::milliseconds(5));  // the default
  EXPECT_EQ(publisher->Stats().max_batch_messages, 500);
  EXPECT_LE(BatchesFor(*publisher, 200), 10u);

  auto set =
      testing::RunFerryCli({"--server", node2_->grpc_address(), "client-settings", "set",
                            "--linger", "40ms", "--max-batch-messages", "5"});
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->exit_code, 0) << set->err;
  EXPECT_NE(set->out.find("linger            40ms"), std::string::npos) << set->out;

  // Refreshed within client.refresh_interval (1 s) from either node.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (publisher->Stats().max_batch_messages != 5 && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(publisher->Stats().linger, std::chrono::milliseconds(40));
  EXPECT_EQ(publisher->Stats().max_batch_messages, 5);
  // The node path follows: 200 messages at most 5 a batch.
  EXPECT_GE(BatchesFor(*publisher, 200), 40u);
  auto show = testing::RunFerryCli(
      {"--server", node1_->grpc_address(), "client-settings", "show"});
  ASSERT_TRUE(show.ok()) << show.status();
  EXPECT_NE(show->out.find("linger            40ms"), std::string::npos) << show->out;
  EXPECT_NE(show->out.find("delivery timeout  (SDK default)"), std::string::npos);

  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel(node2_->grpc_address(), grpc::InsecureChannelCredentials()));
  v1::SetClientSettingsRequest bad;
  bad.mutable_settings()->set_max_batch_messages(200000);
  v1::ClientSettings applied;
  grpc::ClientContext context;
  grpc::Status status = admin->SetClientSettings(&context, bad, &applied);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "settings.max_batch_messages: 200000 is not in 1..100000");
}

// Consumers do not fall back: while no node answers they get nothing; when a
// node returns they reconnect and get everything published meanwhile,
// straight to Kafka by a fallback publisher.
TEST_F(FallbackTest, SubscriberWaitsOutAFullOutageAndGetsWhatWasPublishedDirectly) {
  auto publisher = NewPublisher();
  ASSERT_NE(publisher, nullptr);
  std::string error;
  auto subscriber =
      client::Subscriber::Builder()
          .Endpoints({node1_->grpc_address(), node2_->grpc_address()})
          .Group("fallback-consumers")
          .Topics({kTopic})
          .StartAt(client::StartPosition::Earliest())
          .ReconnectBackoff(std::chrono::milliseconds(100), std::chrono::seconds(1))
          .Build(&error);
  ASSERT_NE(subscriber, nullptr) << error;
  std::set<std::string> wanted;
  std::set<std::string> received;
  auto publish = [&](const std::string& prefix) {
    std::vector<std::future<client::PublishResult>> futures;
    for (int i = 0; i < 60; ++i) {
      futures.push_back(publisher->Publish(
          kTopic,
          {.key = absl::StrCat("key-", i % kKeys), .value = absl::StrCat(prefix, i)}));
      wanted.insert(absl::StrCat(prefix, i));
    }
    std::vector<client::PublishResult> results;
    for (auto& future : futures) results.push_back(future.get());
    return results;
  };
  auto drain = [&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (
        !std::includes(received.begin(), received.end(), wanted.begin(), wanted.end()) &&
        absl::Now() < deadline) {
      if (auto m = subscriber->Next(std::chrono::milliseconds(200))) {
        received.insert(m->message().value);
        m->Ack();
      }
    }
  };

  for (const client::PublishResult& r : publish("before-"))
    ASSERT_TRUE(r.ok()) << r.error;
  drain();
  const std::string node1_grpc = node1_->grpc_address();
  node1_->process().Signal(SIGKILL);
  node2_->process().Signal(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // FallbackAfter
  for (const client::PublishResult& r : publish("during-")) {
    ASSERT_TRUE(r.ok() && r.direct) << r.error;
  }
  // The SDK may still hand out copies of earlier messages it had buffered
  // (redeliveries that arrived before the kill); nothing published during the
  // outage can arrive while no node answers.
  const absl::Time quiet_until = absl::Now() + absl::Seconds(1);
  while (absl::Now() < quiet_until) {
    auto m = subscriber->Next(std::chrono::milliseconds(200));
    if (!m) continue;
    EXPECT_TRUE(absl::StartsWith(m->message().value, "before-"))
        << m->message().value << " was delivered while no node answers";
    received.insert(m->message().value);
  }

  auto restarted = FerrydProcess::Start(NodeYaml(broker_->bootstrap()),
                                        {{"FERRY_LISTEN_GRPC", node1_grpc}});
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  node1_ = *std::move(restarted);
  drain();
  std::vector<std::string> missing;
  std::set_difference(wanted.begin(), wanted.end(), received.begin(), received.end(),
                      std::back_inserter(missing));
  EXPECT_TRUE(missing.empty()) << missing.size() << " never delivered, e.g. "
                               << missing[0];
}

}  // namespace
}  // namespace ferry
