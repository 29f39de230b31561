// MirrorJob against fake clusters whose publishes complete inline (on the
// calling thread, inside the job's own calls): the job must not hold its lock
// across them, and commits, rewinds and flow control follow the target's
// answers.
#include "mirror/mirror_job.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "backend/fake_cluster.h"

namespace ferry::mirror {
namespace {

using backend::ConsumedRecord;
using backend::FakeCluster;
using backend::FakeGroupMember;
using backend::TopicPartition;

constexpr absl::Duration kWait = absl::Seconds(10);

std::vector<ConsumedRecord> Records(int32_t partition, int64_t from, int64_t to) {
  std::vector<ConsumedRecord> records;
  for (int64_t offset = from; offset < to; ++offset) {
    records.push_back(
        backend::Owned({.topic = "orders",
                        .partition = partition,
                        .offset = offset,
                        .key = "k",
                        .value = std::to_string(offset),
                        .headers = {{"ferry.id", "id" + std::to_string(offset)}},
                        .timestamp_ms = 1000 + offset}));
  }
  return records;
}

// A target that never answers: records stay in flight.
class SilentTarget final : public FakeCluster {
 public:
  SilentTarget() : FakeCluster("new") {}
  void Publish(backend::Record, backend::PublishCallback) override {}
};

class MirrorJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_.AddTopic("orders", 2);
    target_.AddTopic("orders", 2);
  }

  std::unique_ptr<MirrorJob> Start(int64_t max_in_flight = 20000,
                                   std::string skip_origin = "") {
    auto job = MirrorJob::Start({.name = "move",
                                 .source = "old",
                                 .target = "new",
                                 .topics = {"orders"},
                                 .skip_origin = std::move(skip_origin)},
                                &source_, &target_,
                                {.node_id = "n1",
                                 .tick = absl::Milliseconds(5),
                                 .commit_interval = absl::ZeroDuration(),
                                 .max_in_flight = max_in_flight},
                                &metrics_);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *std::move(job) : nullptr;
  }

  FakeGroupMember& Member() { return *source_.members(MirrorGroup("move")).back(); }

  // Waits until the member committed `offset` for partition `partition`.
  bool WaitForCommit(int32_t partition, int64_t offset) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      for (const auto& commit : Member().commits()) {
        auto it = commit.find({"orders", partition});
        if (it != commit.end() && it->second == offset) return true;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    return false;
  }

  FakeCluster source_{"old"};
  FakeCluster target_{"new"};
  metrics::Registry metrics_;
};

TEST_F(MirrorJobTest, CopiesPartitionForPartitionWithOriginAndCommitsAfterTheTarget) {
  auto job = Start();
  ASSERT_NE(job, nullptr);
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 0},
                   {.partition = {"orders", 1}, .next_offset = 5}});
  Member().Deliver(Records(1, 5, 8));
  Member().Deliver(Records(0, 0, 2));
  ASSERT_TRUE(WaitForCommit(1, 8));
  ASSERT_TRUE(WaitForCommit(0, 2));

  std::vector<backend::Record> copied = target_.published();
  ASSERT_EQ(copied.size(), 5u);
  EXPECT_EQ(copied[0].partition, 1);
  EXPECT_EQ(copied[0].value, "5");
  EXPECT_EQ(copied[0].timestamp_ms, 1005);
  ASSERT_EQ(copied[0].headers.size(), 2u);
  EXPECT_EQ(copied[0].headers[0].key, "ferry.id");
  EXPECT_EQ(copied[0].headers[0].value, "id5");
  EXPECT_EQ(copied[0].headers[1].key, "ferry.origin");
  EXPECT_EQ(copied[0].headers[1].value, "old/orders/1/5");
  EXPECT_EQ(copied[3].partition, 0);
}

// A reverse mirror (skip_origin = its target) copies the source's own records
// and those copied from elsewhere, never the target's records copied here,
// and commits past them.
TEST_F(MirrorJobTest, RecordsOfTheSkippedOriginAreNotCopiedButCommitted) {
  auto job = Start(20000, "new");
  ASSERT_NE(job, nullptr);
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 0}});
  std::vector<ConsumedRecord> records = Records(0, 0, 4);
  records[1].headers.push_back({"ferry.origin", "new/orders/0/7"});
  records[2].headers.push_back({"ferry.origin", "third/orders/0/9"});
  records[3].headers.push_back({"ferry.origin", "new/orders/0/8"});
  Member().Deliver(records);
  ASSERT_TRUE(WaitForCommit(0, 4));
  std::vector<backend::Record> copied = target_.published();
  ASSERT_EQ(copied.size(), 2u);
  EXPECT_EQ(copied[0].value, "0");
  EXPECT_EQ(copied[1].value, "2");
  EXPECT_EQ(copied[1].headers.back().value, "old/orders/0/2");
}

