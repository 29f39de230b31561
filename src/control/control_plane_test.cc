// The control plane against real backends (a Kafka broker, the embedded
// store): every start replays the control topic from its beginning, and no
// start leaves anything behind on the control cluster (no consumer group, no
// committed offsets), however often the node restarts.
#include "control/control_plane.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "backend/embedded/embedded_cluster.h"
#include "backend/kafka/client_factory.h"
#include "backend/kafka/kafka_cluster.h"
#include "config/config.h"
#include "testing/kafka_broker.h"
#include "testing/test_dir.h"

namespace ferry::control {
namespace {

constexpr absl::Duration kWait = absl::Seconds(60);

class CaughtUpListener final : public ControlListener {
 public:
  void OnPaused(const std::string&, bool) override {}
  std::set<backend::TopicPartition> OnSeek(const SeekCommand&) override { return {}; }
  void OnCaughtUp() override { caught_up_.Notify(); }

  bool WaitCaughtUp() { return caught_up_.WaitForNotificationWithTimeout(kWait); }

 private:
  absl::Notification caught_up_;
};

// Given a control cluster, when one node starts its control plane twice
// (pausing a group in the first run), then the second run sees the pause
// (read from the start) and the cluster lists no consumer group made by the
// control plane.
void ExpectRestartsLeaveNoGroup(backend::Cluster& cluster, const std::string& topic) {
  for (int start = 0; start < 2; ++start) {
    SCOPED_TRACE(::testing::Message() << "start " << start);
    CaughtUpListener listener;
    ControlPlane plane(&cluster, {.topic = topic, .node_id = "node-a"}, &listener);
    ASSERT_TRUE(listener.WaitCaughtUp());
    if (start == 0) {
      ASSERT_TRUE(plane.SetPaused("g1", true).ok());
    } else {
      EXPECT_TRUE(plane.IsPaused("g1"));
    }
  }
  absl::StatusOr<std::vector<std::string>> groups = cluster.ListGroups();
  ASSERT_TRUE(groups.ok()) << groups.status();
  for (const std::string& group : *groups) {
    EXPECT_FALSE(group.starts_with("__ferry_control")) << "left behind: " << group;
  }
}

class RouteListener final : public ControlListener {
 public:
  void OnPaused(const std::string&, bool) override {}
  std::set<backend::TopicPartition> OnSeek(const SeekCommand&) override { return {}; }
  void OnCaughtUp() override {}
  void OnRoutes(const std::vector<config::RouteConfig>& routes) override {
    absl::MutexLock lock(&mu_);
    topics_.clear();
    for (const auto& route : routes) topics_.push_back(route.topic);
    ++calls_;
  }

