// Rollback's offset translation target -> source against known mappings:
// duplicates from a mirror rewind, gaps on either cluster (compaction,
// transaction markers), records written to the target directly.
#include "mirror/source_position.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace ferry::mirror {
namespace {

const backend::TopicPartition kP{"orders", 1};

struct TargetRecord {
  int64_t offset;
  std::optional<std::string> origin;  // the ferry.origin header, if any
};

// Target partition orders/1, copied from cluster "a":
//   target offset   0  1  -  3  4  5  6  7  8
//   source offset   0  1     4  .  5  4  5  6
// offset 2 compacted away on the target; source offsets 2 and 3 are no
// records (a transaction's data aborted and its marker); offset 4 written to
// the target directly; 6 and 7 copied again after a mirror rewind.
const std::vector<TargetRecord> kTarget = {
    {0, "a/orders/1/0"}, {1, "a/orders/1/1"}, {3, "a/orders/1/4"}, {4, std::nullopt},
    {5, "a/orders/1/5"}, {6, "a/orders/1/4"}, {7, "a/orders/1/5"}, {8, "a/orders/1/6"},
};

// Feeds the records from `from` as the scan would, stopping when the sink
// says so.
SourcePosition ReadUpTo(int64_t target_committed,
                        const std::vector<TargetRecord>& records = kTarget,
                        int64_t from = 0,
                        std::optional<int64_t> read_before = std::nullopt) {
  SourcePosition position("a", kP, target_committed, read_before);
  if (target_committed <= from) position.NothingBefore();
  for (const TargetRecord& r : records) {
    if (position.complete()) break;
    if (r.offset < from) continue;
    backend::ConsumedRecord record{
        .topic = kP.topic, .partition = kP.partition, .offset = r.offset};
    if (r.origin) record.headers.push_back({"ferry.origin", *r.origin});
    if (position.Add(record)) break;
  }
  return position;
}

TEST(SourcePosition, ResumesPastTheLastSourceRecordTheGroupRead) {
  EXPECT_EQ(ReadUpTo(1).ResumeOnSource(-1), 1);
  EXPECT_EQ(ReadUpTo(2).ResumeOnSource(-1), 2);
  EXPECT_EQ(ReadUpTo(4).ResumeOnSource(-1), 5) << "source gap 2..3 skipped";
  EXPECT_EQ(ReadUpTo(9).ResumeOnSource(-1), 7) << "at the target's end";
}

TEST(SourcePosition, AcrossATargetGapWaitsForTheNextRecord) {
  SourcePosition position = ReadUpTo(3);
  EXPECT_TRUE(position.complete()) << "record 3 shows nothing lies between";
  EXPECT_EQ(position.ResumeOnSource(-1), 2);
}

TEST(SourcePosition, RecordsWrittenToTheTargetDirectlyAreNotTheSources) {
  EXPECT_EQ(ReadUpTo(5).ResumeOnSource(-1), 5);
}

TEST(SourcePosition, DuplicatesOfARewindDoNotMoveTheGroupBack) {
  EXPECT_EQ(ReadUpTo(7).ResumeOnSource(-1), 6) << "read 5 before its duplicate of 4";
  EXPECT_EQ(ReadUpTo(8).ResumeOnSource(-1), 6);
}

TEST(SourcePosition, NeverBeforeWhatTheGroupAcknowledgedOnTheSource) {
  EXPECT_EQ(ReadUpTo(2).ResumeOnSource(4), 4);
  SourcePosition nothing_read = ReadUpTo(0);
  EXPECT_TRUE(nothing_read.complete());
  EXPECT_EQ(nothing_read.last_source_read(), std::nullopt);
  EXPECT_EQ(nothing_read.ResumeOnSource(3), 3);
  EXPECT_EQ(nothing_read.ResumeOnSource(-1), -1) << "committed nowhere: its start";
}

TEST(SourcePosition, CopiesOfOtherPartitionsOrClustersAreSkipped) {
  EXPECT_EQ(ReadUpTo(3, {{0, "a/orders/2/7"}, {1, "b/orders/1/8"}, {2, "a/orders/1/3"}})
                .ResumeOnSource(-1),
            4);
  EXPECT_EQ(ReadUpTo(2, {{0, "a/orders/2/7"}, {1, "b/orders/1/8"}, {2, "a/orders/1/3"}})
                .last_source_read(),
            std::nullopt);
}

TEST(SourcePosition, IncompleteUntilTheRecordBeforeTheCommitArrives) {
  SourcePosition position = ReadUpTo(9, {{0, "a/orders/1/0"}, {1, "a/orders/1/1"}});
  EXPECT_FALSE(position.complete()) << "records 2..8 not read yet: no answer";
}

TEST(PlanReturnScan, WithoutHintsReadsTheTargetFromItsStart) {
  ReturnScanStart start = PlanReturnScan(std::nullopt, 8, 4, std::nullopt);
  EXPECT_EQ(start.target, 0);
  EXPECT_EQ(start.read_before, std::nullopt);
  EXPECT_EQ(start.source, 4) << "the source from the group's commit";
  EXPECT_EQ(PlanReturnScan(std::nullopt, 8, -1, std::nullopt).source, 0);
}

TEST(PlanReturnScan, ReadsTheTargetFromTheCutover) {
  EXPECT_EQ(PlanReturnScan(3, 8, 4, std::nullopt).target, 3);
}

// kTarget's group committed source offset 4 on a and moved to b at target
// offset 3 (the first copy of 4): reading from there, or from any cutover
// below it, answers what reading from the start answers.
TEST(PlanReturnScan, FromTheCutoverTheAnswerIsTheWholeReadsAnswer) {
  for (int64_t committed = 4; committed <= 9; ++committed) {
    const int64_t whole = ReadUpTo(committed).ResumeOnSource(4);
    for (int64_t cutover : {0, 1, 3}) {
      const ReturnScanStart start = PlanReturnScan(cutover, committed, 4, std::nullopt);
      SourcePosition from_cutover = ReadUpTo(committed, kTarget, start.target);
      ASSERT_TRUE(from_cutover.complete());
      EXPECT_EQ(from_cutover.ResumeOnSource(4), whole)
          << "committed " << committed << ", cutover " << cutover;
    }
  }
  SourcePosition rewound = ReadUpTo(2, kTarget, 3);
  EXPECT_TRUE(rewound.complete()) << "rewound on b below the cutover";
  EXPECT_EQ(rewound.ResumeOnSource(4), 4);
}

TEST(PlanReturnScan, ContinuesAnEarlierPassFromWhereItStopped) {
  const SourcePosition first = ReadUpTo(5, kTarget, 3);
  const EarlierPass earlier{.target_committed = 5,
                            .source_committed = 4,
                            .last_source_read = first.last_source_read(),
                            .first_unread = 6};
  const ReturnScanStart start = PlanReturnScan(3, 8, 4, earlier);
  EXPECT_EQ(start.target, 5);
  EXPECT_EQ(start.read_before, first.last_source_read());
  EXPECT_EQ(start.source, 6);
  EXPECT_EQ(ReadUpTo(8, kTarget, start.target, start.read_before).ResumeOnSource(4),
            ReadUpTo(8).ResumeOnSource(4));
  EXPECT_EQ(PlanReturnScan(3, 5, 4, earlier).target, 5) << "nothing read since";
}

TEST(PlanReturnScan, DropsAnEarlierPassTheGroupMovedBackFrom) {
  const EarlierPass earlier{
      .target_committed = 6, .source_committed = 4, .last_source_read = 5};
  const ReturnScanStart rewound = PlanReturnScan(3, 5, 4, earlier);
  EXPECT_EQ(rewound.target, 3);
  EXPECT_EQ(rewound.read_before, std::nullopt);
  EXPECT_EQ(PlanReturnScan(3, 8, 2, earlier).target, 3) << "its source commit moved";
  EXPECT_EQ(PlanReturnScan(7, 8, 4, earlier).target, 7) << "made before the cutover";
}

// Rolling back after writes moved. Source a/orders/1, target b:
//   target offset   0  1  2  3  4  5
//   copied from a   0  1  2  .  .  .     (3..5 written to b directly)
//   source offset   0  1  2  3   4   5   6   7
//   copied from b   .  .  .  3   4   .   5   4     (5: written to a by a
//                                                   producer outside Ferry;
//                                                   7: a reverse rewind's
//                                                   duplicate)
const std::vector<TargetRecord> kBackOnTarget = {
    {0, "a/orders/1/0"}, {1, "a/orders/1/1"}, {2, "a/orders/1/2"},
    {3, std::nullopt},   {4, std::nullopt},   {5, std::nullopt},
};
const std::vector<TargetRecord> kBackOnSource = {
    {0, std::nullopt},   {1, std::nullopt}, {2, std::nullopt},   {3, "b/orders/1/3"},
    {4, "b/orders/1/4"}, {5, std::nullopt}, {6, "b/orders/1/5"}, {7, "b/orders/1/4"},
};

// The first unread source record of a group at `target_committed` on b that
// had committed `source_committed` on a before it moved.
std::optional<int64_t> FirstUnread(int64_t target_committed, int64_t source_committed,
                                   std::vector<TargetRecord> source = kBackOnSource) {
  const std::optional<int64_t> read =
      ReadUpTo(target_committed, kBackOnTarget).last_source_read();
  const int64_t end = source.empty() ? 0 : source.back().offset + 1;
  FirstUnreadOnSource first("b", kP, source_committed, read, target_committed, end);
  for (const TargetRecord& r : source) {
    backend::ConsumedRecord record{
        .topic = kP.topic, .partition = kP.partition, .offset = r.offset};
    if (r.origin) record.headers.push_back({"ferry.origin", *r.origin});
    if (first.Add(record)) break;
  }
  if (!first.complete()) return std::nullopt;
  return first.resume();
}

TEST(FirstUnreadOnSource, IsTheSourcesOwnRecordTheGroupHadNotReachedOnTheTarget) {
  EXPECT_EQ(FirstUnread(2, 0), 2);
  EXPECT_EQ(FirstUnread(0, 1), 1) << "read nothing on the target";
}

TEST(FirstUnreadOnSource, IsTheCopyOfTheFirstTargetRecordTheGroupHadNotRead) {
  EXPECT_EQ(FirstUnread(3, 0), 3);
  EXPECT_EQ(FirstUnread(4, 2), 4);
}

TEST(FirstUnreadOnSource, AnOwnRecordNeverCopiedToTheTargetIsUnread) {
  EXPECT_EQ(FirstUnread(5, 0), 5) << "the producer outside Ferry's record";
  EXPECT_EQ(FirstUnread(6, 0), 5);
}

TEST(FirstUnreadOnSource, AGroupThatReadEverythingResumesAtTheSourcesEnd) {
  std::vector<TargetRecord> without_outside_write = kBackOnSource;
  without_outside_write.erase(without_outside_write.begin() + 5);
  EXPECT_EQ(FirstUnread(6, 0, without_outside_write), 8);
  EXPECT_EQ(FirstUnread(6, 0, {}), 0) << "an empty source";
}

TEST(FirstUnreadOnSource, ContinuedFromAnEarlierPassAnswersTheSame) {
  // Before the hold the group was at target offset 3; it read on to 6.
  const int64_t earlier = *FirstUnread(3, 0);
  const ReturnScanStart start = PlanReturnScan(
      std::nullopt, 6, 0,
      EarlierPass{.target_committed = 3,
                  .source_committed = 0,
                  .last_source_read = ReadUpTo(3, kBackOnTarget).last_source_read(),
                  .first_unread = earlier});
  EXPECT_EQ(start.source, 3);
  std::vector<TargetRecord> after(kBackOnSource.begin() + start.source,
                                  kBackOnSource.end());
  EXPECT_EQ(FirstUnread(6, start.source, after), FirstUnread(6, 0));
}

TEST(FirstUnreadOnSource, IsIncompleteUntilTheRecordsAreRead) {
  FirstUnreadOnSource first("b", kP, 0, 2, 6, 8);
  backend::ConsumedRecord record{
      .topic = kP.topic, .partition = kP.partition, .offset = 0};
  EXPECT_FALSE(first.Add(record));
  EXPECT_FALSE(first.complete());
}

}  // namespace
}  // namespace ferry::mirror
