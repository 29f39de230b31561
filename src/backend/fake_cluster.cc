#include "backend/fake_cluster.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "api/retry.h"
#include "backend/batch_completion.h"
#include "backend/member_leave.h"
#include "backend/record_batch.h"

namespace ferry::backend {

FakeGroupMember::FakeGroupMember(FakeCluster* cluster, GroupMemberOptions options,
                                 GroupMemberListener* listener)
    : cluster_(cluster), options_(std::move(options)), listener_(listener) {}

FakeGroupMember::~FakeGroupMember() {
  cluster_->Leave(this);
  std::vector<TopicPartition> owned;
  {
    absl::MutexLock lock(&mu_);
    owned.assign(assigned_.begin(), assigned_.end());
    assigned_.clear();
  }
  if (owned.empty()) return;
  std::map<TopicPartition, int64_t> offsets = listener_->OnRevoked(owned);
  cluster_->RecordLeaveCommit(options_.group, offsets);
  absl::MutexLock lock(&mu_);
  commits_.push_back(std::move(offsets));
}

void FakeGroupMember::SetTopics(std::vector<std::string>) {}

void FakeGroupMember::Commit(std::map<TopicPartition, int64_t> offsets) {
  absl::MutexLock lock(&mu_);
  commits_.push_back(std::move(offsets));
}

void FakeGroupMember::Pause(const std::vector<TopicPartition>& partitions) {
  absl::MutexLock lock(&mu_);
  paused_.insert(partitions.begin(), partitions.end());
}

void FakeGroupMember::Resume(const std::vector<TopicPartition>& partitions) {
  absl::MutexLock lock(&mu_);
  for (const auto& tp : partitions) paused_.erase(tp);
}

void FakeGroupMember::Seek(const TopicPartition& partition, int64_t offset) {
  absl::MutexLock lock(&mu_);
  pending_seeks_.emplace_back(partition, offset);
}

std::vector<std::pair<TopicPartition, int64_t>> FakeGroupMember::CompleteSeeks(
    size_t count) {
  std::vector<std::pair<TopicPartition, int64_t>> seeks;
  {
    absl::MutexLock lock(&mu_);
    const auto end = pending_seeks_.begin() +
                     static_cast<std::ptrdiff_t>(std::min(count, pending_seeks_.size()));
    seeks.assign(pending_seeks_.begin(), end);
    pending_seeks_.erase(pending_seeks_.begin(), end);
  }
  for (const auto& [partition, offset] : seeks) listener_->OnSeekDone(partition, offset);
  return seeks;
}

int64_t FakeGroupMember::HighWatermark(const TopicPartition&) const { return -1; }

void FakeGroupMember::Assign(const std::vector<AssignedPartition>& partitions) {
  {
    absl::MutexLock lock(&mu_);
    for (const auto& p : partitions) assigned_.insert(p.partition);
  }
  listener_->OnAssigned(partitions);
}

void FakeGroupMember::AssignAtStartOffsets() {
  std::vector<AssignedPartition> partitions;
  for (const auto& [partition, offset] : options_.start_offsets) {
    if (!IsChosen(options_.partitions, partition)) continue;
    partitions.push_back({.partition = partition, .next_offset = offset});
  }
  Assign(partitions);
}

void FakeGroupMember::Revoke(const std::vector<TopicPartition>& partitions) {
  {
    absl::MutexLock lock(&mu_);
    for (const TopicPartition& partition : partitions) assigned_.erase(partition);
  }
  listener_->OnRevoked(partitions);
}

void FakeGroupMember::Deliver(std::vector<ConsumedRecord> records) {
  listener_->OnRecords(std::move(records));
}

void FakeGroupMember::ReportError(const absl::Status& status) {
  listener_->OnError(status);
}

void FakeGroupMember::AnswerCommits(const absl::Status& status) {
  std::vector<std::map<TopicPartition, int64_t>> answer;
  {
    absl::MutexLock lock(&mu_);
    answer.assign(commits_.begin() + static_cast<ptrdiff_t>(answered_), commits_.end());
    answered_ = commits_.size();
  }
  for (const auto& offsets : answer) {
    for (const auto& [tp, offset] : offsets) listener_->OnCommitted(tp, offset, status);
  }
}

std::vector<std::map<TopicPartition, int64_t>> FakeGroupMember::commits() const {
  absl::MutexLock lock(&mu_);
  return commits_;
}

std::set<TopicPartition> FakeGroupMember::paused() const {
  absl::MutexLock lock(&mu_);
  return paused_;
}

FakeCluster::FakeCluster(std::string name) : name_(std::move(name)) {}

void FakeCluster::AddTopic(const std::string& topic, int partitions) {
  absl::MutexLock lock(&mu_);
  topics_[topic] = partitions;
}

void FakeCluster::SetPublishStatus(absl::Status status) {
  absl::MutexLock lock(&mu_);
  publish_status_ = std::move(status);
}

std::vector<Record> FakeCluster::published() const {
  absl::MutexLock lock(&mu_);
  return published_;
}

std::vector<FakeGroupMember*> FakeCluster::members(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  auto it = members_.find(group);
  return it == members_.end() ? std::vector<FakeGroupMember*>{} : it->second;
}

void FakeCluster::HoldLeaving(absl::Notification* release) {
  absl::MutexLock lock(&mu_);
  hold_leaving_ = release;
}

int FakeCluster::leaving() const {
  absl::MutexLock lock(&mu_);
  return leaving_;
}

bool FakeCluster::AwaitMembers(const std::string& group, size_t count,
                               absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = members_.find(group);
    return it != members_.end() && it->second.size() >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

bool FakeCluster::AwaitLeaving(int count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, count]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return leaving_ >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

bool FakeCluster::AwaitLeaveCommits(const std::string& group, size_t count,
                                    absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = leave_commits_.find(group);
    return it != leave_commits_.end() && it->second.size() >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

void FakeCluster::Leave(FakeGroupMember*) {
  absl::Notification* hold;
  {
    absl::MutexLock lock(&mu_);
    hold = hold_leaving_;
    ++leaving_;
  }
  if (hold != nullptr) hold->WaitForNotification();
  absl::MutexLock lock(&mu_);
  --leaving_;
}

void FakeCluster::RecordLeaveCommit(const std::string& group,
                                    const std::map<TopicPartition, int64_t>& offsets) {
  absl::MutexLock lock(&mu_);
  leave_commits_[group].push_back(offsets);
}

std::vector<std::map<TopicPartition, int64_t>> FakeCluster::leave_commits(
    const std::string& group) const {
  absl::MutexLock lock(&mu_);
  auto it = leave_commits_.find(group);
  return it == leave_commits_.end() ? std::vector<std::map<TopicPartition, int64_t>>{}
                                    : it->second;
}

void FakeCluster::SetStatus(ClusterStatus status) {
  absl::MutexLock lock(&mu_);
  status_ = std::move(status);
}

ClusterStatus FakeCluster::Status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

ClusterStatus FakeCluster::Describe(bool) { return Status(); }

void FakeCluster::Publish(Record record, PublishCallback done) {
  PublishOutcome outcome;
  {
    absl::MutexLock lock(&mu_);
    outcome.status = publish_status_;
    // Statuses a test sets are Ferry's own, decided by the one table.
    outcome.retryable = api::IsRetryable(outcome.status.code());
    outcome.counts_against_cluster = api::CountsAgainstCluster(outcome.status.code());
    if (outcome.status.ok()) {
      outcome.partition = 0;
      outcome.offset = static_cast<int64_t>(published_.size());
      published_.push_back(std::move(record));
    }
  }
  done(std::move(outcome));  // inline, as the contract allows
}

void FakeCluster::PublishBatch(const RecordBatch& batch, BatchCallback done) {
  BatchCompletion* completion = BatchCompletion::Start(batch, std::move(done));
  for (size_t i = 0; i < batch.records.size(); ++i) {
    if (completion->FailedBehindKey(i)) continue;
    Publish(ToRecord(batch, i), [completion, i](PublishOutcome outcome) {
      completion->Finish(i, std::move(outcome));
    });
  }
  completion->Submitted();
}

absl::StatusOr<TopicInfo> FakeCluster::DescribeTopic(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return absl::NotFoundError("unknown topic " + topic);
  TopicInfo info{.name = topic};
  for (int p = 0; p < it->second; ++p) {
    PartitionInfo partition;
    partition.id = p;
    info.partitions.push_back(partition);
  }
  return info;
}

absl::Status FakeCluster::CreateTopic(const std::string& topic, int partitions, int,
                                      const std::map<std::string, std::string>&) {
  AddTopic(topic, partitions > 0 ? partitions : 1);
  return absl::OkStatus();
}

absl::Status FakeCluster::DeleteTopic(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  topics_.erase(topic);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<GroupMember>> FakeCluster::JoinGroup(
    const GroupMemberOptions& options, GroupMemberListener* listener) {
  if (absl::Status checked = CheckReaderOptions(options); !checked.ok()) return checked;
  auto member = std::make_unique<FakeGroupMember>(this, options, listener);
  absl::MutexLock lock(&mu_);
  members_[options.group].push_back(member.get());
  return member;
}

absl::StatusOr<std::map<TopicPartition, int64_t>> FakeCluster::CommittedOffsets(
    const std::string&, const std::vector<std::string>&) {
  return absl::UnimplementedError("fake cluster");
}

absl::Status FakeCluster::AlterCommittedOffsets(
    const std::string&, const std::map<TopicPartition, int64_t>&) {
  return absl::UnimplementedError("fake cluster");
}

absl::StatusOr<std::map<TopicPartition, int64_t>> FakeCluster::OffsetsForTime(
    const std::string&, int64_t) {
  return absl::UnimplementedError("fake cluster");
}

absl::StatusOr<std::vector<std::string>> FakeCluster::ListGroups() {
  return absl::UnimplementedError("fake cluster");
}

LeaveHold::LeaveHold(FakeCluster& cluster, absl::Duration longest) : cluster_(cluster) {
  cluster_.HoldLeaving(&release_);
  releaser_ = std::thread([this, longest] {
    done_.WaitForNotificationWithTimeout(longest);
    release_.Notify();
  });
}

LeaveHold::~LeaveHold() {
  done_.Notify();
  releaser_.join();
  cluster_.HoldLeaving(nullptr);
  // Released members still wake up on release_.
  EXPECT_TRUE(AwaitNoMembersLeaving(absl::Seconds(10)));
}

}  // namespace ferry::backend
