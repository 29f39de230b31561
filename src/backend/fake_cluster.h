#pragma once

// An in-memory Cluster for unit tests of what sits on the backend interface
// (the subscribe path, the registry). Everything completes on the calling
// thread, which is what the Cluster contract allows and what locking bugs
// need to show up:
// - Publish() runs its callback inline, before returning, with the outcome
//   the test set (OK by default); PublishBatch() publishes record by record
//   the same way (holding back records behind a failed ordering key, as the
//   contract asks) and runs its callback inline too.
// - JoinGroup() returns a FakeGroupMember that does nothing by itself; the
//   test drives it (Assign, Deliver, AnswerCommits) from its own thread,
//   which stands in for the member thread.
//
// Tests may subclass FakeCluster to script one method (e.g. a blocking
// DescribeTopic with gmock) and keep the rest.
//
// Threading: thread-safe.

#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backend/cluster.h"
#include "backend/group_member.h"
#include "backend/idle_listener.h"

namespace ferry::backend {

class FakeCluster;

class FakeGroupMember final : public GroupMember {
 public:
  FakeGroupMember(FakeCluster* cluster, GroupMemberOptions options,
                  GroupMemberListener* listener);
  // Revokes what it owns (the listener's offsets are recorded as a commit),
  // as a real member leaving its group does. Blocks first while the cluster
  // holds leaving members (FakeCluster::HoldLeaving).
  ~FakeGroupMember() override;

  // GroupMember: record what was asked.
  void SetTopics(std::vector<std::string> topics) override;
  void Commit(std::map<TopicPartition, int64_t> offsets) override;
  void Pause(const std::vector<TopicPartition>& partitions) override;
  void Resume(const std::vector<TopicPartition>& partitions) override;
  void Seek(const TopicPartition& partition, int64_t offset) override;
  int64_t HighWatermark(const TopicPartition& partition) const override;

  // Test side: events of the member thread.
  void Assign(const std::vector<AssignedPartition>& partitions);
  // Assigns the partitions of options().start_offsets at those offsets (of
  // options().partitions only, when there are), as a standalone member of a
  // real backend starts them.
  void AssignAtStartOffsets();
  // Takes `partitions` away (OnRevoked), as a rebalance does.
  void Revoke(const std::vector<TopicPartition>& partitions);
  void Deliver(std::vector<ConsumedRecord> records);
  void ReportError(const absl::Status& status);
  // Answers the commits asked for so far (in order) with `status`.
  void AnswerCommits(const absl::Status& status);
  // Completes the oldest `count` seeks not completed yet (OnSeekDone each),
  // by default all, and returns them.
  std::vector<std::pair<TopicPartition, int64_t>> CompleteSeeks(
      size_t count = std::numeric_limits<size_t>::max());

  const GroupMemberOptions& options() const { return options_; }
  // Every Commit() so far, answered or not.
  std::vector<std::map<TopicPartition, int64_t>> commits() const;
  std::set<TopicPartition> paused() const;

 private:
  FakeCluster* const cluster_;
  const GroupMemberOptions options_;
  GroupMemberListener* const listener_;
  mutable absl::Mutex mu_;
  std::set<TopicPartition> assigned_ ABSL_GUARDED_BY(mu_);
  std::set<TopicPartition> paused_ ABSL_GUARDED_BY(mu_);
  std::vector<std::map<TopicPartition, int64_t>> commits_ ABSL_GUARDED_BY(mu_);
  size_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<TopicPartition, int64_t>> pending_seeks_ ABSL_GUARDED_BY(mu_);
};

class FakeCluster : public Cluster {
 public:
  explicit FakeCluster(std::string name = "fake");

