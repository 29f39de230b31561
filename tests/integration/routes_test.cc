// Routes at runtime across ferryd nodes: a route put or deleted on one node
// reaches the others within a second (measured), survives a node restart
// (the control topic wins over YAML once seeded), steers publishes, and bad
// routes are refused with the field named. Two cluster names point at one
// real broker, so the cluster a publish reports is the route's choice.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::SharedBroker;
using ::testing::HasSubstr;

constexpr absl::Duration kApplyBound = absl::Seconds(1);

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return context;
}

v1::Route MakeRoute(const std::string& topic, std::vector<std::string> write,
                    std::vector<std::string> read = {}) {
  v1::Route route;
  route.set_topic(topic);
  for (const auto& c : write) route.add_write(c);
  for (const auto& c : read) route.add_read(c);
  return route;
}

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = SharedBroker();
    ASSERT_NE(broker_, nullptr);
  }

  std::string Name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // Clusters "a" and "b" on the one broker; a control topic per test, so
  // each test starts from a fresh one seeded by `routes_yaml`.
  std::string Yaml(const std::string& routes_yaml) const {
    return absl::StrCat(
        "clusters:\n", testing::KafkaClusterEntry("a", broker_->bootstrap()),
        testing::KafkaClusterEntry("b", broker_->bootstrap()),
        "control: { cluster: a, topic: __ferry_control.", Name(), " }\n", routes_yaml);
  }

  std::unique_ptr<FerrydProcess> Node(const std::string& routes_yaml) {
    auto node = FerrydProcess::Start(Yaml(routes_yaml));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static std::unique_ptr<v1::Admin::Stub> Admin(const FerrydProcess& node) {
    return v1::Admin::NewStub(
        grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()));
  }

  static std::vector<std::string> RouteTopics(const FerrydProcess& node) {
    v1::ListRoutesResponse response;
    grpc::Status status =
        Admin(node)->ListRoutes(Context().get(), v1::ListRoutesRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> topics;
    for (const v1::Route& route : response.routes()) topics.push_back(route.topic());
    return topics;
  }

  // How long until `node` lists exactly `topics` (InfiniteDuration if it
  // does not within 10 s).
  static absl::Duration TimeUntilRoutes(const FerrydProcess& node,
                                        const std::vector<std::string>& topics,
                                        absl::Time since) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (RouteTopics(node) == topics) return absl::Now() - since;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return absl::InfiniteDuration();
  }

  // The cluster the node wrote one message of `topic` to.
  static std::string PublishedCluster(const FerrydProcess& node,
                                      const std::string& topic) {
    auto stub = v1::Publisher::NewStub(
        grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()));
    v1::PublishRequest request;
    request.set_topic(topic);
    request.add_messages()->set_value("v");
    v1::PublishResponse response;
    grpc::Status status = stub->Publish(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok() || response.results_size() != 1) return "";
    EXPECT_EQ(response.results(0).status().code(), 0)
        << response.results(0).status().message();
    return response.results(0).cluster();
  }

  testing::KafkaBroker* broker_ = nullptr;
};

