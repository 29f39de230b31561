#include "mirror/partition_copier.h"

#include <gtest/gtest.h>

namespace ferry::mirror {
namespace {

const absl::Status kTimeout = absl::UnavailableError("timed out");

TEST(PartitionCopier, CommitsOnlyBelowTheFirstRecordNotAcknowledged) {
  PartitionCopier copier(10);
  for (int64_t offset : {10, 11, 13}) EXPECT_TRUE(copier.Accept(offset));  // 12 compacted
  EXPECT_EQ(copier.commit_offset(), 10);
  copier.Acked(11);
  EXPECT_EQ(copier.commit_offset(), 10);
  copier.Acked(10);
  EXPECT_EQ(copier.commit_offset(), 13);
  copier.Acked(13);
  EXPECT_EQ(copier.commit_offset(), 14);
  EXPECT_EQ(copier.in_flight(), 0);
  EXPECT_EQ(copier.copied(), 3);
}

TEST(PartitionCopier, SkippedRecordsAreCommittedOnceTheRecordsBeforeThemAre) {
  PartitionCopier copier(0);
  EXPECT_TRUE(copier.Accept(0));
  EXPECT_TRUE(copier.Skip(1));
  EXPECT_FALSE(copier.Skip(1)) << "before the position";
  EXPECT_EQ(copier.commit_offset(), 0);
  copier.Acked(0);
  EXPECT_EQ(copier.commit_offset(), 2);
  EXPECT_TRUE(copier.Skip(2));
  EXPECT_EQ(copier.commit_offset(), 3);
  EXPECT_EQ(copier.in_flight(), 0);
  EXPECT_EQ(copier.copied(), 1);
}

TEST(PartitionCopier, ARewindSkipsAgainAndCountsNoSkipAsDuplicate) {
  PartitionCopier copier(0);
  ASSERT_TRUE(copier.Accept(0));
  ASSERT_TRUE(copier.Skip(1));
  ASSERT_TRUE(copier.Accept(2));
  copier.Failed(0, kTimeout, true);
  copier.Failed(2, kTimeout, true);
  EXPECT_EQ(copier.TakeRewind(), 0);
  EXPECT_EQ(copier.duplicates(), 0);
  copier.SeekDone(0);
  EXPECT_TRUE(copier.Accept(0));
  EXPECT_TRUE(copier.Skip(1));
}

TEST(PartitionCopier, RecordsBeforeThePositionAreNotSentAgain) {
  PartitionCopier copier(5);
  EXPECT_FALSE(copier.Accept(4));
  EXPECT_TRUE(copier.Accept(5));
  EXPECT_FALSE(copier.Accept(5));
}

// Given records 0..3 in flight, when 1 fails and 2 was acknowledged anyway
// (1 was possibly persisted), then nothing is accepted until every record
// resolved, the partition rewinds to 1 once, and 2 counts as a duplicate
// when it is acknowledged again.
TEST(PartitionCopier, AFailureRewindsToTheFirstFailedRecordOnceAllResolved) {
  PartitionCopier copier(0);
  for (int64_t offset = 0; offset < 4; ++offset) ASSERT_TRUE(copier.Accept(offset));
  copier.Acked(0);
  copier.Failed(1, kTimeout, true);
  EXPECT_TRUE(copier.rewinding());
  EXPECT_FALSE(copier.Accept(4));
  copier.Acked(2);
  EXPECT_EQ(copier.TakeRewind(), std::nullopt) << "3 is still in flight";
  copier.Failed(3, kTimeout, true);
  EXPECT_EQ(copier.commit_offset(), 1);
  EXPECT_EQ(copier.TakeRewind(), 1);
  EXPECT_EQ(copier.TakeRewind(), std::nullopt) << "once";
  EXPECT_FALSE(copier.Accept(1)) << "until the seek is done";
  copier.SeekDone(1);
  EXPECT_FALSE(copier.rewinding());
  for (int64_t offset = 1; offset < 4; ++offset) ASSERT_TRUE(copier.Accept(offset));
  for (int64_t offset = 1; offset < 4; ++offset) copier.Acked(offset);
  EXPECT_EQ(copier.commit_offset(), 4);
  EXPECT_EQ(copier.duplicates(), 1);  // 2, acknowledged before the rewind
  EXPECT_EQ(copier.copied(), 5);      // 0, 2, then 1, 2, 3
}

TEST(PartitionCopier, ASeekToAnotherOffsetDoesNotEndTheRewind) {
  PartitionCopier copier(0);
  ASSERT_TRUE(copier.Accept(0));
  copier.Failed(0, kTimeout, true);
  ASSERT_EQ(copier.TakeRewind(), 0);
  copier.SeekDone(7);
  EXPECT_TRUE(copier.rewinding());
  copier.SeekDone(0);
  EXPECT_FALSE(copier.rewinding());
}

TEST(PartitionCopier, ARecordTheTargetRefusesStopsThePartitionThere) {
  PartitionCopier copier(0);
  ASSERT_TRUE(copier.Accept(0));
  ASSERT_TRUE(copier.Accept(1));
  copier.Acked(0);
  copier.Failed(1, absl::InvalidArgumentError("record too large"), false);
  EXPECT_EQ(copier.stopped().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(copier.TakeRewind(), std::nullopt);
  EXPECT_FALSE(copier.Accept(2));
  EXPECT_EQ(copier.commit_offset(), 1);
}

}  // namespace
}  // namespace ferry::mirror
