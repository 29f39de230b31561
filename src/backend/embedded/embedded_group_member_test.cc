#include "backend/embedded/embedded_group_member.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backend/embedded/embedded_cluster.h"
#include "backend/refused_member_options.h"
#include "testing/test_dir.h"

namespace ferry::backend::embedded {
namespace {

using ::ferry::testing::TestDir;

using ::testing::ElementsAre;

// Records every callback as a line ("assigned t/0@5", "records t/0@3-4",
// "seek t/0@1", "revoked t/0", "error ...") plus the records themselves.
class Listener : public GroupMemberListener {
 public:
  void OnAssigned(const std::vector<AssignedPartition>& partitions) override {
    absl::MutexLock lock(&mu_);
    for (const AssignedPartition& a : partitions) {
      events_.push_back(fmt::format("assigned {}/{}@{}", a.partition.topic,
                                    a.partition.partition, a.next_offset));
      next_[a.partition] = a.next_offset;
    }
  }
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>& partitions) override {
    absl::MutexLock lock(&mu_);
    std::map<TopicPartition, int64_t> commit;
    for (const TopicPartition& p : partitions) {
      events_.push_back(fmt::format("revoked {}/{}", p.topic, p.partition));
      if (next_.contains(p)) commit[p] = next_[p];
      next_.erase(p);
    }
    return commit;
  }
  void OnRecords(std::vector<ConsumedRecord> records) override {
    absl::MutexLock lock(&mu_);
    batch_sizes_.push_back(records.size());
    for (ConsumedRecord& r : records) {
      const TopicPartition p{r.topic, r.partition};
      events_.push_back(fmt::format("record {}/{}@{}", r.topic, r.partition, r.offset));
      next_[p] = r.offset + 1;
      received_at_.push_back(absl::Now());
      records_.push_back(std::move(r));
    }
  }
  void OnSeekDone(const TopicPartition& p, int64_t offset) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(fmt::format("seek {}/{}@{}", p.topic, p.partition, offset));
    next_[p] = offset;
  }
  void OnError(const absl::Status& error) override {
    absl::MutexLock lock(&mu_);
    events_.push_back("error " + std::string(error.message()));
  }

  // Waits until `count` records arrived in total; false on timeout.
  bool WaitForRecords(size_t count) {
    return WaitUntil(
        [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return records_.size() >= count; });
  }
  bool WaitForEvent(const std::string& event) {
    return WaitUntil([&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return std::find(events_.begin(), events_.end(), event) != events_.end();
    });
  }
  bool WaitUntilEventStartsWith(const std::string& prefix) {
    return WaitUntil([&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return std::any_of(events_.begin(), events_.end(),
                         [&](const std::string& e) { return e.starts_with(prefix); });
    });
  }
  std::vector<std::string> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<ConsumedRecord> Records() {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  std::vector<size_t> BatchSizes() {
    absl::MutexLock lock(&mu_);
    return batch_sizes_;
  }
  std::vector<absl::Time> ReceivedAt() {
    absl::MutexLock lock(&mu_);
    return received_at_;
  }

 private:
  bool WaitUntil(std::function<bool()> done) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  }

  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::vector<ConsumedRecord> records_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> batch_sizes_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> received_at_ ABSL_GUARDED_BY(mu_);
  std::map<TopicPartition, int64_t> next_ ABSL_GUARDED_BY(mu_);
};

class GroupMemberTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(EmbeddedGroupMember::Limits limits = {}) {
    cluster_.reset();
    auto cluster =
        EmbeddedCluster::Open("local", {.path = dir_.path(), .fetch_limits = limits});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
  }

  // Publishes and waits for the acknowledgements; returns the offsets.
  std::vector<int64_t> Publish(const std::string& topic, int count,
                               const std::string& value = "v", int64_t timestamp_ms = 0) {
    absl::Mutex mu;
    std::vector<int64_t> offsets(count, -2);
    int done = 0;
    for (int i = 0; i < count; ++i) {
      cluster_->Publish({.topic = topic, .value = value, .timestamp_ms = timestamp_ms},
                        [&, i](PublishOutcome outcome) {
                          absl::MutexLock lock(&mu);
                          EXPECT_TRUE(outcome.status.ok()) << outcome.status;
                          offsets[i] = outcome.offset;
                          ++done;
                        });
    }
    absl::MutexLock lock(&mu);
    auto all_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done == count; };
    mu.Await(absl::Condition(&all_done));
    return offsets;
  }

  std::unique_ptr<GroupMember> Join(Listener& listener, std::vector<std::string> topics,
                                    StartPosition start = {},
                                    const std::string& group = "g") {
    auto member = cluster_->JoinGroup(
        {.group = group, .topics = std::move(topics), .start = start}, &listener);
    EXPECT_TRUE(member.ok()) << member.status();
    return member.ok() ? *std::move(member) : nullptr;
  }

  int64_t Committed(const std::string& topic, int32_t partition,
                    const std::string& group = "g") {
    return cluster_->CommittedOffsets(group, {topic}).value().at({topic, partition});
  }

  TestDir dir_;
  std::unique_ptr<EmbeddedCluster> cluster_;
};

TEST_F(GroupMemberTest, LatestStartsAtTheHighWatermarkAndIsCommittedAtOnce) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 2, 1, {}).ok());
  Publish("t", 3);  // round-robin: 2 on partition 0, 1 on partition 1
  Listener listener;
  auto member = Join(listener, {"t"});
  ASSERT_TRUE(listener.WaitForEvent("assigned t/1@1"));
  EXPECT_THAT(listener.Events(), ElementsAre("assigned t/0@2", "assigned t/1@1"));
  EXPECT_EQ(Committed("t", 0), 2);
  EXPECT_EQ(Committed("t", 1), 1);
  EXPECT_EQ(member->HighWatermark({"t", 0}), 2);
  EXPECT_EQ(member->HighWatermark({"t", 1}), 1);
  EXPECT_EQ(member->HighWatermark({"t", 7}), -1);
  Publish("t", 1);
  ASSERT_TRUE(listener.WaitForRecords(1));
  EXPECT_EQ(listener.Records()[0].offset, 1);  // partition 1, the 4th record
  EXPECT_EQ(member->HighWatermark({"t", 1}), 2);
}

TEST_F(GroupMemberTest, EarliestAndTimestampStartPositions) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {}).ok());
  Publish("t", 2, "old", 1000);
  Publish("t", 2, "new", 5000);
  Listener earliest;
  auto a = Join(earliest, {"t"}, {.kind = StartPosition::Kind::kEarliest}, "a");
  ASSERT_TRUE(earliest.WaitForRecords(4));
  EXPECT_EQ(earliest.Events()[0], "assigned t/0@0");

  Listener by_time;
  auto b = Join(by_time, {"t"},
                {.kind = StartPosition::Kind::kTimestamp, .timestamp_ms = 2000}, "b");
  ASSERT_TRUE(by_time.WaitForRecords(2));
  EXPECT_EQ(by_time.Events()[0], "assigned t/0@2");
  EXPECT_EQ(by_time.Records()[0].value, "new");
}

TEST_F(GroupMemberTest, ACommittedOffsetWinsOverTheStartPosition) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {}).ok());
  Publish("t", 5);
  ASSERT_TRUE(cluster_->AlterCommittedOffsets("g", {{{"t", 0}, 3}}).ok());
  Listener listener;
  auto member = Join(listener, {"t"}, {.kind = StartPosition::Kind::kEarliest});
  ASSERT_TRUE(listener.WaitForRecords(2));
  EXPECT_THAT(listener.Events(),
              ElementsAre("assigned t/0@3", "record t/0@3", "record t/0@4"));
  EXPECT_EQ(cluster_->AlterCommittedOffsets("g", {{{"t", 0}, 0}}).code(),
            absl::StatusCode::kFailedPrecondition);
}

