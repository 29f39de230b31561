#include "publish/topic_auto_creator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "backend/group_member.h"

namespace ferry::publish {
namespace {

using ::testing::_;
using ::testing::Invoke;
using ::testing::Return;

// Topic administration only; the auto-creator uses nothing else.
class AdminOnlyCluster : public backend::Cluster {
 public:
  explicit AdminOnlyCluster(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  std::string_view type() const override { return "test"; }
  const std::string& bootstrap() const override { return name_; }
  backend::ClusterStatus Status() const override { return {}; }
  backend::ClusterStatus Describe(bool) override { return {}; }
  void Publish(backend::Record, backend::PublishCallback) override {}
  MOCK_METHOD(absl::StatusOr<backend::TopicInfo>, DescribeTopic, (const std::string&),
              (override));
  MOCK_METHOD(absl::Status, CreateTopic,
              (const std::string&, int, int, (const std::map<std::string, std::string>&)),
              (override));
  absl::Status DeleteTopic(const std::string&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<backend::GroupMember>> JoinGroup(
      const backend::GroupMemberOptions&, backend::GroupMemberListener*) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::map<backend::TopicPartition, int64_t>> CommittedOffsets(
      const std::string&, const std::vector<std::string>&) override {
    return absl::UnimplementedError("");
  }
  absl::Status AlterCommittedOffsets(
      const std::string&, const std::map<backend::TopicPartition, int64_t>&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::map<backend::TopicPartition, int64_t>> OffsetsForTime(
      const std::string&, int64_t) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::vector<std::string>> ListGroups() override {
    return absl::UnimplementedError("");
  }

 private:
  const std::string name_;
};

// Collects callback results from any thread.
class Results {
 public:
  std::function<void(absl::Status)> Add() {
    return [this](absl::Status status) {
      absl::MutexLock lock(&mu_);
      statuses_.push_back(std::move(status));
    };
  }
  std::vector<absl::Status> WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return statuses_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return statuses_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
};

TEST(TopicAutoCreator, CallersOfOneMissingTopicShareOneLookupAndCreation) {
  AdminOnlyCluster cluster("a");
  absl::Notification release;
  EXPECT_CALL(cluster, DescribeTopic("orders")).WillOnce(Invoke([&](const std::string&) {
    release.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(absl::NotFoundError("no such topic"));
  }));
  EXPECT_CALL(cluster, CreateTopic("orders", -1, -1, _))
      .WillOnce(Return(absl::OkStatus()));
  Results results;
  TopicAutoCreator creator;
  for (int i = 0; i < 10; ++i) creator.EnsureExists(&cluster, "orders", results.Add());
  release.Notify();
  auto statuses = results.WaitFor(10);
  ASSERT_EQ(statuses.size(), 10u);
  for (const auto& status : statuses) EXPECT_TRUE(status.ok()) << status;

  // Known from now on: answered at once, on the caller's thread.
  bool called = false;
  creator.EnsureExists(&cluster, "orders", [&](absl::Status s) { called = s.ok(); });
  EXPECT_TRUE(called);
}

TEST(TopicAutoCreator, AnUnreachableClusterDelaysOnlyItsOwnTopics) {
  AdminOnlyCluster down("down"), up("up");
  absl::Notification release;
  EXPECT_CALL(down, DescribeTopic("t")).WillOnce(Invoke([&](const std::string&) {
    release.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(absl::UnavailableError("timed out"));
  }));
  EXPECT_CALL(up, DescribeTopic("t"))
      .WillOnce(Return(absl::StatusOr<backend::TopicInfo>(backend::TopicInfo{})));
  Results slow, fast;
  TopicAutoCreator creator;
  creator.EnsureExists(&down, "t", slow.Add());
  creator.EnsureExists(&up, "t", fast.Add());
  auto statuses = fast.WaitFor(1);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_TRUE(statuses[0].ok());
  release.Notify();
  statuses = slow.WaitFor(1);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable);

  // A failed lookup is not remembered: the next caller asks again.
  EXPECT_CALL(down, DescribeTopic("t"))
      .WillOnce(Return(absl::StatusOr<backend::TopicInfo>(backend::TopicInfo{})));
  Results again;
  creator.EnsureExists(&down, "t", again.Add());
  statuses = again.WaitFor(1);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_TRUE(statuses[0].ok());
}

TEST(TopicAutoCreator, ShutdownAnswersWaitersUnavailable) {
  AdminOnlyCluster cluster("a");
  absl::Notification entered, release;
  EXPECT_CALL(cluster, DescribeTopic("first")).WillOnce(Invoke([&](const std::string&) {
    entered.Notify();
    release.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(backend::TopicInfo{});
  }));
  Results results;
  {
    TopicAutoCreator creator;
    creator.EnsureExists(&cluster, "first", results.Add());
    entered.WaitForNotification();
    creator.EnsureExists(&cluster, "second", results.Add());  // queued behind
    std::thread releaser([&] {
      absl::SleepFor(absl::Milliseconds(50));
      release.Notify();
    });
    // The destructor waits for the lookup in progress, never starts "second".
    releaser.detach();
  }
  auto statuses = results.WaitFor(2);
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ferry::publish