  // Test side.
  void AddTopic(const std::string& topic, int partitions);
  // Outcome of every later Publish (completed inline).
  void SetPublishStatus(absl::Status status);
  // What Status() answers from now on (default: up).
  void SetStatus(ClusterStatus status);
  std::vector<Record> published() const;
  // The members that joined `group`, oldest first (they stay listed after
  // they left). Owned by their callers.
  std::vector<FakeGroupMember*> members(const std::string& group) const;
  // Waits until `count` members joined `group` (left ones included); false
  // after `timeout`.
  bool AwaitMembers(const std::string& group, size_t count, absl::Duration timeout) const;
  // Leaving members block in their destructor until `release` is notified
  // (null: they leave at once).
  void HoldLeaving(absl::Notification* release);
  // How many members are blocked leaving now.
  int leaving() const;
  // Waits until at least `count` members are blocked leaving; false after
  // `timeout`.
  bool AwaitLeaving(int count, absl::Duration timeout) const;
  // Waits until members of `group` made `count` leave commits (each after
  // its listener's OnRevoked returned); false after `timeout`.
  bool AwaitLeaveCommits(const std::string& group, size_t count,
                         absl::Duration timeout) const;
  // What members of `group` committed as they left (their OnRevoked
  // offsets), oldest first; readable after the members are gone.
  std::vector<std::map<TopicPartition, int64_t>> leave_commits(
      const std::string& group) const;

  // Cluster.
  const std::string& name() const override { return name_; }
  std::string_view type() const override { return "fake"; }
  const std::string& bootstrap() const override { return name_; }
  ClusterStatus Status() const override;
  ClusterStatus Describe(bool include_topics) override;
  void Publish(Record record, PublishCallback done) override;
  void PublishBatch(const RecordBatch& batch, BatchCallback done) override;
  absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) override;
  absl::Status CreateTopic(const std::string& topic, int partitions,
                           int replication_factor,
                           const std::map<std::string, std::string>& configs) override;
  absl::Status DeleteTopic(const std::string& topic) override;
  absl::StatusOr<std::unique_ptr<GroupMember>> JoinGroup(
      const GroupMemberOptions& options, GroupMemberListener* listener) override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics) override;
  absl::Status AlterCommittedOffsets(
      const std::string& group,
      const std::map<TopicPartition, int64_t>& offsets) override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> OffsetsForTime(
      const std::string& topic, int64_t timestamp_ms) override;
  absl::StatusOr<std::vector<std::string>> ListGroups() override;

 private:
  friend class FakeGroupMember;
  void Leave(FakeGroupMember* member);
  void RecordLeaveCommit(const std::string& group,
                         const std::map<TopicPartition, int64_t>& offsets);

  const std::string name_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> topics_ ABSL_GUARDED_BY(mu_);
  absl::Status publish_status_ ABSL_GUARDED_BY(mu_);
  ClusterStatus status_ ABSL_GUARDED_BY(mu_) = {.state = ClusterState::kUp};
  std::vector<Record> published_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<FakeGroupMember*>> members_ ABSL_GUARDED_BY(mu_);
  absl::Notification* hold_leaving_ ABSL_GUARDED_BY(mu_) = nullptr;
  int leaving_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::vector<std::map<TopicPartition, int64_t>>> leave_commits_
      ABSL_GUARDED_BY(mu_);
};

// Answers an offset translation's offset and metadata requests: one group,
// "g", and every group asked about committed offset 5 in partition 0 of
// each topic, which holds records [0, 5).
class CommittedCluster : public FakeCluster {
 public:
  using FakeCluster::FakeCluster;
  absl::StatusOr<std::vector<std::string>> ListGroups() override {
    return std::vector<std::string>{"g"};
  }
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string&, const std::vector<std::string>& topics) override {
    std::map<TopicPartition, int64_t> offsets;
    for (const std::string& topic : topics) offsets[{topic, 0}] = 5;
    return offsets;
  }
  absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) override {
    PartitionInfo partition;
    partition.high_watermark = 5;
    return TopicInfo{.name = topic, .partitions = {partition}};
  }
};

// Holds the members leaving `cluster` (FakeCluster::HoldLeaving) while it
// lives, at most `longest`: code that waits for a leave without a bound
// then returns late (a test's timing assertion fails) instead of hanging.
// Destruction releases them and waits until no member leaves anymore.
class LeaveHold {
 public:
  LeaveHold(FakeCluster& cluster, absl::Duration longest);
  ~LeaveHold();
  LeaveHold(const LeaveHold&) = delete;
  LeaveHold& operator=(const LeaveHold&) = delete;

 private:
  FakeCluster& cluster_;
  absl::Notification release_;
  absl::Notification done_;
  std::thread releaser_;
};

}  // namespace ferry::backend
