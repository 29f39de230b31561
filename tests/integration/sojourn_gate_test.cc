// Admission by wait through a real ferryd: a healthy cluster under a
// multi-topic burst is never refused; a cluster slower than its load gets
// RESOURCE_EXHAUSTED refusals instead of timeouts in ferryd's queue, while
// every message still lands through the C++ SDK's retries; and a topic that
// cannot be written (no leader) refuses only its own batches.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <future>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "ferry/client/publisher.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/mock_cluster.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MockKafkaCluster;
using ::ferry::testing::SharedBroker;

// The sum of the /metrics series that start with `prefix`; -1 if none does.
double MetricSum(const FerrydProcess& node, const std::string& prefix) {
  std::istringstream metrics(node.HttpGet("/metrics").second);
  double sum = -1;
  for (std::string line; std::getline(metrics, line);) {
    const size_t space = line.rfind(' ');
    if (!line.starts_with(prefix) || space == std::string::npos) continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(space + 1));
  }
  return sum;
}

constexpr char kRefused[] = "ferry_publish_refused_messages_total{cluster=\"main\"}";
constexpr char kFailed[] = "ferry_publish_errors_total{cluster=\"main\"";

// A node on librdkafka's mock cluster with publish.timeout `timeout` and
// publish.drain_share `share`.
std::string MockNodeYaml(const MockKafkaCluster& mock, std::string_view timeout,
                         std::string_view share) {
  return fmt::format(
      "clusters:\n  main: {{ type: kafka, bootstrap: \"{}\" }}\n"
      // The mock serves no CreateTopics: the control topic is made by the test.
      "control: {{ topic: __ferry_control }}\n"
      "publish:\n  timeout: {}\n  drain_share: {}\n",
      mock.bootstrap(), timeout, share);
}

std::unique_ptr<client::Publisher> NewPublisher(const FerrydProcess& node,
                                                int batch_messages = 500) {
  std::string error;
  auto publisher = client::Publisher::Builder()
                       .Endpoints({node.grpc_address()})
                       .MaxBatchMessages(batch_messages)
                       .DeliveryTimeout(std::chrono::seconds(90))
                       .Build(&error);
  EXPECT_NE(publisher, nullptr) << error;
  return publisher;
}

// Waits for every result; returns how many failed.
int FailedOf(std::vector<std::future<client::PublishResult>>& results) {
  int failed = 0;
  for (auto& result : results) {
    const client::PublishResult r = result.get();
    if (!r.ok() && ++failed <= 5) ADD_FAILURE() << r.code << " " << r.error;
  }
  return failed;
}

// scale_bench's 10-topic pass, smaller: one publisher's 20 MB burst over 10
// topics reaches a fresh node at once. The cluster drains it well within the
// budget, so nothing is refused (the rate gates refused this).
TEST(SojournGate, AHealthyMultiTopicBurstIsNeverRefused) {
  constexpr int kTopics = 10, kMessages = 20000;
  auto* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  std::vector<std::string> topics;
  for (int t = 0; t < kTopics; ++t) {
    topics.push_back(fmt::format("sojourn.burst.{}", t));
    ASSERT_TRUE(broker->CreateTopic(topics.back(), 3).ok());
  }
  auto node = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();
  auto publisher = NewPublisher(**node);
  ASSERT_NE(publisher, nullptr);

  const std::string value(1024, 'v');
  std::vector<std::future<client::PublishResult>> results;
  for (int i = 0; i < kMessages; ++i) {
    results.push_back(publisher->Publish(
        topics[i % kTopics], {.key = fmt::format("k{}", i % 1000), .value = value}));
  }
  EXPECT_EQ(FailedOf(results), 0);
  EXPECT_EQ(MetricSum(**node, kRefused), 0) << (*node)->Log();
}