// A standalone reader of a range (a partition scan) starts the listed
// partitions at their start offsets, the others at the start position, and
// delivers nothing before: no seek, no record of another position.
TEST_F(GroupMemberTest, AStandaloneMemberStartsAtItsStartOffsets) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 2, 1, {}).ok());
  Publish("t", 10);  // round-robin: 5 on each partition
  Listener listener;
  auto member = cluster_->JoinGroup({.group = "scan",
                                     .topics = {"t"},
                                     .start = {.kind = StartPosition::Kind::kLatest},
                                     .standalone = true,
                                     .start_offsets = {{{"t", 0}, 3}}},
                                    &listener);
  ASSERT_TRUE(member.ok()) << member.status();
  ASSERT_TRUE(listener.WaitForRecords(2));
  EXPECT_THAT(listener.Events(), ElementsAre("assigned t/0@3", "assigned t/1@5",
                                             "record t/0@3", "record t/0@4"));
}

// A reader of some partitions (a partition scan) owns only those: before,
// it was assigned every partition of the topic, reading the others too.
TEST_F(GroupMemberTest, AStandaloneMemberOfChosenPartitionsOwnsOnlyThose) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 2, 1, {}).ok());
  Publish("t", 6);  // round-robin: 3 on each partition
  Listener listener;
  auto member = cluster_->JoinGroup({.group = "scan",
                                     .topics = {"t"},
                                     .start = {.kind = StartPosition::Kind::kEarliest},
                                     .standalone = true,
                                     .start_offsets = {{{"t", 1}, 1}},
                                     .partitions = {{"t", 1}}},
                                    &listener);
  ASSERT_TRUE(member.ok()) << member.status();
  ASSERT_TRUE(listener.WaitForRecords(2));
  member->reset();
  EXPECT_THAT(listener.Events(), ElementsAre("assigned t/1@1", "record t/1@1",
                                             "record t/1@2", "revoked t/1"));
}

// Start offsets and chosen partitions bind only a standalone reader, and
// start offsets only at 0 or more; before, a group member silently ignored
// them.
TEST_F(GroupMemberTest, JoinGroupRefusesStartOffsetsItCannotHonour) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {}).ok());
  Listener listener;
  for (const GroupMemberOptions& options : RefusedMemberOptions()) {
    auto refused = cluster_->JoinGroup(options, &listener);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << options.group << ": " << refused.status();
  }
}

TEST_F(GroupMemberTest, NewRecordsArriveWithoutAPollingDelay) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {}).ok());
  Listener listener;
  auto member = Join(listener, {"t"});
  ASSERT_TRUE(listener.WaitForEvent("assigned t/0@0"));
  absl::Duration total;
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; ++i) {
    Publish("t", 1);
    const absl::Time acked = absl::Now();
    ASSERT_TRUE(listener.WaitForRecords(i + 1));
    total += std::max(listener.ReceivedAt()[i] - acked, absl::ZeroDuration());
  }
  // The writer wakes the member after each write; a polling consumer would
  // add half its interval on average.
  EXPECT_LT(total / kRounds, absl::Milliseconds(20));
}

TEST_F(GroupMemberTest, PausedPartitionsAreNotDeliveredUntilResumed) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 2, 1, {}).ok());
  Listener listener;
  auto member = Join(listener, {"t"});
  ASSERT_TRUE(listener.WaitForEvent("assigned t/1@0"));
  member->Pause({{"t", 0}});
  Publish("t", 4);  // two per partition
  ASSERT_TRUE(listener.WaitForRecords(2));
  absl::SleepFor(absl::Milliseconds(100));
  for (const ConsumedRecord& r : listener.Records()) EXPECT_EQ(r.partition, 1);
  EXPECT_EQ(listener.Records().size(), 2u);
  member->Resume({{"t", 0}});
  ASSERT_TRUE(listener.WaitForRecords(4));
  EXPECT_EQ(listener.Records()[2].partition, 0);
}

