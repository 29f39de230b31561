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

// Feeds the records as the scan would, stopping when the sink says so.
SourcePosition ReadUpTo(int64_t target_committed,
                        const std::vector<TargetRecord>& records = kTarget) {
  SourcePosition position("a", kP, target_committed);
  for (const TargetRecord& r : records) {
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

}  // namespace
}  // namespace ferry::mirror
