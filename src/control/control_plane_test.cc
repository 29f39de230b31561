// The control plane against real backends (a Kafka broker, the embedded
// store): every start replays the control topic from its beginning, and no
// start leaves anything behind on the control cluster (no consumer group, no
// committed offsets), however often the node restarts.
#include "control/control_plane.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "backend/embedded/embedded_cluster.h"
#include "backend/embedded/test_dir.h"
#include "backend/kafka/client_factory.h"
#include "backend/kafka/kafka_cluster.h"
#include "config/config.h"
#include "testing/kafka_broker.h"

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

TEST(ControlPlaneTest, RestartsLeaveNoConsumerGroupOnKafka) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  backend::kafka::LibrdkafkaClientFactory factory;
  auto cluster = backend::kafka::KafkaCluster::Start(
      {.name = "control", .type = "kafka", .bootstrap = broker->bootstrap()}, {},
      factory);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ExpectRestartsLeaveNoGroup(**cluster, "__ferry_control.restarts");
}

TEST(ControlPlaneTest, RestartsLeaveNoConsumerGroupOnEmbedded) {
  backend::embedded::TestDir dir;
  auto cluster = backend::embedded::EmbeddedCluster::Open("local", {.path = dir.path()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ExpectRestartsLeaveNoGroup(**cluster, "__ferry_control");
}

}  // namespace
}  // namespace ferry::control
