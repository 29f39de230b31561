#include "control/node_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::control {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

NodeBeat Beat(std::string id, int64_t applied, absl::Time seen, bool left = false) {
  return {.node_id = std::move(id),
          .left = left,
          .seen_ms = absl::ToUnixMillis(seen),
          .applied_offset = applied};
}

std::vector<std::string> Ids(const std::vector<NodeRegistry::Node>& nodes) {
  std::vector<std::string> ids;
  for (const auto& node : nodes) ids.push_back(node.beat.node_id);
  return ids;
}

TEST(NodeRegistry, LiveNodesBelowTheOffsetHoldTheBarrier) {
  NodeRegistry registry(absl::Seconds(5), absl::Minutes(10));
  registry.Record(Beat("a", 10, kStart), kStart, false);
  registry.Record(Beat("b", 7, kStart), kStart, false);
  EXPECT_THAT(registry.Lagging(8, kStart), ElementsAre("b"));
  registry.Record(Beat("b", 8, kStart), kStart + absl::Seconds(1), false);
  EXPECT_THAT(registry.Lagging(8, kStart + absl::Seconds(1)), IsEmpty());
}

TEST(NodeRegistry, SilentNodeDropsOutOfTheBarrierAfterTheWindow) {
  NodeRegistry registry(absl::Seconds(5), absl::Minutes(10));
  registry.Record(Beat("a", 3, kStart), kStart, false);
  EXPECT_THAT(registry.Lagging(8, kStart + absl::Seconds(5)), ElementsAre("a"));
  EXPECT_THAT(registry.Lagging(8, kStart + absl::Seconds(6)), IsEmpty());
  auto listed = registry.List(kStart + absl::Seconds(6));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].state, NodeRegistry::State::kLost);
}

TEST(NodeRegistry, NodeThatLeftIsListedAsDepartedAndHoldsNothing) {
  NodeRegistry registry(absl::Seconds(5), absl::Minutes(10));
  registry.Record(Beat("b", 1, kStart, /*left=*/true), kStart, false);
  registry.Record(Beat("a", 9, kStart), kStart, false);
  EXPECT_THAT(registry.Lagging(8, kStart), IsEmpty());
  auto listed = registry.List(kStart);
  EXPECT_THAT(Ids(listed), ElementsAre("a", "b"));  // live first
  EXPECT_EQ(listed[1].state, NodeRegistry::State::kLeft);
  EXPECT_THAT(Ids(registry.List(kStart + absl::Minutes(11))), IsEmpty());
}

TEST(NodeRegistry, ReplayedHeartbeatsCountFromWhenTheyWereWritten) {
  NodeRegistry registry(absl::Seconds(5), absl::Minutes(10));
  const absl::Time now = kStart + absl::Minutes(1);
  registry.Record(Beat("old", 0, kStart), now, /*replaying=*/true);
  // A writer's clock ahead of ours never stretches its window past ours.
  registry.Record(Beat("ahead", 0, now + absl::Hours(1)), now, /*replaying=*/true);
  auto listed = registry.List(now + absl::Seconds(1));
  EXPECT_THAT(Ids(listed), ElementsAre("ahead", "old"));
  EXPECT_EQ(listed[1].state, NodeRegistry::State::kLost);
  EXPECT_THAT(registry.Lagging(1, now + absl::Seconds(6)), IsEmpty());
}

}  // namespace
}  // namespace ferry::control
