// A busy cluster is not a failed one: records that time out in ferryd's
// queue while the cluster keeps acknowledging others must not open its
// breaker (which would purge the queue and make every client resend), and a
// cluster that stops answering must still open it. Driven through a real
// ferryd against librdkafka's mock cluster, slowed with a round-trip time.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "absl/time/clock.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/mock_cluster.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MockKafkaCluster;

constexpr int kPartitions = 40;
constexpr char kOpen[] = "ferry_cluster_breaker_state{cluster=\"main\"} 2";
constexpr char kClosed[] = "ferry_cluster_breaker_state{cluster=\"main\"} 0";

struct Outcomes {
  int ok = 0;
  int unavailable = 0;
  int other = 0;
};

// One request of `n` keyed messages spread over every partition.
Outcomes PublishSpread(v1::Publisher::Stub& stub, int n) {
  v1::PublishRequest request;
  request.set_topic("orders");
  for (int i = 0; i < n; ++i) {
    v1::OutgoingMessage* m = request.add_messages();
    m->set_key(fmt::format("k{}", i));
    m->set_value("v");
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::PublishResponse response;
  Outcomes out;
  grpc::Status status = stub.Publish(&context, request, &response);
  if (!status.ok()) {
    ADD_FAILURE() << "Publish: " << status.error_message();
    return out;
  }
  for (const v1::PublishResult& r : response.results()) {
    if (r.status().code() == 0) {
      ++out.ok;
    } else if (r.status().code() == grpc::StatusCode::UNAVAILABLE) {
      ++out.unavailable;
    } else {
      ++out.other;
    }
  }
  return out;
}

std::string Metrics(const FerrydProcess& node) { return node.HttpGet("/metrics").second; }

TEST(BreakerBusyClusterTest, TimeoutsWhileTheClusterAcknowledgesKeepTheBreakerClosed) {
  auto mock = MockKafkaCluster::Start(1);
  ASSERT_TRUE(mock.ok()) << mock.status();
  ASSERT_TRUE((*mock)->CreateTopic("__ferry_control", 1).ok());
  ASSERT_TRUE((*mock)->CreateTopic("orders", kPartitions).ok());
  auto node = FerrydProcess::Start(fmt::format(
      "clusters:\n  main: {{ type: kafka, bootstrap: \"{}\" }}\n"
      // The mock serves no CreateTopics: the control topic is the one made above.
      "control: {{ topic: __ferry_control }}\n"
      "publish:\n  timeout: 1s\n",
      (*mock)->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();
  auto stub = v1::Publisher::NewStub(
      grpc::CreateChannel((*node)->grpc_address(), grpc::InsecureChannelCredentials()));
  // Every partition's leader known before the broker slows down.
  ASSERT_EQ(PublishSpread(*stub, 4 * kPartitions).ok, 4 * kPartitions) << (*node)->Log();

  // Given a broker that answers each request after 400 ms: librdkafka sends
  // one produce request per partition, at most 5 in flight, so 40 partitions
  // take ~3 s to drain and most records time out after 1 s in the queue,
  // while acknowledgements keep coming.
  ASSERT_EQ(rd_kafka_mock_broker_set_rtt((*mock)->raw(), 1, 400),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  Outcomes busy;
  for (int round = 0; round < 3; ++round) {
    const Outcomes o = PublishSpread(*stub, 10 * kPartitions);
    busy.ok += o.ok;
    busy.unavailable += o.unavailable;
    busy.other += o.other;
  }
  std::printf("[ measured ] busy cluster: %d acknowledged, %d UNAVAILABLE, %d other\n",
              busy.ok, busy.unavailable, busy.other);
  // Enough timeouts to open the breaker if they counted (>= 20, >= 50 %).
  ASSERT_GE(busy.unavailable, 20);
  ASSERT_GE(busy.unavailable, busy.ok);
  ASSERT_GT(busy.ok, 0) << "the slowed cluster acknowledged nothing";
  EXPECT_EQ(busy.other, 0);
  absl::SleepFor(absl::Seconds(2));  // a tick of the breaker's watcher
  const std::string busy_metrics = Metrics(**node);
  EXPECT_NE(busy_metrics.find(kClosed), std::string::npos) << busy_metrics;

  // Given the same cluster gone, its breaker opens.
  ASSERT_EQ(rd_kafka_mock_broker_set_rtt((*mock)->raw(), 1, 0),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  (*mock)->SetBrokerDown(1, true);
  const absl::Time down = absl::Now();
  while (Metrics(**node).find(kOpen) == std::string::npos &&
         absl::Now() - down < absl::Seconds(20)) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_NE(Metrics(**node).find(kOpen), std::string::npos) << (*node)->Log();
}

}  // namespace
}  // namespace ferry
