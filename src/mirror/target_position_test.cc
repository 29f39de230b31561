// The consumer stage's offset translation source -> target against known
// mappings: a search continued from an earlier one for the same group gives
// the answer a search from the start gives, across gaps, records written to
// the target directly, a mirror rewind's duplicates and a group that moved
// back.
#include "mirror/target_position.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace ferry::mirror {
namespace {

const backend::TopicPartition kP{"orders", 1};

struct TargetRecord {
  int64_t offset;
  std::optional<std::string> origin;  // the ferry.origin header, if any
};

// Target partition orders/1, copied from cluster "a":
//   target offset   0  1  -  3  4  5  6  7  8  9  -  11
//   source offset   0  1     4  .  5  4  5  6  b     9
// target offset 2 compacted away and 10 a transaction marker; source offsets
// 2, 3, 7 and 8 are no records (markers, aborted data); 4 was written to the
// target directly, 9 copied from another cluster; 6 and 7 are copied again
// after a mirror rewind.
const std::vector<TargetRecord> kTarget = {
    {0, "a/orders/1/0"}, {1, "a/orders/1/1"},  {3, "a/orders/1/4"}, {4, std::nullopt},
    {5, "a/orders/1/5"}, {6, "a/orders/1/4"},  {7, "a/orders/1/5"}, {8, "a/orders/1/6"},
    {9, "b/orders/1/3"}, {11, "a/orders/1/9"},
};

struct Search {
  std::optional<int64_t> found;
  int64_t searched_to = 0;
  int records_read = 0;
};

// Feeds the first `available` records from `from` as the scan would,
// stopping when the sink says so.
Search Find(int64_t group_offset, int64_t from, size_t available = kTarget.size()) {
  FirstCopyAtOrAfter sink("a", kP, group_offset, from);
  Search search;
  for (size_t i = 0; i < available; ++i) {
    if (kTarget[i].offset < from) continue;
    backend::ConsumedRecord record{
        .topic = kP.topic, .partition = kP.partition, .offset = kTarget[i].offset};
    if (kTarget[i].origin) record.headers.push_back({"ferry.origin", *kTarget[i].origin});
    ++search.records_read;
    if (sink.Add(record)) break;
  }
  search.found = sink.found();
  search.searched_to = sink.searched_to();
  return search;
}

TEST(FirstCopyAtOrAfter, FindsTheFirstCopyAtOrAfterTheGroupOffset) {
  EXPECT_EQ(Find(0, 0).found, 0);
  EXPECT_EQ(Find(2, 0).found, 3) << "source gap 2..3: the copy of 4";
  EXPECT_EQ(Find(5, 0).found, 5) << "the direct record 4 is skipped";
  EXPECT_EQ(Find(6, 0).found, 8) << "the rewind's duplicates of 4 and 5 are skipped";
  EXPECT_EQ(Find(7, 0).found, 11) << "another cluster's copy and a marker skipped";
  const Search unmirrored = Find(10, 0);
  EXPECT_EQ(unmirrored.found, std::nullopt);
  EXPECT_EQ(unmirrored.searched_to, 12) << "read to the end without an answer";
}

// Every earlier search (for group offset g1, on the partition as it was
// when only `available` records were there) continued for every g2 equals
// the search for g2 from the start.
TEST(ForwardScanFrom, ContinuingAnEarlierSearchGivesTheAnswerFromTheStart) {
  for (size_t available = 0; available <= kTarget.size(); ++available) {
    for (int64_t g1 = -1; g1 <= 11; ++g1) {
      const Search earlier = g1 < 0 ? Search{} : Find(g1, 0, available);
      for (int64_t g2 = 0; g2 <= 11; ++g2) {
        const int64_t from = ForwardScanFrom(g1, earlier.searched_to, g2);
        EXPECT_EQ(Find(g2, from).found, Find(g2, 0).found)
            << "earlier g=" << g1 << " on " << available << " records, now g=" << g2;
      }
    }
  }
}

TEST(ForwardScanFrom, ReadsOnlyWhatFollowsTheEarlierAnswer) {
  const Search earlier = Find(6, 0);  // the group's offset before the pause
  ASSERT_EQ(earlier.found, 8);
  const Search now = Find(7, ForwardScanFrom(6, earlier.searched_to, 7));
  EXPECT_EQ(now.found, 11);
  EXPECT_EQ(now.records_read, 3) << "8, 9 and 11, not the 10 records from the start";

  // A group at the source's end, before the mirror copied it: the earlier
  // search read all there was (target offsets 0..8), the next reads on.
  const Search at_the_end = Find(10, 0, 8);
  EXPECT_EQ(at_the_end.found, std::nullopt);
  EXPECT_EQ(at_the_end.searched_to, 9);
  const Search on = Find(10, ForwardScanFrom(10, at_the_end.searched_to, 10));
  EXPECT_EQ(on.found, std::nullopt);
  EXPECT_EQ(on.records_read, 2) << "9 and 11";
}

TEST(ForwardScanFrom, AGroupThatMovedBackIsSearchedFromTheStart) {
  const Search earlier = Find(7, 0);
  EXPECT_EQ(ForwardScanFrom(7, earlier.searched_to, 2), 0);
  EXPECT_EQ(ForwardScanFrom(-1, 0, 2), 0) << "no earlier search";
}

}  // namespace
}  // namespace ferry::mirror
