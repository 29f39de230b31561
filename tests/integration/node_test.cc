// ferryd as an operator meets it: configuration, start-up, `ferry status`,
// metrics, health, reflection and shutdown, against real Kafka brokers.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/mock_cluster.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::MockKafkaCluster;
using ::ferry::testing::ProcessResult;
using ::ferry::testing::RunFerryCli;
using ::ferry::testing::RunFerryd;
using ::ferry::testing::SharedBroker;
using ::ferry::testing::WriteTempFile;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A bootstrap address nothing listens on.
std::string DeadBootstrap() {
  auto ports = testing::PickFreePorts(1);
  return absl::StrCat("127.0.0.1:", ports.ok() ? (*ports)[0] : 9);
}

ProcessResult Status(const FerrydProcess& node) {
  auto result = RunFerryCli({"--server", node.grpc_address(), "status"});
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{.exit_code = -1};
}

TEST(Node, StatusShowsTheBrokerAndATopicOfARealCluster) {
  KafkaBroker* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->CreateTopic("status.orders", 3).ok());

  auto node = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();

  ProcessResult status = Status(**node);
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(
      status.out,
      AllOf(HasSubstr("SERVING"),
            HasSubstr(absl::StrCat("cluster main  kafka  ", broker->bootstrap(), "  up")),
            HasSubstr(absl::StrCat("broker  1  ", broker->bootstrap())),
            HasSubstr("status.orders")));
}

