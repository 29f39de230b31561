#include "backend/embedded/group_coordinator.h"

#include <gtest/gtest.h>

namespace ferry::backend::embedded {
namespace {

// Counts its wake-ups.
class CountingMember final : public Wakeable {
 public:
  void Wake() override { ++wakes; }
  int Take() { return std::exchange(wakes, 0); }
  int wakes = 0;
};

// Two groups on topic "a", one on "b"; each member owns its group's topic.
class WakeReadersTest : public ::testing::Test {
 protected:
  WakeReadersTest() {
    Own("g1", &a1_, "a");
    Own("g2", &a2_, "a");
    Own("g3", &b_, "b");
    coordinator_.Watch(&standalone_);
    for (CountingMember* m : {&a1_, &a2_, &b_, &standalone_}) m->Take();
  }
  void Own(const std::string& group, CountingMember* member, const std::string& topic) {
    coordinator_.Join(group, member, group);
    coordinator_.Subscribe(group, member, {topic});
    EXPECT_TRUE(coordinator_.TryTake(group, member, topic));
  }

  GroupCoordinator coordinator_;
  CountingMember a1_, a2_, b_, standalone_;
};

TEST_F(WakeReadersTest, AWriteWakesOnlyTheOwnersOfItsTopicAndStandaloneReaders) {
  coordinator_.WakeReaders({"a"});
  EXPECT_EQ(a1_.Take(), 1);
  EXPECT_EQ(a2_.Take(), 1);
  EXPECT_EQ(b_.Take(), 0) << "a group reading another topic sleeps on";
  EXPECT_EQ(standalone_.Take(), 1);
}

TEST_F(WakeReadersTest, AMemberSubscribedButNotOwningIsNotWokenByWrites) {
  CountingMember waiting;
  coordinator_.Join("g1", &waiting, "second");
  coordinator_.Subscribe("g1", &waiting, {"a"});
  EXPECT_FALSE(coordinator_.TryTake("g1", &waiting, "a"));
  for (CountingMember* m : {&waiting, &a1_, &a2_, &b_}) m->Take();
  coordinator_.WakeReaders({"a", "b"});
  EXPECT_EQ(waiting.Take(), 0);
  EXPECT_EQ(a1_.Take(), 1);
  EXPECT_EQ(b_.Take(), 1);
  // It takes the topic over through the group change, which wakes it.
  coordinator_.Release("g1", &a1_, {"a"});
  coordinator_.Leave("g1", &a1_);
  EXPECT_GE(waiting.Take(), 1);
}

}  // namespace
}  // namespace ferry::backend::embedded
