// Leaving within a bound, and closing clusters a member abandoned while
// leaving still uses.
#include "backend/member_leave.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "backend/fake_cluster.h"

namespace ferry::backend {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Tells when it is destroyed.
class WatchedCluster final : public FakeCluster {
 public:
  WatchedCluster(std::string name, bool* destroyed)
      : FakeCluster(std::move(name)), destroyed_(destroyed) {}
  ~WatchedCluster() override { *destroyed_ = true; }

 private:
  bool* const destroyed_;
};

// The order of Server::Shutdown: groups leave (one member abandoned), then
// the clusters close. The abandoned member, once it gets unstuck, finishes
// leaving on its cluster (FakeCluster::Leave): under ASan a use after free
// when the clusters were simply destroyed.
TEST(CloseClustersTest, KeepsAClusterAMemberAbandonedWhileLeavingStillUses) {
  bool stuck_destroyed = false;
  bool idle_destroyed = false;
  auto stuck = std::make_unique<WatchedCluster>("stuck", &stuck_destroyed);
  auto idle = std::make_unique<WatchedCluster>("idle", &idle_destroyed);
  absl::Notification release;
  stuck->HoldLeaving(&release);
  auto listener = std::make_shared<IdleListener>();
  auto member = stuck->JoinGroup({.group = "g", .topics = {"t"}}, listener.get());
  ASSERT_TRUE(member.ok()) << member.status();
  std::map<std::string, LeavingMember> leaving;
  leaving["stuck"] = {
      .member = *std::move(member), .keep_alive = listener, .cluster = stuck.get()};
  listener.reset();
  ASSERT_THAT(LeaveWithin(std::move(leaving), absl::Milliseconds(50)),
              ElementsAre("stuck"));
  EXPECT_EQ(MembersLeaving(stuck.get()), 1);
  EXPECT_EQ(MembersLeaving(idle.get()), 0);

  std::vector<std::unique_ptr<Cluster>> clusters;
  clusters.push_back(std::move(stuck));
  clusters.push_back(std::move(idle));
  EXPECT_THAT(CloseClusters(std::move(clusters)), ElementsAre("stuck"));
  EXPECT_TRUE(idle_destroyed);
  EXPECT_FALSE(stuck_destroyed);

  release.Notify();
  ASSERT_TRUE(AwaitNoMembersLeaving(absl::Seconds(10)));
  EXPECT_FALSE(stuck_destroyed);
}

TEST(CloseClustersTest, ClosesEveryClusterNoMemberIsLeaving) {
  bool destroyed = false;
  std::vector<std::unique_ptr<Cluster>> clusters;
  clusters.push_back(std::make_unique<WatchedCluster>("a", &destroyed));
  EXPECT_THAT(CloseClusters(std::move(clusters)), IsEmpty());
  EXPECT_TRUE(destroyed);
}

// Commits offset 5 of every partition revoked and counts its revokes into
// a counter that outlives it.
class CommittingOwner final : public IdleListener {
 public:
  explicit CommittingOwner(std::atomic<int>* revokes) : revokes_(revokes) {}
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>& partitions) override {
    ++*revokes_;
    std::map<TopicPartition, int64_t> commits;
    for (const TopicPartition& tp : partitions) commits[tp] = 5;
    return commits;
  }

 private:
  std::atomic<int>* const revokes_;
};

// What the owner of an abandoned member cuts is no longer called, even
// when the member gets unstuck after the owner is gone: no revoke reaches
// it, nothing is committed (without the cut, offset 5 would be).
TEST(LeaveOneWithinTest, AnAbandonedMemberNoLongerReachesItsOwner) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  absl::Notification release;
  cluster.HoldLeaving(&release);
  std::atomic<int> revokes = 0;
  auto owner = std::make_unique<CommittingOwner>(&revokes);
  auto listener = std::make_shared<CuttableListener>(owner.get());
  auto member = cluster.JoinGroup({.group = "g", .topics = {"t"}}, listener.get());
  ASSERT_TRUE(member.ok()) << member.status();
  FakeGroupMember* fake = cluster.members("g").back();
  fake->Assign({{.partition = {"t", 0}, .next_offset = 0}});  // revoked as it leaves
  const int64_t abandoned_before = ConsumersAbandoned(ConsumerKind::kPartitionScan, "c");
  EXPECT_FALSE(LeaveOneWithin(*std::move(member), listener, &cluster,
                              ConsumerKind::kPartitionScan, absl::Milliseconds(50),
                              "test reader"));
  EXPECT_EQ(ConsumersAbandoned(ConsumerKind::kPartitionScan, "c"), abandoned_before + 1);
  owner.reset();  // under ASan: the revoke would reach it after this
  release.Notify();
  ASSERT_TRUE(AwaitNoMembersLeaving(absl::Seconds(10)));
  EXPECT_THAT(cluster.leave_commits("g"), ElementsAre(IsEmpty()));
  EXPECT_EQ(revokes, 0);
}

TEST(LeaveOneWithinTest, AMemberThatLeavesInTimeIsNotCut) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  IdleListener owner;
  auto listener = std::make_shared<CuttableListener>(&owner);
  auto member = cluster.JoinGroup({.group = "g", .topics = {"t"}}, listener.get());
  ASSERT_TRUE(member.ok()) << member.status();
  EXPECT_TRUE(LeaveOneWithin(*std::move(member), listener, &cluster,
                             ConsumerKind::kPartitionScan, absl::Seconds(10),
                             "test reader"));
  EXPECT_EQ(MembersLeaving(), 0);
}

}  // namespace
}  // namespace ferry::backend