// Given a target that fails every record, when records arrive, then nothing
// is committed past them, the partition seeks back to the first failed
// record, and once the target recovers the records copied after the seek
// are committed.
TEST_F(MirrorJobTest, FailedRecordsAreCopiedAgainFromTheFirstFailure) {
  auto job = Start();
  ASSERT_NE(job, nullptr);
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 10}});
  target_.SetPublishStatus(absl::UnavailableError("target down"));
  Member().Deliver(Records(0, 10, 13));
  std::vector<std::pair<TopicPartition, int64_t>> seeks;
  const absl::Time deadline = absl::Now() + kWait;
  while (seeks.empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
    seeks = Member().CompleteSeeks();
  }
  ASSERT_EQ(seeks.size(), 1u);
  EXPECT_EQ(seeks[0].second, 10);
  target_.SetPublishStatus(absl::OkStatus());
  Member().Deliver(Records(0, 10, 13));
  ASSERT_TRUE(WaitForCommit(0, 13));
  for (const auto& commit : Member().commits()) {
    EXPECT_LE(commit.at({"orders", 0}), 13);
  }
}

// Records fetched beyond the in-flight bound pause the partition's fetching.
TEST_F(MirrorJobTest, TooManyRecordsInFlightPauseFetching) {
  SilentTarget silent;
  silent.AddTopic("orders", 2);
  auto job = MirrorJob::Start(
      {.name = "move", .source = "old", .target = "new", .topics = {"orders"}}, &source_,
      &silent,
      {.tick = absl::Milliseconds(5),
       .max_in_flight = 4,
       .revoke_wait = absl::ZeroDuration()},
      &metrics_);
  ASSERT_TRUE(job.ok()) << job.status();
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 0}});
  Member().Deliver(Records(0, 0, 4));
  const absl::Time deadline = absl::Now() + kWait;
  while (Member().paused().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_THAT(Member().paused(), ::testing::ElementsAre(TopicPartition{"orders", 0}));
}

// Records of `value_size` bytes (plus a 1-byte key and a ferry.id header).
std::vector<ConsumedRecord> SizedRecords(int32_t partition, int64_t from, int64_t to,
                                         size_t value_size) {
  std::vector<ConsumedRecord> records = Records(partition, from, to);
  const std::string value(value_size, 'v');
  for (ConsumedRecord& record : records) {
    record.value = value;  // a view: copied into the record's own bytes next
    record.OwnBytes();
  }
  return records;
}

// A target that answers only when the test says so.
class HeldTarget final : public FakeCluster {
 public:
  HeldTarget() : FakeCluster("new") { AddTopic("orders", 2); }
  void Publish(backend::Record, backend::PublishCallback done) override {
    absl::MutexLock lock(&mu_);
    held_.push_back(std::move(done));
  }
  // Answers every held record OK, on the calling thread.
  void AnswerAll() {
    std::vector<backend::PublishCallback> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (backend::PublishCallback& done : held) done({.status = absl::OkStatus()});
  }

 private:
  absl::Mutex mu_;
  std::vector<backend::PublishCallback> held_ ABSL_GUARDED_BY(mu_);
};

// Waits until the member's paused partitions are `expected`.
bool WaitForPaused(FakeGroupMember& member, const std::set<TopicPartition>& expected) {
  const absl::Time deadline = absl::Now() + kWait;
  while (member.paused() != expected && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  return member.paused() == expected;
}

// Given a byte budget of 1000, when one partition has 10 unanswered records
// of about 110 bytes, then every partition of the job pauses (the budget is
// the job's), and once the target answered they all resume.
TEST_F(MirrorJobTest, TheByteBudgetPausesEveryPartitionUntilTheTargetAnswers) {
  HeldTarget held;
  auto job = MirrorJob::Start(
      {.name = "move", .source = "old", .target = "new", .topics = {"orders"}}, &source_,
      &held,
      {.tick = absl::Seconds(60),  // only the budget itself may wake the ticker
       .max_in_flight_bytes = 1000,
       .revoke_wait = absl::ZeroDuration()},
      &metrics_);
  ASSERT_TRUE(job.ok()) << job.status();
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 0},
                   {.partition = {"orders", 1}, .next_offset = 0}});
  Member().Deliver(SizedRecords(0, 0, 5, 100));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(Member().paused().empty()) << "550 bytes are below the budget";
  Member().Deliver(SizedRecords(0, 5, 10, 100));
  EXPECT_TRUE(WaitForPaused(Member(), {{"orders", 0}, {"orders", 1}}));
  held.AnswerAll();
  EXPECT_TRUE(WaitForPaused(Member(), {}));
}