TEST_F(GroupMemberTest, SeekDoneComesBeforeTheRecordsFromTheNewOffset) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {}).ok());
  Publish("t", 3);
  Listener listener;
  auto member = Join(listener, {"t"}, {.kind = StartPosition::Kind::kEarliest});
  ASSERT_TRUE(listener.WaitForRecords(3));
  member->Seek({"t", 0}, 1);
  member->Seek({"other", 0}, 1);  // not owned: ignored
  ASSERT_TRUE(listener.WaitForRecords(5));
  EXPECT_THAT(listener.Events(),
              ElementsAre("assigned t/0@0", "record t/0@0", "record t/0@1",
                          "record t/0@2", "seek t/0@1", "record t/0@1", "record t/0@2"));
}

TEST_F(GroupMemberTest, BatchesAreBoundedByRecordsAndBytes) {
  Open({.max_records = 500, .max_bytes = 1 << 20});
  ASSERT_TRUE(cluster_->CreateTopic("small", 1, 1, {}).ok());
  ASSERT_TRUE(cluster_->CreateTopic("big", 1, 1, {}).ok());
  Publish("small", 1200);
  Publish("big", 3, std::string(600 << 10, 'x'));
  Listener listener;
  auto member =
      Join(listener, {"small", "big"}, {.kind = StartPosition::Kind::kEarliest});
  ASSERT_TRUE(listener.WaitForRecords(1203));
  for (size_t size : listener.BatchSizes()) EXPECT_LE(size, 500u);
  size_t big_bytes_in_one_batch = 0;
  for (const ConsumedRecord& r : listener.Records()) {
    if (r.topic == "big")
      big_bytes_in_one_batch = std::max(big_bytes_in_one_batch, r.value.size());
  }
  EXPECT_EQ(big_bytes_in_one_batch, size_t{600 << 10});
}

TEST_F(GroupMemberTest, LeavingCommitsWhatTheListenerReturnsAndItSurvivesReopening) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {}).ok());
  Publish("t", 4);
  Listener listener;
  auto member = Join(listener, {"t"}, {.kind = StartPosition::Kind::kEarliest});
  ASSERT_TRUE(listener.WaitForRecords(4));
  member->Commit({{{"t", 0}, 2}});
  member.reset();  // OnRevoked answers 4 (after the last record seen)
  EXPECT_EQ(listener.Events().back(), "revoked t/0");
  Open();
  EXPECT_EQ(Committed("t", 0), 4);
  EXPECT_EQ(cluster_->DescribeGroup("g")->state, "Empty");
  EXPECT_EQ(cluster_->DescribeGroup("unknown")->state, "Dead");
  EXPECT_EQ(cluster_->ListGroups().value(), std::vector<std::string>{"g"});
}

TEST_F(GroupMemberTest, ExplicitCommitsAreStored) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {}).ok());
  Publish("t", 4);
  Listener listener;
  auto member = Join(listener, {"t"}, {.kind = StartPosition::Kind::kEarliest});
  ASSERT_TRUE(listener.WaitForRecords(4));
  member->Commit({{{"t", 0}, 3}});
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Committed("t", 0) != 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(Committed("t", 0), 3);
}

TEST_F(GroupMemberTest, ASecondMemberTakesOverWhenTheFirstLeaves) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 2, 1, {}).ok());
  Listener first_listener, second_listener;
  auto first = Join(first_listener, {"t"});
  ASSERT_TRUE(first_listener.WaitForEvent("assigned t/1@0"));
  auto second = Join(second_listener, {"t"});
  Publish("t", 4);
  ASSERT_TRUE(first_listener.WaitForRecords(4));
  EXPECT_TRUE(second_listener.Events().empty());

  auto description = cluster_->DescribeGroup("g");
  ASSERT_TRUE(description.ok()) << description.status();
  EXPECT_EQ(description->state, "Stable");
  ASSERT_EQ(description->members.size(), 2u);
  EXPECT_EQ(description->members[0].assignment.size(), 2u);
  EXPECT_TRUE(description->members[1].assignment.empty());

  first.reset();
  ASSERT_TRUE(second_listener.WaitForEvent("assigned t/1@2"));
  EXPECT_THAT(second_listener.Events(), ElementsAre("assigned t/0@2", "assigned t/1@2"));
  Publish("t", 1);
  ASSERT_TRUE(second_listener.WaitForRecords(1));
}

