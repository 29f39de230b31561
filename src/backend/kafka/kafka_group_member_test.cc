// KafkaGroupMember against a real broker: a seek issued the moment a
// partition is assigned takes effect, also while librdkafka is still starting
// the partition's fetcher after a rebalance.
#include "backend/kafka/kafka_group_member.h"

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"

namespace ferry::backend::kafka {
namespace {

constexpr int kPartitions = 4;
constexpr int kRecordsPerPartition = 5;

// Seeks every partition it is assigned to offset 0 from inside OnAssigned,
// as the subscribe path does for a seek the partition missed while it
// changed owners, and tracks which seeks completed.
class SeekOnAssignListener final : public GroupMemberListener {
 public:
  void SetMember(GroupMember* member) {
    member_ = member;
    member_set_.Notify();
  }

  void OnAssigned(const std::vector<AssignedPartition>& partitions) override {
    member_set_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    ++assignments_;
    // The subscribe path commits every commit interval, so a commit is often
    // in flight when a seek follows an assignment.
    std::map<TopicPartition, int64_t> positions;
    for (const auto& p : partitions) positions[p.partition] = p.next_offset;
    member_->Commit(positions);
    for (const auto& p : partitions) {
      seek_done_[p.partition] = false;
      first_offset_.erase(p.partition);
      member_->Seek(p.partition, 0);
    }
  }
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>& partitions) override {
    absl::MutexLock lock(&mu_);
    for (const auto& tp : partitions) seek_done_.erase(tp);
    return {};
  }
  void OnRecords(std::vector<ConsumedRecord> records) override {
    absl::MutexLock lock(&mu_);
    for (const auto& r : records) {
      TopicPartition tp{r.topic, r.partition};
      auto done = seek_done_.find(tp);
      if (done != seek_done_.end() && done->second)
        first_offset_.try_emplace(tp, r.offset);
    }
  }
  void OnSeekDone(const TopicPartition& partition, int64_t offset) override {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(offset, 0);
    if (seek_done_.contains(partition)) seek_done_[partition] = true;
  }
  void OnError(const absl::Status& error) override {
    absl::MutexLock lock(&mu_);
    errors_.push_back(std::string(error.message()));
  }

  // Waits until more than `assignments` assignments happened and every owned
  // partition completed its seek and delivered a record after it; returns
  // the partitions that did not.
  std::set<TopicPartition> WaitSettled(int assignments, absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        std::set<TopicPartition> missing;
        for (const auto& [tp, done] : seek_done_) {
          if (!done || !first_offset_.contains(tp)) missing.insert(tp);
        }
        if (assignments_ > assignments && !seek_done_.empty() && missing.empty()) {
          return {};
        }
        if (absl::Now() >= until) return missing;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  int assignments() {
    absl::MutexLock lock(&mu_);
    return assignments_;
  }
  std::map<TopicPartition, int64_t> first_offsets() {
    absl::MutexLock lock(&mu_);
    return first_offset_;
  }
  std::vector<std::string> errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  absl::Notification member_set_;
  GroupMember* member_ = nullptr;
  absl::Mutex mu_;
  int assignments_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<TopicPartition, bool> seek_done_ ABSL_GUARDED_BY(mu_);
  // The first record delivered after each partition's seek completed.
  std::map<TopicPartition, int64_t> first_offset_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
};

// Ignores everything: the second member only causes rebalances.
class IdleListener final : public GroupMemberListener {
 public:
  void OnAssigned(const std::vector<AssignedPartition>&) override {}
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>&) override {
    return {};
  }
  void OnRecords(std::vector<ConsumedRecord>) override {}
  void OnSeekDone(const TopicPartition&, int64_t) override {}
  void OnError(const absl::Status&) override {}
};

TEST(KafkaGroupMemberTest, SeekRightAfterEachRebalanceTakesEffect) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  const std::string topic = "member.seek_after_rebalance";
  ASSERT_TRUE(broker->CreateTopic(topic, kPartitions).ok());
  std::vector<std::pair<std::string, std::string>> records;
  for (int p = 0; p < kPartitions; ++p) {
    for (int i = 0; i < kRecordsPerPartition; ++i) {
      records.emplace_back(absl::StrCat("k", p, "-", i), "v");
    }
  }
  ASSERT_TRUE(testing::ProduceMany(broker->bootstrap(), topic, records).ok());

  LibrdkafkaClientFactory factory;
  const Properties properties = {{"bootstrap.servers", broker->bootstrap()}};
  // "latest": every assignment starts at the end, so only a completed seek
  // to 0 delivers records, and the first one must be offset 0.
  const GroupMemberOptions member_options = {
      .group = "member-seek-after-rebalance",
      .topics = {topic},
      .start = {.kind = StartPosition::Kind::kLatest}};
  const KafkaGroupMember::Options options = {.session_timeout = absl::Seconds(6)};

  SeekOnAssignListener listener;
  auto member =
      KafkaGroupMember::Join(properties, "", member_options, options, &listener, factory);
  ASSERT_TRUE(member.ok()) << member.status();
  listener.SetMember(member->get());
  EXPECT_EQ(listener.WaitSettled(0, absl::Seconds(30)), std::set<TopicPartition>{});

  // Each join and leave of a second member revokes everything and assigns
  // anew (eager), while librdkafka still stops the old fetchers.
  for (int round = 0; round < 4; ++round) {
    IdleListener idle;
    int before = listener.assignments();
    {
      auto other =
          KafkaGroupMember::Join(properties, "", member_options, options, &idle, factory);
      ASSERT_TRUE(other.ok()) << other.status();
      EXPECT_EQ(listener.WaitSettled(before, absl::Seconds(20)),
                std::set<TopicPartition>{})
          << "round " << round << " after a member joined";
      before = listener.assignments();
    }  // the second member leaves
    EXPECT_EQ(listener.WaitSettled(before, absl::Seconds(20)), std::set<TopicPartition>{})
        << "round " << round << " after the member left";
    for (const auto& [tp, offset] : listener.first_offsets()) {
      EXPECT_EQ(offset, 0) << tp.topic << "/" << tp.partition << " round " << round;
    }
  }
  // Problems the member reported and retried (seen: a seek that timed out
  // while a fresh broker still loaded its coordinator); the outcome above is
  // what counts.
  for (const std::string& error : listener.errors()) {
    std::cerr << "[ reported ] " << error << "\n";
  }
}

}  // namespace
}  // namespace ferry::backend::kafka
