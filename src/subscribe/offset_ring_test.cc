#include "subscribe/offset_ring.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::subscribe {
namespace {

std::vector<int64_t> Offsets(const OffsetRing<std::string>& ring) {
  std::vector<int64_t> offsets;
  ring.ForEach([&](int64_t offset, const std::string&) { offsets.push_back(offset); });
  return offsets;
}

TEST(OffsetRing, FindsDenseAndGappedOffsets) {
  OffsetRing<std::string> ring;
  ring.Append(10, "a");
  ring.Append(11, "b");
  ring.Append(15, "c");  // a gap: 12-14 never appended
  ring.Append(16, "d");
  ASSERT_NE(ring.Find(11), nullptr);
  EXPECT_EQ(*ring.Find(11), "b");
  EXPECT_EQ(*ring.Find(15), "c");
  EXPECT_EQ(*ring.Find(16), "d");
  EXPECT_EQ(ring.Find(9), nullptr);
  EXPECT_EQ(ring.Find(13), nullptr);
  EXPECT_EQ(ring.Find(17), nullptr);
  EXPECT_EQ(ring.size(), 4u);
}

TEST(OffsetRing, ErasesInAnyOrderAndKeepsTheLowestLiveOffsetInFront) {
  OffsetRing<std::string> ring;
  for (int64_t offset = 0; offset < 5; ++offset) ring.Append(offset, "v");
  ring.Erase(2);
  ring.Erase(2);  // twice: no-op
  EXPECT_EQ(ring.Find(2), nullptr);
  EXPECT_EQ(ring.size(), 4u);
  EXPECT_EQ(ring.front_offset(), 0);
  ring.Erase(0);
  EXPECT_EQ(ring.front_offset(), 1);
  ring.Erase(1);
  EXPECT_EQ(ring.front_offset(), 3) << "the erased 2 is skipped";
  EXPECT_EQ(Offsets(ring), (std::vector<int64_t>{3, 4}));
  // Lookups still find by position after the front moved.
  EXPECT_EQ(*ring.Find(4), "v");
  ring.Append(9, "w");
  EXPECT_EQ(*ring.Find(9), "w");
  ring.Erase(3);
  ring.Erase(4);
  ring.Erase(9);
  EXPECT_TRUE(ring.empty());
  ring.Append(20, "x");
  EXPECT_EQ(ring.front_offset(), 20);
}

TEST(OffsetRing, ErasedValuesAreFreedAtOnce) {
  OffsetRing<std::string> ring;
  ring.Append(0, "head");
  std::string& tail = ring.Append(1, std::string(1000, 'x'));
  ring.Erase(1);  // stays as a slot behind the live 0
  EXPECT_TRUE(tail.empty());
}

TEST(OffsetRing, AValueThatStaysDoesNotKeepTheSlotsOfEverythingAfterIt) {
  OffsetRing<std::string> ring;
  ring.Append(0, "stuck");  // e.g. in flight for an hour
  for (int64_t offset = 1; offset <= 100'000; ++offset) {
    ring.Append(offset, "v");
    ring.Erase(offset);
  }
  EXPECT_EQ(ring.size(), 1u);
  EXPECT_LE(ring.slot_count(), 2048u);
  EXPECT_EQ(*ring.Find(0), "stuck");
  // Gaps left by the compaction are found by search.
  ring.Append(100'001, "a");
  ring.Append(100'002, "b");
  EXPECT_EQ(*ring.Find(100'002), "b");
  EXPECT_EQ(ring.Find(50'000), nullptr);
  ring.Erase(0);
  EXPECT_EQ(ring.front_offset(), 100'001);
}

TEST(OffsetRing, ClearForgetsEverything) {
  OffsetRing<std::string> ring;
  ring.Append(5, "a");
  ring.Clear();
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.Find(5), nullptr);
  ring.Append(3, "b");  // lower offsets are fine after a Clear()
  EXPECT_EQ(*ring.Find(3), "b");
}

}  // namespace
}  // namespace ferry::subscribe
