// Closing the control plane on a fake cluster whose reader hangs while
// closing: shutdown goes on after Options::leave_timeout. Cutting its start
// when draining begins: a start that ended goes on heartbeating.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <variant>

#include "absl/synchronization/notification.h"
#include "backend/fake_cluster.h"
#include "control/control_plane.h"

namespace ferry::control {
namespace {

class IgnoringListener final : public ControlListener {
 public:
  void OnPaused(const std::string&, bool) override {}
  std::set<backend::TopicPartition> OnSeek(const SeekCommand&) override { return {}; }
  void OnCaughtUp() override {}
};

// Before, the node's shutdown waited for the reader for good, and the
// groups, which leave after the control plane, never committed. The reader
// released later revokes its partition through a cut listener: under ASan,
// no use of the destroyed control plane.
TEST(ControlPlaneCloseTest, AReaderHangingWhileClosingIsAbandonedAfterTheLeaveTimeout) {
  backend::FakeCluster cluster("control");
  IgnoringListener listener;
  const std::string reader_group = "__ferry_control.n1";
  auto plane = std::make_unique<ControlPlane>(
      &cluster,
      ControlPlane::Options{.node_id = "n1", .leave_timeout = absl::Milliseconds(200)},
      &listener);
  ASSERT_TRUE(cluster.AwaitMembers(reader_group, 1, absl::Seconds(10)));
  ASSERT_EQ(cluster.members(reader_group).size(), 1u);
  cluster.members(reader_group)[0]->Assign(
      {{.partition = {"__ferry_control", 0}, .next_offset = 0}});
  backend::LeaveHold hold(cluster, absl::Seconds(8));
  const absl::Time start = absl::Now();
  plane.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// This node's heartbeats (left: its departure) among `published`.
std::vector<NodeBeat> Beats(const std::vector<backend::Record>& published) {
  std::vector<NodeBeat> beats;
  for (const backend::Record& record : published) {
    std::optional<ControlCommand> command = Decode(record.key, record.value);
    if (!command) continue;
    if (const auto* beat = std::get_if<NodeBeat>(&*command)) beats.push_back(*beat);
  }
  return beats;
}

// Node n1's control plane on `cluster`, heartbeating every 20 ms.
std::unique_ptr<ControlPlane> BeatingFast(backend::FakeCluster& cluster,
                                          ControlListener& listener) {
  return std::make_unique<ControlPlane>(
      &cluster,
      ControlPlane::Options{.node_id = "n1",
                            .heartbeat_interval = absl::Milliseconds(20),
                            .leave_timeout = absl::Milliseconds(200)},
      &listener);
}

// Draining begins (CutStart) after the start ended: barriers of other nodes
// still hear from this one through the grace, and its departure is written
// when it stops. A cut that stopped the heartbeats would hold the other
// nodes' barriers (a migration's write hold) until node_timeout counts this
// node gone.
TEST(ControlPlaneCutTest, AStartThatEndedGoesOnHeartbeatingThroughTheCut) {
  backend::FakeCluster cluster("control");
  IgnoringListener listener;
  std::unique_ptr<ControlPlane> plane = BeatingFast(cluster, listener);
  ASSERT_TRUE(cluster.AwaitMembers("__ferry_control.n1", 1, absl::Seconds(10)));
  plane->CutStart();
  const size_t at_cut = Beats(cluster.published()).size();
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (Beats(cluster.published()).size() < at_cut + 3 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(Beats(cluster.published()).size(), at_cut + 3);
  plane.reset();
  const std::vector<NodeBeat> beats = Beats(cluster.published());
  ASSERT_FALSE(beats.empty());
  EXPECT_TRUE(beats.back().left);
}

// A start cut before the control topic was ready (its cluster still
// connecting) makes no cluster call anymore: the draining node stays
// without the control topic, and writes no departure for a node never
// announced.
TEST(ControlPlaneCutTest, AStartCutBeforeTheTopicWasReadyStaysCut) {
  backend::FakeCluster cluster("control");
  cluster.SetStatus({.state = backend::ClusterState::kConnecting});
  IgnoringListener listener;
  std::unique_ptr<ControlPlane> plane = BeatingFast(cluster, listener);
  plane->CutStart();
  cluster.SetStatus({.state = backend::ClusterState::kUp});
  EXPECT_FALSE(cluster.AwaitMembers("__ferry_control.n1", 1, absl::Milliseconds(500)));
  plane.reset();
  EXPECT_TRUE(Beats(cluster.published()).empty());
}

// A control cluster without the topic whose first DescribeTopic blocks
// until `release`; counts the creations.
class SlowDescribeCluster final : public backend::FakeCluster {
 public:
  SlowDescribeCluster() : FakeCluster("control") {}
  absl::StatusOr<backend::TopicInfo> DescribeTopic(const std::string& topic) override {
    if (!describing_.HasBeenNotified()) {
      describing_.Notify();
      release_.WaitForNotification();
    }
    return FakeCluster::DescribeTopic(topic);
  }
  absl::Status CreateTopic(const std::string& topic, int partitions, int replication,
                           const std::map<std::string, std::string>& configs) override {
    ++creates_;
    return FakeCluster::CreateTopic(topic, partitions, replication, configs);
  }

  absl::Notification describing_;
  absl::Notification release_;
  std::atomic<int> creates_ = 0;
};

// The start cut while its describe is in progress ends with it: the topic
// found missing is not created (a second call shutdown would wait for),
// and the node does not start reading.
TEST(ControlPlaneCutTest, AStartCutDuringItsDescribeCreatesNoTopic) {
  SlowDescribeCluster cluster;
  IgnoringListener listener;
  std::unique_ptr<ControlPlane> plane = BeatingFast(cluster, listener);
  ASSERT_TRUE(cluster.describing_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  plane->CutStart();
  cluster.release_.Notify();
  EXPECT_FALSE(cluster.AwaitMembers("__ferry_control.n1", 1, absl::Milliseconds(500)));
  EXPECT_EQ(cluster.creates_.load(), 0);
  plane.reset();
}

}  // namespace
}  // namespace ferry::control
