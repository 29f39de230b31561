// A cluster that does not answer (every broker down) must cost only the
// calls that need it: opening subscriptions on it waits for its metadata, but
// the node keeps answering everything else meanwhile (issue 24, fault 5: the
// open used to block one of gRPC's few callback threads per stream for up to
// the admin timeout).
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "absl/time/clock.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/mock_cluster.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MockKafkaCluster;
using ::ferry::testing::SubscriberStream;

TEST(SlowClusterTest, OpensWaitingForAnUnreachableClusterDoNotStallTheNode) {
  constexpr int kStreams = 16;
  auto mock = MockKafkaCluster::Start(1);
  ASSERT_TRUE(mock.ok()) << mock.status();
  ASSERT_TRUE((*mock)->CreateTopic("__ferry_control", 1).ok());
  ASSERT_TRUE((*mock)->CreateTopic("orders", 1).ok());
  auto node = FerrydProcess::Start(fmt::format(
      "clusters:\n  main: {{ type: kafka, bootstrap: \"{}\" }}\n"
      // The mock serves no CreateTopics: the control topic is the one made above.
      "control: {{ topic: __ferry_control }}\n",
      (*mock)->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();
  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel((*node)->grpc_address(), grpc::InsecureChannelCredentials()));

  // Given every broker down, many streams opening on the cluster...
  (*mock)->SetBrokerDown(1, true);
  std::vector<std::unique_ptr<SubscriberStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<SubscriberStream>(
        (*node)->grpc_address(),
        testing::MakeOpen(fmt::format("slow-{}", i), {"orders"})));
  }
  absl::SleepFor(absl::Seconds(1));  // let every open reach the node

  // ...then other calls are still answered at once.
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::Node reply;
    grpc::Status status = admin->GetNode(&context, v1::GetNodeRequest(), &reply);
    ASSERT_TRUE(status.ok()) << "GetNode #" << i << ": " << status.error_message() << "\n"
                             << (*node)->Log();
  }
  (*mock)->SetBrokerDown(1, false);
}

}  // namespace
}  // namespace ferry