TEST(Node, UnreachableClusterIsDownInStatusAndMetricsWhileTheNodeKeepsServing) {
  KafkaBroker* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  const std::string dead = DeadBootstrap();
  auto node = FerrydProcess::Start(
      absl::StrCat("cluster_probe: { interval: 500ms, timeout: 1s }\nclusters:\n",
                   testing::KafkaClusterEntry("main", broker->bootstrap()),
                   testing::KafkaClusterEntry("dead", dead)));
  ASSERT_TRUE(node.ok()) << node.status();

  ProcessResult status = Status(**node);
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out,
              HasSubstr(absl::StrCat("cluster dead  kafka  ", dead, "  down")));
  EXPECT_THAT(status.out, HasSubstr("Connection refused"));
  EXPECT_THAT(status.out, HasSubstr("cluster main  kafka"));

  auto [code, metrics] = (*node)->HttpGet("/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_THAT(metrics, HasSubstr("ferry_cluster_up{cluster=\"dead\",type=\"kafka\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("ferry_cluster_up{cluster=\"main\",type=\"kafka\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("ferry_build_info{version="));
  EXPECT_THAT(metrics, HasSubstr("ferry_uptime_seconds"));
  EXPECT_EQ((*node)->HttpGet("/healthz").first, 200);
  EXPECT_TRUE((*node)->process().Running());
  EXPECT_THAT((*node)->Log(), HasSubstr("cluster=dead state=down"));
}

TEST(Node, ClusterStateFollowsABrokerKilledAndRestarted) {
  auto broker = KafkaBroker::Start("node-restart");
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto node = FerrydProcess::Start(
      absl::StrCat("cluster_probe: { interval: 200ms, timeout: 1s }\nclusters:\n",
                   testing::KafkaClusterEntry("main", (*broker)->bootstrap())));
  ASSERT_TRUE(node.ok()) << node.status();
  auto metric_until = [&](const std::string& line) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if ((*node)->HttpGet("/metrics").second.find(line) != std::string::npos)
        return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  };
  const std::string up = "ferry_cluster_up{cluster=\"main\",type=\"kafka\"} 1";
  const std::string down = "ferry_cluster_up{cluster=\"main\",type=\"kafka\"} 0";
  ASSERT_TRUE(metric_until(up));

  ASSERT_TRUE((*broker)->Kill9().ok());
  EXPECT_TRUE(metric_until(down));
  EXPECT_THAT(Status(**node).out, HasSubstr("  down"));

  ASSERT_TRUE((*broker)->Restart().ok());
  EXPECT_TRUE(metric_until(up));
  EXPECT_TRUE((*node)->process().Running());
}

TEST(Node, SigtermDrainsAndExitsZero) {
  auto node = FerrydProcess::Start("");
  ASSERT_TRUE(node.ok()) << node.status();
  (*node)->process().Signal(SIGTERM);
  auto code = (*node)->process().Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok()) << "ferryd did not exit after SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_THAT((*node)->Log(), AllOf(HasSubstr("draining"), HasSubstr("stopped")));
}

// The control plane waits for a cluster the probe found down instead of
// asking it (which blocks for the admin timeout), so stopping is quick.
TEST(Node, SigtermWithTheOnlyClusterDownExitsWithinTheGrace) {
  auto node = FerrydProcess::Start(
      absl::StrCat("shutdown: { grace: 1s }\ncluster_probe: { interval: 200ms, timeout: "
                   "1s }\nclusters:\n",
                   testing::KafkaClusterEntry("dead", DeadBootstrap())));
  ASSERT_TRUE(node.ok()) << node.status();
  const absl::Time until = absl::Now() + absl::Seconds(15);
  while (!absl::StrContains((*node)->Log(), "control topic") && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  (*node)->process().Signal(SIGTERM);
  auto code = (*node)->process().Wait(absl::Seconds(5));
  ASSERT_TRUE(code.ok()) << "ferryd did not exit 5 s after SIGTERM\n" << (*node)->Log();
  EXPECT_EQ(*code, 0) << (*node)->Log();
}

// A node on a mock broker that answers each ListOffsets (the control topic's
// watermarks, asked by the control plane's start) after `stall`.
struct StalledStart {
  std::unique_ptr<MockKafkaCluster> mock;
  std::unique_ptr<FerrydProcess> node;
};
StalledStart StartWithStalledWatermarks(absl::Duration stall, const std::string& probe,
                                        const std::string& grace) {
  auto mock = MockKafkaCluster::Start(1);
  EXPECT_TRUE(mock.ok()) << mock.status();
  if (!mock.ok()) return {};
  EXPECT_TRUE((*mock)->CreateTopic("__ferry_control", 1).ok());
  (*mock)->StallRequests(1, testing::kListOffsetsApiKey, 100, stall);
  auto node = FerrydProcess::Start(absl::StrCat(
      "shutdown: { grace: ", grace, " }\ncluster_probe: ", probe, "\n",
      "clusters:\n  main: { type: kafka, bootstrap: \"", (*mock)->bootstrap(), "\" }\n",
      // The mock serves no CreateTopics: the control topic is the one made above.
      "control: { topic: __ferry_control }\n"));
  EXPECT_TRUE(node.ok()) << node.status();
  if (!node.ok()) return {};
  return {*std::move(mock), *std::move(node)};
}

// A broker that stops answering while the starting control plane asks it
// about the control topic must not hold the node's shutdown. Here it stalls
// its ListOffsets answers (the topic's watermarks), which librdkafka 2.0.2's
// rd_kafka_query_watermark_offsets waited for past the timeout it was given.
TEST(Node, SigtermWhileTheControlPlaneWaitsForAStalledBrokerExitsWithinTheGrace) {
  StalledStart start = StartWithStalledWatermarks(
      absl::Seconds(60), "{ interval: 200ms, timeout: 1s }", "3s");
  ASSERT_NE(start.node, nullptr);
  constexpr absl::Duration kGrace = absl::Seconds(3);
  // The probe finds the cluster up within its first rounds, then the control
  // plane asks for the watermarks and gets no answer.
  absl::SleepFor(absl::Seconds(3));
  ASSERT_THAT(start.node->Log(), Not(HasSubstr("caught up")));
  start.node->process().Signal(SIGTERM);
  auto code = start.node->process().Wait(kGrace);
  ASSERT_TRUE(code.ok()) << "ferryd did not exit within the grace of SIGTERM\n"
                         << start.node->Log();
  EXPECT_EQ(*code, 0) << start.node->Log();
}

// The control plane's start describes its topic within the probe timeout
// (6 s); the broker answers each ListOffsets after 4 s, so the description
// (low, then high watermarks) fails after 6 s, and the start tries again
// 2 s later. SIGTERM in that pause, while an idle publish stream keeps gRPC
// draining for the whole grace (3 s). Server::Shutdown cuts the start when
// draining begins: the node exits after the grace. Before (the start told to
// stop only after the grace), the start began its next description during
// the grace and the node waited for it (about 5 s past the grace).
TEST(Node, SigtermCutsAStartThatWouldCallAgainDuringTheGrace) {
  StalledStart start =
      StartWithStalledWatermarks(absl::Seconds(4), "{ interval: 1s, timeout: 6s }", "3s");
  ASSERT_NE(start.node, nullptr);
  constexpr absl::Duration kGrace = absl::Seconds(3);
  auto stub = v1::Publisher::NewStub(grpc::CreateChannel(
      start.node->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext stream_context;
  auto stream = stub->PublishStream(&stream_context);
  // The first description failed: the start waits 2 s before its next call.
  const absl::Time until = absl::Now() + absl::Seconds(60);
  auto failed_description = [&] {
    for (absl::string_view line : absl::StrSplit(start.node->Log(), '\n')) {
      if (absl::StrContains(line, "describe topic __ferry_control") &&
          absl::StrContains(line, "(retrying)")) {
        return true;
      }
    }
    return false;
  };
  while (!failed_description()) {
    ASSERT_LT(absl::Now(), until) << start.node->Log();
    absl::SleepFor(absl::Milliseconds(50));
  }
  const absl::Time seen = absl::Now();

  start.node->process().Signal(SIGTERM);
  const absl::Time term = absl::Now();
  // Later than this, the start's pause may be over before draining begins.
  ASSERT_LT(term - seen, absl::Milliseconds(1500))
      << "SIGTERM went out " << term - seen << " after the failed description was seen";
  absl::StatusOr<int> exit = start.node->process().Wait(absl::Seconds(60));
  const absl::Duration took = absl::Now() - term;
  stream_context.TryCancel();
  stream->Finish();
  ASSERT_TRUE(exit.ok()) << exit.status() << "\n" << start.node->Log();
  std::printf("[ measured ] ferryd exited %s after SIGTERM (grace 3s)\n",
              absl::FormatDuration(took).c_str());
  EXPECT_EQ(*exit, 0) << start.node->Log();
  EXPECT_GE(took, kGrace - absl::Milliseconds(500)) << "gRPC did not drain the grace";
  // The grace, then closing; not another description of 6 s begun in it.
  EXPECT_LT(took, kGrace + absl::Seconds(2)) << start.node->Log();
}

TEST(Node, ReflectionAndHealthWorkWithGrpcurl) {
  auto node = FerrydProcess::Start("");
  ASSERT_TRUE(node.ok()) << node.status();
  auto list =
      testing::RunProcess({"grpcurl", "-plaintext", (*node)->grpc_address(), "list"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->exit_code, 0) << list->err;
  EXPECT_THAT(list->out,
              AllOf(HasSubstr("ferry.v1.Admin"), HasSubstr("grpc.health.v1.Health"),
                    HasSubstr("grpc.reflection.v1alpha.ServerReflection")));
  auto health = testing::RunProcess(
      {"grpcurl", "-plaintext", (*node)->grpc_address(), "grpc.health.v1.Health/Check"});
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_THAT(health->out, HasSubstr("SERVING")) << health->err;
}

struct BadConfig {
  std::string name;
  std::string yaml;
  std::string message;
};

class NodeRejectsBadConfig : public ::testing::TestWithParam<BadConfig> {};

TEST_P(NodeRejectsBadConfig, ExitsNonZeroWithOneLineNamingTheKey) {
  const BadConfig& bad = GetParam();
  auto result = RunFerryd({"--config", WriteTempFile("bad.yaml", bad.yaml)});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  EXPECT_THAT(result->err, HasSubstr(bad.message));
  EXPECT_EQ(std::count(result->err.begin(), result->err.end(), '\n'), 1) << result->err;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NodeRejectsBadConfig,
    ::testing::Values(
        BadConfig{"UnknownKey", "listen: { grcp: 127.0.0.1:7400 }\n",
                  "unknown key \"listen.grcp\" (did you mean \"listen.grpc\"?)"},
        BadConfig{
            "BadPort", "listen: { grpc: \"127.0.0.1:70000\" }\n",
            "listen.grpc: port \"70000\" of \"127.0.0.1:70000\" is not in 1..65535"},
        BadConfig{"BootstrapWithoutPort",
                  "clusters: { main: { type: kafka, bootstrap: kafka-1 } }\n",
                  "clusters.main.bootstrap: \"kafka-1\" is not host:port"},
        BadConfig{"UnknownClientProperty",
                  "clusters: { main: { type: kafka, bootstrap: \"127.0.0.1:1\", "
                  "properties: { linger.msec: 5 } } }\n",
                  "clusters.main.properties.linger.msec: No such configuration property"},
        BadConfig{"RouteToUnknownCluster",
                  "routes: [ { topic: \"a.*\", write: [nowhere] } ]\n",
                  "routes.0.write: unknown cluster \"nowhere\""}),
    [](const auto& info) { return info.param.name; });

TEST(Node, PortInUseIsNamedAndFatal) {
  auto first = FerrydProcess::Start("");
  ASSERT_TRUE(first.ok()) << first.status();
  auto result =
      RunFerryd({"--set", absl::StrCat("listen.grpc=", (*first)->grpc_address()), "--set",
                 absl::StrCat("listen.http=", DeadBootstrap())});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  EXPECT_THAT(result->err, HasSubstr(absl::StrCat("listen.grpc: cannot listen on ",
                                                  (*first)->grpc_address())));
}

TEST(Cli, UnreachableServerIsOneLineOnStderrAndNonZero) {
  auto result = RunFerryCli({"--server", DeadBootstrap(), "status"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->err, AllOf(HasSubstr("ferry: status: "), HasSubstr("UNAVAILABLE"),
                                 HasSubstr("FERRY_SERVER")));
  EXPECT_EQ(std::count(result->err.begin(), result->err.end(), '\n'), 1);
  EXPECT_THAT(result->out, Not(HasSubstr("cluster")));
}

TEST(Cli, ServerComesFromTheEnvironment) {
  auto node = FerrydProcess::Start("");
  ASSERT_TRUE(node.ok()) << node.status();
  auto result = RunFerryCli({"version"}, {{"FERRY_SERVER", (*node)->grpc_address()}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_THAT(result->out, HasSubstr(absl::StrCat("ferryd ", kVersion, " at ",
                                                  (*node)->grpc_address())));
}

}  // namespace
}  // namespace ferry