// Given two nodes seeded with one YAML route, when a route is put and then
// deleted through node 1, then node 2 lists each change within a second,
// and publishes through node 2 follow the new route.
TEST_F(RoutesTest, PutAndDeleteReachEveryNodeWithinASecond) {
  const std::string topic = absl::StrCat("routes.", Name());
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  const std::string yaml = "routes:\n  - { topic: \"routes.*\", write: [a] }\n";
  auto node1 = Node(yaml);
  auto node2 = Node(yaml);
  ASSERT_TRUE(node1 && node2);
  EXPECT_EQ(PublishedCluster(*node2, topic), "a");

  v1::PutRouteRequest put;
  *put.mutable_route() = MakeRoute(topic, {"b", "a"});
  v1::Route applied;
  grpc::Status status = Admin(*node1)->PutRoute(Context().get(), put, &applied);
  // Timed from the answer: the record is in the control topic by then.
  const absl::Time put_at = absl::Now();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(applied.read(), ::testing::ElementsAre("b", "a"));  // read where written
  // Applied on the node that took the call before it answered.
  EXPECT_EQ(RouteTopics(*node1), (std::vector<std::string>{"routes.*", topic}));
  const absl::Duration put_applied = TimeUntilRoutes(*node2, {"routes.*", topic}, put_at);
  std::cout << "route put applied on the other node after "
            << absl::FormatDuration(put_applied) << "\n";
  EXPECT_LE(put_applied, kApplyBound);
  EXPECT_EQ(PublishedCluster(*node2, topic), "b");

  v1::DeleteRouteRequest remove;
  remove.set_topic(topic);
  v1::DeleteRouteResponse removed;
  status = Admin(*node1)->DeleteRoute(Context().get(), remove, &removed);
  const absl::Time delete_at = absl::Now();
  ASSERT_TRUE(status.ok()) << status.error_message();
  const absl::Duration delete_applied = TimeUntilRoutes(*node2, {"routes.*"}, delete_at);
  std::cout << "route delete applied on the other node after "
            << absl::FormatDuration(delete_applied) << "\n";
  EXPECT_LE(delete_applied, kApplyBound);
  EXPECT_EQ(PublishedCluster(*node2, topic), "a");
}