// A target that answers inline (inside the job's publish call) frees each
// record's bytes at once: ten times the budget passes without a pause.
TEST_F(MirrorJobTest, RecordsAnsweredInlineNeverFillTheByteBudget) {
  auto job = MirrorJob::Start(
      {.name = "move", .source = "old", .target = "new", .topics = {"orders"}}, &source_,
      &target_,
      {.tick = absl::Milliseconds(5),
       .commit_interval = absl::ZeroDuration(),
       .max_in_flight_bytes = 1000},
      &metrics_);
  ASSERT_TRUE(job.ok()) << job.status();
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 0}});
  Member().Deliver(SizedRecords(0, 0, 100, 100));
  ASSERT_TRUE(WaitForCommit(0, 100));
  absl::SleepFor(absl::Milliseconds(20));  // a few ticks
  EXPECT_TRUE(Member().paused().empty());
  EXPECT_EQ(target_.published().size(), 100u);
}

// The source consumer's prefetch comes out of the same budget: half of it
// shared by the job's partitions, within 256 KiB..8 MiB per partition.
TEST_F(MirrorJobTest, TheSourcePrefetchIsHalfTheByteBudgetSharedByPartitions) {
  for (const auto& [budget, prefetch] : std::vector<std::pair<int64_t, int64_t>>{
           {8 << 20, 2 << 20}, {1000, 256 << 10}, {int64_t{1} << 30, 8 << 20}}) {
    auto job = MirrorJob::Start(
        {.name = "move", .source = "old", .target = "new", .topics = {"orders"}},
        &source_, &target_, {.max_in_flight_bytes = budget}, &metrics_);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(Member().options().max_prefetch_bytes, prefetch) << "budget " << budget;
  }
}

TEST_F(MirrorJobTest, ATargetWithFewerPartitionsIsRefused) {
  FakeCluster small("new");
  small.AddTopic("orders", 1);
  auto job = MirrorJob::Start(
      {.name = "move", .source = "old", .target = "new", .topics = {"orders"}}, &source_,
      &small, {}, &metrics_);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(job.status().message(), ::testing::HasSubstr("1 partitions on target new"));
}

TEST_F(MirrorJobTest, AMissingTargetTopicIsCreatedWithTheSourcesPartitions) {
  FakeCluster empty("new");
  auto job = MirrorJob::Start(
      {.name = "move", .source = "old", .target = "new", .topics = {"orders"}}, &source_,
      &empty, {}, &metrics_);
  ASSERT_TRUE(job.ok()) << job.status();
  auto info = empty.DescribeTopic("orders");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->partitions.size(), 2u);
}

// The runner's thread stops a job; before, a member hanging while leaving
// held it for good (no other job started or stopped, nor did shutdown go
// on). Released later, the member revokes through a cut listener: nothing
// is committed for it and, under ASan, nothing uses the destroyed job.
TEST_F(MirrorJobTest, AJobWhoseMemberHangsLeavingStopsAfterTheLeaveTimeout) {
  auto job = MirrorJob::Start(
      {.name = "move", .source = "old", .target = "new", .topics = {"orders"}}, &source_,
      &target_, {.node_id = "n1", .leave_timeout = absl::Milliseconds(200)}, &metrics_);
  ASSERT_TRUE(job.ok()) << job.status();
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 0}});
  {
    backend::LeaveHold hold(source_, absl::Seconds(8));
    const absl::Time start = absl::Now();
    job->reset();
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  }
  ASSERT_EQ(source_.leave_commits(MirrorGroup("move")).size(), 1u);
  EXPECT_TRUE(source_.leave_commits(MirrorGroup("move"))[0].empty());
}

// Before, a stopping job's revoke waited revoke_wait (10 s) for records the
// target never answered while the leave gave up after leave_timeout: the
// stop took the larger of the two, and reported an abandonment that was
// none. Now the revoke waits half of the leave's time and the member
// commits and leaves within it.
TEST_F(MirrorJobTest, AStoppingJobsRevokeWaitsWithinTheLeaveTimeout) {
  SilentTarget silent;
  silent.AddTopic("orders", 2);
  auto job = MirrorJob::Start(
      {.name = "move", .source = "old", .target = "new", .topics = {"orders"}}, &source_,
      &silent, {.node_id = "n1", .leave_timeout = absl::Seconds(1)}, &metrics_);
  ASSERT_TRUE(job.ok()) << job.status();
  Member().Assign({{.partition = {"orders", 0}, .next_offset = 0}});
  Member().Deliver(Records(0, 0, 4));
  const absl::Time start = absl::Now();
  job->reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  ASSERT_EQ(source_.leave_commits(MirrorGroup("move")).size(), 1u);
  EXPECT_THAT(source_.leave_commits(MirrorGroup("move"))[0],
              ::testing::ElementsAre(::testing::Pair(TopicPartition{"orders", 0}, 0)));
}

}  // namespace
}  // namespace ferry::mirror
