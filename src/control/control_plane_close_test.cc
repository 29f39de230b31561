// Closing the control plane on a fake cluster whose reader hangs while
// closing: shutdown goes on after Options::leave_timeout.
#include <gtest/gtest.h>

#include <memory>

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

}  // namespace
}  // namespace ferry::control