TEST_F(GroupMemberTest, SetTopicsRevokesRemovedTopicsAndAssignsAddedOnes) {
  ASSERT_TRUE(cluster_->CreateTopic("a", 1, 1, {}).ok());
  ASSERT_TRUE(cluster_->CreateTopic("b", 1, 1, {}).ok());
  Publish("a", 2);
  Listener listener;
  auto member = Join(listener, {"a"}, {.kind = StartPosition::Kind::kEarliest});
  ASSERT_TRUE(listener.WaitForRecords(2));
  member->SetTopics({"b"});
  ASSERT_TRUE(listener.WaitForEvent("assigned b/0@0"));
  EXPECT_THAT(listener.Events(),
              ElementsAre("assigned a/0@0", "record a/0@0", "record a/0@1", "revoked a/0",
                          "assigned b/0@0"));
  EXPECT_EQ(Committed("a", 0), 2);
}

TEST_F(GroupMemberTest, AnUnknownTopicIsReportedAndAssignedOnceCreated) {
  Listener listener;
  auto member = Join(listener, {"later"});
  ASSERT_TRUE(listener.WaitUntilEventStartsWith("error unknown topic later"));
  ASSERT_TRUE(cluster_->CreateTopic("later", 1, 1, {}).ok());
  ASSERT_TRUE(listener.WaitForEvent("assigned later/0@0"));
}

// A reader of a range (fail_out_of_range) whose start offset retention
// passed is told so, as Kafka's is, and reads nothing of that partition.
// Before, it read on silently from the log start: a scan took what followed
// the gap for its range.
TEST_F(GroupMemberTest, AReaderOfARangeStartingBelowTheLogStartIsOutOfRange) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {{"retention.ms", "60000"}}).ok());
  Publish("t", 2, "expired", 1000);
  Publish("t", 1, "kept");
  ASSERT_EQ(cluster_->EnforceRetention().value(), 2);
  Listener listener;
  auto member = cluster_->JoinGroup({.group = "scan",
                                     .topics = {"t"},
                                     .standalone = true,
                                     .start_offsets = {{{"t", 0}, 1}},
                                     .fail_out_of_range = true},
                                    &listener);
  ASSERT_TRUE(member.ok()) << member.status();
  ASSERT_TRUE(
      listener.WaitUntilEventStartsWith("error t/0: offset 1 is below the log start 2"));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(listener.Records(), ::testing::IsEmpty());
}

TEST_F(GroupMemberTest, AMemberBelowTheLowWatermarkContinuesFromIt) {
  ASSERT_TRUE(cluster_->CreateTopic("t", 1, 1, {{"retention.ms", "60000"}}).ok());
  Listener listener;
  auto member = Join(listener, {"t"}, {.kind = StartPosition::Kind::kEarliest});
  ASSERT_TRUE(listener.WaitForEvent("assigned t/0@0"));
  member->Pause({{"t", 0}});
  Publish("t", 2, "expired", 1000);
  Publish("t", 1, "kept");
  ASSERT_EQ(cluster_->EnforceRetention().value(), 2);
  member->Resume({{"t", 0}});
  ASSERT_TRUE(listener.WaitForRecords(1));
  EXPECT_EQ(listener.Records()[0].offset, 2);
  EXPECT_EQ(listener.Records()[0].value, "kept");
}

}  // namespace
}  // namespace ferry::backend::embedded
