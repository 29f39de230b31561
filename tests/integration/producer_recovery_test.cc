// The Kafka producer under failure, driven through ferryd's gRPC API against
// librdkafka's mock cluster (which injects broker errors and outages):
// - a fatal idempotent-producer error (librdkafka gives the producer up, e.g.
//   when the broker reports a sequence gap) must not take publishing down
//   until a restart: ferryd fails the affected messages retryably, creates a
//   new producer and publishes again;
// - shutdown does not wait for the publish timeout of records a down broker
//   holds: once the drain grace is over they fail.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <future>

#include "absl/functional/function_ref.h"
#include "absl/time/clock.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/mock_cluster.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MockKafkaCluster;

// Asks every `every` until `ask` says yes or `limit` passed; its last answer.
bool AskUntil(absl::Duration limit, absl::Duration every, absl::FunctionRef<bool()> ask) {
  const absl::Time until = absl::Now() + limit;
  while (!ask()) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(every);
  }
  return true;
}

// One message, unary; the per-message status (or the call's, if it failed).
v1::Status PublishOne(v1::Publisher::Stub& stub, const std::string& topic, int i) {
  v1::PublishRequest request;
  request.set_topic(topic);
  v1::OutgoingMessage* m = request.add_messages();
  m->set_key(fmt::format("k{}", i % 7));
  m->set_value(fmt::format("v{}", i));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::PublishResponse response;
  grpc::Status status = stub.Publish(&context, request, &response);
  v1::Status out;
  if (!status.ok()) {
    out.set_code(status.error_code());
    out.set_message(status.error_message());
  } else if (response.results_size() == 1) {
    out = response.results(0).status();
  } else {
    out.set_code(grpc::StatusCode::INTERNAL);
    out.set_message("no result");
  }
  return out;
}

TEST(ProducerRecoveryTest, PublishingRecoversAfterAFatalProducerError) {
  auto mock = MockKafkaCluster::Start(1);
  ASSERT_TRUE(mock.ok()) << mock.status();
  // ferryd's control topic: the mock does not serve CreateTopics.
  ASSERT_TRUE((*mock)->CreateTopic("__ferry_control", 1).ok());
  ASSERT_TRUE((*mock)->CreateTopic("orders", 2).ok());
  auto node = FerrydProcess::Start(fmt::format(
      "clusters:\n  main: {{ type: kafka, bootstrap: \"{}\" }}\n"
      // The mock serves no CreateTopics: the control topic is the one made above.
      "control: {{ topic: __ferry_control }}\n",
      (*mock)->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();
  auto stub = v1::Publisher::NewStub(
      grpc::CreateChannel((*node)->grpc_address(), grpc::InsecureChannelCredentials()));

  int i = 0;
  ASSERT_EQ(PublishOne(*stub, "orders", i++).code(), 0);

  // A sequence gap reported by the broker is fatal for an idempotent
  // producer that is not transactional.
  (*mock)->PushRequestErrors(testing::kProduceApiKey,
                             {RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                              RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER});
  int failed = 0, ok_after_failure = 0;
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (ok_after_failure < 20 && absl::Now() < until) {
    v1::Status status = PublishOne(*stub, "orders", i++);
    if (status.code() != 0) {
      ++failed;
      EXPECT_TRUE(status.retryable()) << status.code() << " " << status.message();
      ok_after_failure = 0;
      absl::SleepFor(absl::Milliseconds(100));
    } else if (failed > 0) {
      ++ok_after_failure;
    }
  }
  std::printf("[ measured ] %d publishes failed (retryable) before the new producer\n",
              failed);
  const std::string log = (*node)->Log();
  ASSERT_NE(log.find("fatal producer error"), std::string::npos)
      << "the injected error did not reach the fatal path; log:\n"
      << log;
  EXPECT_GT(failed, 0);
  EXPECT_EQ(ok_after_failure, 20) << "publishing did not recover; log:\n" << log;

  // The cluster is reported up again.
  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel((*node)->grpc_address(), grpc::InsecureChannelCredentials()));
  const bool up = AskUntil(absl::Seconds(20), absl::Milliseconds(200), [&] {
    grpc::ClientContext context;
    v1::ListClustersResponse response;
    return admin->ListClusters(&context, v1::ListClustersRequest(), &response).ok() &&
           response.clusters_size() == 1 &&
           response.clusters(0).state() == v1::Cluster::STATE_UP;
  });
  EXPECT_TRUE(up) << "cluster still reported down";
}

TEST(ProducerRecoveryTest, ShutdownFailsPublishesWaitingForADownBrokerAfterTheGrace) {
  auto mock = MockKafkaCluster::Start(1);
  ASSERT_TRUE(mock.ok()) << mock.status();
  ASSERT_TRUE((*mock)->CreateTopic("__ferry_control", 1).ok());
  ASSERT_TRUE((*mock)->CreateTopic("orders", 1).ok());
  auto node = FerrydProcess::Start(fmt::format(
      "clusters:\n  main: {{ type: kafka, bootstrap: \"{}\" }}\n"
      // The mock serves no CreateTopics: the control topic is the one made above.
      "control: {{ topic: __ferry_control }}\n"
      "publish:\n  timeout: 60s\nshutdown:\n  grace: 1s\n",
      (*mock)->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();
  auto stub = v1::Publisher::NewStub(
      grpc::CreateChannel((*node)->grpc_address(), grpc::InsecureChannelCredentials()));
  ASSERT_EQ(PublishOne(*stub, "orders", 0).code(), 0);
  // The node lists itself once its control plane read its own heartbeat back.
  // Until then its start-up admin calls may still be waiting on the broker,
  // which this test is not about (a loaded machine delayed them past the
  // broker going down, and shutdown waited for their admin timeout).
  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel((*node)->grpc_address(), grpc::InsecureChannelCredentials()));
  const bool listed = AskUntil(absl::Seconds(20), absl::Milliseconds(100), [&] {
    grpc::ClientContext context;
    v1::ListNodesResponse nodes;
    return admin->ListNodes(&context, v1::ListNodesRequest(), &nodes).ok() &&
           nodes.nodes_size() > 0;
  });
  ASSERT_TRUE(listed) << "the node never read its own heartbeat back";

  (*mock)->SetBrokerDown(1, true);
  auto waiting =
      std::async(std::launch::async, [&] { return PublishOne(*stub, "orders", 1); });
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(2)), std::future_status::timeout)
      << "the publish did not wait for the down broker";

  const absl::Time term = absl::Now();
  (*node)->process().Signal(SIGTERM);
  absl::StatusOr<int> exit = (*node)->process().Wait(absl::Seconds(30));
  const absl::Duration took = absl::Now() - term;
  ASSERT_TRUE(exit.ok()) << exit.status() << "\n" << (*node)->Log();
  std::printf(
      "[ measured ] ferryd exited %s after SIGTERM (grace 1s, publish timeout 60s)\n",
      absl::FormatDuration(took).c_str());
  EXPECT_EQ(*exit, 0) << (*node)->Log();
  EXPECT_LT(took, absl::Seconds(10)) << (*node)->Log();
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_NE(waiting.get().code(), 0) << "a publish to a down broker was answered OK";
}

}  // namespace
}  // namespace ferry