  // Waits for the listener to be handed routes with exactly `topics`.
  bool WaitForTopics(std::vector<std::string> topics) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return calls_ > 0 && topics_ == topics;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), kWait);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> topics_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// Given a fresh control topic, when a node starts with YAML routes, then they
// are written once; a route put and a delete survive a restart, and a restart
// with other YAML routes keeps the control topic's (it was seeded before).
TEST(ControlPlaneTest, YamlRoutesSeedAFreshTopicAndTheTopicWinsAfterwards) {
  ::ferry::testing::TestDir dir;
  auto cluster = backend::embedded::EmbeddedCluster::Open("local", {.path = dir.path()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const config::RouteConfig yaml_a{.topic = "a.*", .write = {"local"}};
  const config::RouteConfig yaml_b{.topic = "b.*", .write = {"local"}};
  {
    RouteListener listener;
    ControlPlane plane(cluster->get(), {.node_id = "n", .seed_routes = {yaml_a, yaml_b}},
                       &listener);
    ASSERT_TRUE(listener.WaitForTopics({"a.*", "b.*"}));
    ASSERT_TRUE(plane.PutRoute({.topic = "c", .write = {"local"}}).ok());
    // Applied on this node when PutRoute returns.
    ASSERT_TRUE(plane.Routes().has_value());
    EXPECT_EQ(plane.Routes()->size(), 3u);
    ASSERT_TRUE(plane.DeleteRoute("a.*").ok());
    ASSERT_TRUE(plane.SetDrained("local", true).ok());
    EXPECT_TRUE(listener.WaitForTopics({"b.*", "c"}));
  }
  RouteListener listener;
  const config::RouteConfig other{.topic = "other", .write = {"local"}};
  ControlPlane plane(cluster->get(), {.node_id = "n", .seed_routes = {other}}, &listener);
  EXPECT_TRUE(listener.WaitForTopics({"b.*", "c"}));
  EXPECT_EQ(plane.Drained(), std::set<std::string>{"local"});
}

// Given migrations put on one node, when they change stage and the node
// restarts, then every one is listed with the time it started (kept across
// stages) and the time it last changed.
TEST(ControlPlaneTest, MigrationsAreListedWithTheirTimesAfterARestart) {
  ::ferry::testing::TestDir dir;
  auto cluster = backend::embedded::EmbeddedCluster::Open("local", {.path = dir.path()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const int64_t before = absl::ToUnixMillis(absl::Now());
  MigrationState orders{.topic = "orders", .from = "a", .to = "b", .stage = "mirroring"};
  {
    CaughtUpListener listener;
    ControlPlane plane(cluster->get(), {.node_id = "n"}, &listener);
    ASSERT_TRUE(listener.WaitCaughtUp());
    ASSERT_TRUE(plane.PutMigration(orders).ok());
    EXPECT_GE(orders.started_ms, before);
    EXPECT_EQ(orders.updated_ms, orders.started_ms);
    absl::SleepFor(absl::Milliseconds(5));
    orders.stage = "consumers";
    ASSERT_TRUE(plane.PutMigration(orders).ok());
    MigrationState audit{.topic = "audit", .from = "b", .to = "a", .stage = "mirroring"};
    ASSERT_TRUE(plane.PutMigration(audit).ok());
  }
  CaughtUpListener listener;
  ControlPlane plane(cluster->get(), {.node_id = "n"}, &listener);
  ASSERT_TRUE(listener.WaitCaughtUp());
  std::vector<MigrationState> all = plane.Migrations();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].topic, "audit");
  EXPECT_EQ(all[1], orders);
  EXPECT_GT(all[1].updated_ms, all[1].started_ms);
}

// A Kafka control cluster on the shared broker; null (with a failure) when
// it cannot start.
std::unique_ptr<backend::Cluster> KafkaControlCluster() {
  testing::KafkaBroker* broker = testing::SharedBroker();
  if (broker == nullptr) {
    ADD_FAILURE() << "no Kafka broker";
    return nullptr;
  }
  static backend::kafka::LibrdkafkaClientFactory factory;
  auto cluster = backend::kafka::KafkaCluster::Start(
      {.name = "control", .type = "kafka", .bootstrap = broker->bootstrap()}, {},
      factory);
  if (!cluster.ok()) {
    ADD_FAILURE() << cluster.status();
    return nullptr;
  }
  return *std::move(cluster);
}

TEST(ControlPlaneTest, RestartsLeaveNoConsumerGroupOnKafka) {
  std::unique_ptr<backend::Cluster> cluster = KafkaControlCluster();
  ASSERT_NE(cluster, nullptr);
  ExpectRestartsLeaveNoGroup(*cluster, "__ferry_control.restarts");
}

TEST(ControlPlaneTest, RestartsLeaveNoConsumerGroupOnEmbedded) {
  ::ferry::testing::TestDir dir;
  auto cluster = backend::embedded::EmbeddedCluster::Open("local", {.path = dir.path()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ExpectRestartsLeaveNoGroup(**cluster, "__ferry_control");
}

// Given seek commands for cluster b and for every cluster (as older nodes
// write them), when a partition of each cluster is assigned, then each finds
// the command meant for it: b's own, the others the every-cluster one.
TEST(ControlPlaneTest, UnappliedSeeksAreFoundPerCluster) {
  ::ferry::testing::TestDir dir;
  auto cluster = backend::embedded::EmbeddedCluster::Open("local", {.path = dir.path()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  CaughtUpListener listener;
  ControlPlane plane(cluster->get(), {.node_id = "node-a"}, &listener);
  ASSERT_TRUE(listener.WaitCaughtUp());
  const backend::TopicPartition tp{"orders", 0};
  const auto offset_for = [&](const std::string& for_cluster) -> int64_t {
    auto seek = plane.UnappliedSeek("g", for_cluster, tp);
    return seek ? seek->offset : -1;
  };
  const auto wait_for = [&](const std::string& for_cluster, int64_t offset) {
    const absl::Time give_up = absl::Now() + kWait;
    while (offset_for(for_cluster) != offset && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return offset_for(for_cluster);
  };

  // Nobody answers: each Seek returns after its wait with nothing applied.
  ASSERT_TRUE(plane.Seek("g", "", {{tp, 1}}, absl::Milliseconds(1)).ok());
  EXPECT_EQ(wait_for("a", 1), 1);
  ASSERT_TRUE(plane.Seek("g", "b", {{tp, 7}}, absl::Milliseconds(1)).ok());
  EXPECT_EQ(wait_for("b", 7), 7);
  EXPECT_EQ(offset_for("a"), 1) << "b's seek replaced the one for every cluster";
  EXPECT_EQ(plane.UnappliedSeek("other-group", "b", tp), std::nullopt);
}

// A node whose write holds settle when the test says so.
class HoldListener final : public ControlListener {
 public:
  void OnPaused(const std::string&, bool) override {}
  std::set<backend::TopicPartition> OnSeek(const SeekCommand&) override { return {}; }
  void OnCaughtUp() override { caught_up_.Notify(); }
  void OnWriteHold(const std::string&, bool held, int64_t offset) override {
    absl::MutexLock lock(&mu_);
    if (held && hold_back_) unsettled_ = offset;
  }
  std::optional<int64_t> OldestUnsettled() const override {
    absl::MutexLock lock(&mu_);
    return unsettled_;
  }
  void HoldBack() {
    absl::MutexLock lock(&mu_);
    hold_back_ = true;
  }
  void Settle() {
    absl::MutexLock lock(&mu_);
    unsettled_.reset();
  }
  bool WaitCaughtUp() { return caught_up_.WaitForNotificationWithTimeout(kWait); }

 private:
  absl::Notification caught_up_;
  mutable absl::Mutex mu_;
  bool hold_back_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<int64_t> unsettled_ ABSL_GUARDED_BY(mu_);
};

std::map<std::string, std::string> StatesByNode(const ControlPlane& plane) {
  std::map<std::string, std::string> states;
  for (const NodeRegistry::Node& node : plane.Nodes()) {
    states[node.beat.node_id] = std::string(StateName(node.state));
  }
  return states;
}

bool WaitForStates(const ControlPlane& plane,
                   const std::map<std::string, std::string>& states) {
  const absl::Time give_up = absl::Now() + kWait;
  while (StatesByNode(plane) != states) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

// Given three nodes on one control topic, when one holds a write hold's
// effect unsettled, then the barrier waits for it and names it, and passes
// once it settled; a node that left cleanly is listed as left and holds no
// barrier; a node that went silent (a heartbeat written for a node that
// never beats again, as after kill -9) holds the barrier only until
// node_timeout, then is listed as lost.
void ExpectBarrierWaitsForLiveNodesOnly(backend::Cluster& cluster,
                                        const std::string& topic) {
  const auto options = [&](std::string id) {
    return ControlPlane::Options{.topic = topic,
                                 .node_id = std::move(id),
                                 .version = "test",
                                 .heartbeat_interval = absl::Milliseconds(100),
                                 .node_timeout = absl::Seconds(2)};
  };
  HoldListener a_listener, b_listener, c_listener;
  b_listener.HoldBack();
  ControlPlane a(&cluster, options("a"), &a_listener);
  ControlPlane b(&cluster, options("b"), &b_listener);
  auto c = std::make_unique<ControlPlane>(&cluster, options("c"), &c_listener);
  ASSERT_TRUE(a_listener.WaitCaughtUp() && b_listener.WaitCaughtUp() &&
              c_listener.WaitCaughtUp());
  ASSERT_TRUE(WaitForStates(a, {{"a", "live"}, {"b", "live"}, {"c", "live"}}));

  absl::StatusOr<int64_t> held =
      a.Issue(WriteHoldCommand{.topic = "orders", .held = true});
  ASSERT_TRUE(held.ok()) << held.status();
  absl::Status waited = a.AwaitApplied(*held, absl::Milliseconds(800));
  EXPECT_EQ(waited.code(), absl::StatusCode::kDeadlineExceeded) << waited;
  EXPECT_THAT(std::string(waited.message()), ::testing::HasSubstr("node(s) b "));
  b_listener.Settle();
  b.BeatSoon();
  absl::Time start = absl::Now();
  EXPECT_TRUE(a.AwaitApplied(*held, kWait).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1)) << "a settled node beats at once";

  c.reset();
  ASSERT_TRUE(WaitForStates(a, {{"a", "live"}, {"b", "live"}, {"c", "left"}}));

  EncodedRecord ghost = Encode(NodeBeat{.node_id = "ghost",
                                        .seen_ms = absl::ToUnixMillis(absl::Now()),
                                        .applied_offset = -1});
  absl::Notification ghost_written;
  cluster.Publish({.topic = topic, .key = ghost.key, .value = ghost.value},
                  [&](backend::PublishOutcome) { ghost_written.Notify(); });
  ASSERT_TRUE(ghost_written.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(
      WaitForStates(a, {{"a", "live"}, {"b", "live"}, {"c", "left"}, {"ghost", "live"}}));
  absl::StatusOr<int64_t> released =
      a.Issue(WriteHoldCommand{.topic = "orders", .held = false});
  ASSERT_TRUE(released.ok()) << released.status();
  start = absl::Now();
  EXPECT_TRUE(a.AwaitApplied(*released, kWait).ok());
  EXPECT_GT(absl::Now() - start, absl::Milliseconds(500)) << "it waited for the ghost";
  EXPECT_EQ(StatesByNode(a)["ghost"], "lost");
}

TEST(ControlPlaneTest, BarrierWaitsForLiveNodesOnlyOnEmbedded) {
  ::ferry::testing::TestDir dir;
  auto cluster = backend::embedded::EmbeddedCluster::Open("local", {.path = dir.path()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ExpectBarrierWaitsForLiveNodesOnly(**cluster, "__ferry_control");
}

TEST(ControlPlaneTest, BarrierWaitsForLiveNodesOnlyOnKafka) {
  std::unique_ptr<backend::Cluster> cluster = KafkaControlCluster();
  ASSERT_NE(cluster, nullptr);
  ExpectBarrierWaitsForLiveNodesOnly(*cluster, "__ferry_control.barrier");
}

}  // namespace
}  // namespace ferry::control