// librdkafka sends one produce request per partition, at most 5 in flight,
// so with a 400 ms round trip 40 busy partitions take ~3 s to cycle. The
// test publishes a steady stream (a batch of 20 every 20 ms) faster than the
// mock drains it; ferryd refuses a batch once the topic's oldest has waited
// 500 ms (25 % of a 2 s publish.timeout, room for a loaded machine), so what
// it admits drains within the timeout, and the SDK sends the refused ones
// again later. With drain_share 100 % (no refusal) 200 of these 1,200 timed
// out in ferryd's queue (16:04 UTC, load 22).
TEST(SojournGate, AClusterSlowerThanItsLoadRefusesAndEveryMessageLandsThroughRetries) {
  constexpr int kPartitions = 40, kBatch = 20, kBatches = 60;
  auto mock = MockKafkaCluster::Start(1);
  ASSERT_TRUE(mock.ok()) << mock.status();
  ASSERT_TRUE((*mock)->CreateTopic("__ferry_control", 1).ok());
  ASSERT_TRUE((*mock)->CreateTopic("orders", kPartitions).ok());
  auto node = FerrydProcess::Start(MockNodeYaml(**mock, "2s", "25%"));
  ASSERT_TRUE(node.ok()) << node.status();
  auto publisher = NewPublisher(**node, kBatch);
  ASSERT_NE(publisher, nullptr);
  // Every partition's leader known before the broker slows down.
  ASSERT_TRUE(publisher->Publish("orders", {.value = "warm"}).get().ok());

  ASSERT_EQ(rd_kafka_mock_broker_set_rtt((*mock)->raw(), 1, 400),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  const std::string value(1024, 'v');
  std::vector<std::future<client::PublishResult>> results;
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kBatch; ++i) {
      results.push_back(publisher->Publish("orders", {.value = value}));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int failed = FailedOf(results);
  const double refused = MetricSum(**node, kRefused);
  const double timed_out = std::max(MetricSum(**node, kFailed), 0.0);
  std::printf("[ measured ] %d of %d acknowledged; ferryd refused %.0f, timed out %.0f\n",
              kBatch * kBatches - failed, kBatch * kBatches, refused, timed_out);
  EXPECT_EQ(failed, 0);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(timed_out, 0) << (*node)->Log();
}

// Sends `topic` batches of 10 messages one after another for `duration`;
// returns each result's code.
std::vector<int> PublishFor(v1::Publisher::Stub& stub, const std::string& topic,
                            absl::Duration duration) {
  std::vector<int> codes;
  const absl::Time end = absl::Now() + duration;
  while (absl::Now() < end) {
    v1::PublishRequest request;
    request.set_topic(topic);
    for (int i = 0; i < 10; ++i) request.add_messages()->set_value("v");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::PublishResponse response;
    const grpc::Status status = stub.Publish(&context, request, &response);
    if (!status.ok()) {
      ADD_FAILURE() << "Publish: " << status.error_message();
      break;
    }
    for (const v1::PublishResult& r : response.results())
      codes.push_back(r.status().code());
    absl::SleepFor(absl::Milliseconds(20));
  }
  return codes;
}

// The case a per-cluster gate got wrong: a topic without a leader beside a
// healthy one. The broken topic's batches wait until they time out, and
// later ones are refused; the healthy topic's are all written.
TEST(SojournGate, ATopicWithoutLeaderRefusesOnlyItsOwnBatches) {
  auto mock = MockKafkaCluster::Start(1);
  ASSERT_TRUE(mock.ok()) << mock.status();
  ASSERT_TRUE((*mock)->CreateTopic("__ferry_control", 1).ok());
  ASSERT_TRUE((*mock)->CreateTopic("orders", 4).ok());
  ASSERT_TRUE((*mock)->CreateTopic("orders.broken", 1).ok());
  // A batch is refused once its topic's oldest has waited 500 ms.
  auto node = FerrydProcess::Start(MockNodeYaml(**mock, "1s", "50%"));
  ASSERT_TRUE(node.ok()) << node.status();
  auto stub = v1::Publisher::NewStub(
      grpc::CreateChannel((*node)->grpc_address(), grpc::InsecureChannelCredentials()));
  // Both topics' leaders known; then the broken one loses its leader.
  for (const char* topic : {"orders", "orders.broken"}) {
    const std::vector<int> codes = PublishFor(*stub, topic, absl::Milliseconds(1));
    ASSERT_FALSE(codes.empty());
    ASSERT_EQ(codes[0], 0) << topic << ": " << (*node)->Log();
  }
  ASSERT_EQ(rd_kafka_mock_partition_set_leader((*mock)->raw(), "orders.broken", 0, -1),
            RD_KAFKA_RESP_ERR_NO_ERROR);

  constexpr absl::Duration kFor = absl::Seconds(5);
  std::vector<std::future<std::vector<int>>> broken;
  // Senders 300 ms apart: a batch arrives while an earlier one has waited
  // past 500 ms (each waits the whole second before it fails).
  for (int sender = 0; sender < 3; ++sender) {
    broken.push_back(std::async(std::launch::async, [&, sender] {
      absl::SleepFor(absl::Milliseconds(300) * sender);
      return PublishFor(*stub, "orders.broken", kFor);
    }));
  }
  const std::vector<int> healthy = PublishFor(*stub, "orders", kFor);
  int broken_refused = 0, broken_acked = 0;
  for (auto& codes : broken) {
    for (int code : codes.get()) {
      broken_refused += code == grpc::StatusCode::RESOURCE_EXHAUSTED;
      broken_acked += code == 0;
    }
  }
  int healthy_acked = 0;
  for (int code : healthy) {
    healthy_acked += code == 0;
    EXPECT_EQ(code, 0) << "the healthy topic's batches are all written";
  }
  std::printf(
      "[ measured ] healthy: %d of %zu acknowledged; broken: %d refused, %d "
      "acknowledged\n",
      healthy_acked, healthy.size(), broken_refused, broken_acked);
  EXPECT_GT(healthy_acked, 100);
  EXPECT_GT(broken_refused, 0) << "the broken topic's batches were refused meanwhile";
  EXPECT_EQ(broken_acked, 0);
}

}  // namespace
}  // namespace ferry