// Given a seeded control topic with a route put at runtime, when a node
// restarts with other YAML routes, then it serves the control topic's routes.
TEST_F(RoutesTest, ARestartedNodeServesTheControlTopicsRoutesNotItsYaml) {
  auto node = Node("routes:\n  - { topic: \"x.*\", write: [a] }\n");
  ASSERT_TRUE(node);
  auto put = testing::RunFerryCli({"--server", node->grpc_address(), "routes", "put",
                                   "--topic", "y.*", "--write", "b,a", "--read", "a,b"});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->exit_code, 0) << put->err;
  EXPECT_THAT(put->out, HasSubstr("route y.*: write b,a, read a,b"));
  node.reset();

  node = Node("routes:\n  - { topic: \"z.*\", write: [b] }\n");
  ASSERT_TRUE(node);
  EXPECT_LE(TimeUntilRoutes(*node, {"x.*", "y.*"}, absl::Now()), absl::Seconds(10));
  auto list = testing::RunFerryCli({"--server", node->grpc_address(), "routes", "list"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(list->out, HasSubstr("y.*"));
  EXPECT_THAT(list->out, HasSubstr("b,a"));
  EXPECT_THAT(list->out, ::testing::Not(HasSubstr("z.*")));

  auto remove =
      testing::RunFerryCli({"--server", node->grpc_address(), "routes", "delete", "y.*"});
  ASSERT_TRUE(remove.ok()) << remove.status();
  EXPECT_EQ(remove->exit_code, 0) << remove->err;
  EXPECT_EQ(RouteTopics(*node), std::vector<std::string>{"x.*"});
}

// Bad routes are refused with the field named, and nothing changes.
TEST_F(RoutesTest, BadRoutesAreRefusedNamingTheField) {
  const std::string topic = absl::StrCat("bad.", Name());
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  auto node = Node("routes:\n  - { topic: \"bad.*\", write: [a] }\n");
  ASSERT_TRUE(node);
  struct Case {
    v1::Route route;
    std::string error;
  };
  const Case cases[] = {
      {MakeRoute("t", {"a", "nowhere"}), "route.write: unknown cluster \"nowhere\""},
      {MakeRoute("t", {}), "route.write: missing"},
      {MakeRoute("orders/*", {"a"}),
       "route.topic: topic glob \"orders/*\": character '/'"},
      {MakeRoute("t", {"a", "a"}), "route.write: cluster \"a\" is listed twice"},
      {MakeRoute("t", {"a"}, {"b", "b"}), "route.read: cluster \"b\" is listed twice"},
      {MakeRoute("", {"a"}), "route.topic: missing"},
  };
  for (const Case& c : cases) {
    v1::PutRouteRequest put;
    *put.mutable_route() = c.route;
    v1::Route applied;
    grpc::Status status = Admin(*node)->PutRoute(Context().get(), put, &applied);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.error;
    EXPECT_THAT(status.error_message(), HasSubstr(c.error));
  }

  v1::DeleteRouteRequest remove;
  remove.set_topic("none.*");
  v1::DeleteRouteResponse removed;
  grpc::Status status = Admin(*node)->DeleteRoute(Context().get(), remove, &removed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  // With two clusters, a topic matched only by this route would be unrouted.
  remove.set_topic("bad.*");
  status = Admin(*node)->DeleteRoute(Context().get(), remove, &removed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr(topic + " on a"));
  EXPECT_EQ(RouteTopics(*node), std::vector<std::string>{"bad.*"});

  auto cli = testing::RunFerryCli({"--server", node->grpc_address(), "routes", "put",
                                   "--topic", "t", "--write", "a,zzz"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  EXPECT_NE(cli->exit_code, 0);
  EXPECT_THAT(cli->err, HasSubstr("route.write: unknown cluster \"zzz\""));
}

// Drain and undrain through the CLI reach every node and survive a restart;
// while `a` is drained, writes of a route [a, b] go to b, and come back after.
TEST_F(RoutesTest, DrainIsSharedByNodesAndSurvivesARestart) {
  const std::string topic = absl::StrCat("drain.", Name());
  ASSERT_TRUE(broker_->CreateTopic(topic, 1).ok());
  const std::string routes = "routes:\n  - { topic: \"drain.*\", write: [a, b] }\n";
  auto node1 = Node(routes);
  auto node2 = Node(routes);
  ASSERT_TRUE(node1 && node2);
  EXPECT_EQ(PublishedCluster(*node2, topic), "a");
  auto drained = [](const FerrydProcess& node, const std::string& cluster) {
    v1::ListClustersResponse response;
    grpc::Status status =
        Admin(node)->ListClusters(Context().get(), v1::ListClustersRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::Cluster& c : response.clusters()) {
      if (c.name() == cluster) return c.drained();
    }
    return false;
  };
  auto drain =
      testing::RunFerryCli({"--server", node1->grpc_address(), "clusters", "drain", "a"});
  ASSERT_TRUE(drain.ok()) << drain.status();
  EXPECT_EQ(drain->exit_code, 0) << drain->err;
  EXPECT_TRUE(drained(*node1, "a"));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!drained(*node2, "a") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(drained(*node2, "a"));
  EXPECT_FALSE(drained(*node2, "b"));

  node2 = Node(routes);
  ASSERT_TRUE(node2);
  const absl::Time restarted = absl::Now() + absl::Seconds(10);
  while (!drained(*node2, "a") && absl::Now() < restarted) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(drained(*node2, "a"));
  EXPECT_EQ(PublishedCluster(*node2, topic), "b");
  auto status = testing::RunFerryCli({"--server", node2->grpc_address(), "status"});
  ASSERT_TRUE(status.ok());
  EXPECT_THAT(status->out, HasSubstr("drained by an operator"));

  auto undrain = testing::RunFerryCli(
      {"--server", node2->grpc_address(), "clusters", "undrain", "a"});
  ASSERT_TRUE(undrain.ok());
  EXPECT_EQ(undrain->exit_code, 0) << undrain->err;
  EXPECT_FALSE(drained(*node2, "a"));
  // Undrained: half-open, probed, closed; then writes return.
  const absl::Time back = absl::Now() + absl::Seconds(15);
  while (PublishedCluster(*node2, topic) != "a" && absl::Now() < back) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(PublishedCluster(*node2, topic), "a");
  auto unknown = testing::RunFerryCli(
      {"--server", node2->grpc_address(), "clusters", "drain", "nope"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_NE(unknown->exit_code, 0);
  EXPECT_THAT(unknown->err, HasSubstr("unknown cluster \"nope\""));
}

}  // namespace
}  // namespace ferry
