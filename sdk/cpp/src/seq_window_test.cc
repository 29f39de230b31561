#include "seq_window.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::client::internal {
namespace {

TEST(SeqWindow, NumbersStartAtOneAndIncrease) {
  SeqWindow window;
  EXPECT_EQ(window.Add(), 1u);
  EXPECT_EQ(window.Add(), 2u);
  EXPECT_EQ(window.next(), 3u);
  EXPECT_EQ(window.LowestUnresolved(), 1u);
}

TEST(SeqWindow, OutOfOrderResolutionHoldsTheLowWaterMark) {
  // Given 1..4 in flight
  SeqWindow window;
  for (int i = 0; i < 4; ++i) window.Add();
  // When 2 and 4 resolve, 1 still holds the mark
  window.Resolve(2);
  window.Resolve(4);
  EXPECT_EQ(window.LowestUnresolved(), 1u);
  // Then resolving 1 skips the already resolved 2
  window.Resolve(1);
  EXPECT_EQ(window.LowestUnresolved(), 3u);
  window.Resolve(3);
  EXPECT_EQ(window.LowestUnresolved(), 5u);
  EXPECT_EQ(window.next(), 5u);
}

TEST(SeqWindow, EmptyWindowPointsAtTheNextNumber) {
  SeqWindow window;
  EXPECT_EQ(window.LowestUnresolved(), window.next());
  const uint64_t seq = window.Add();
  window.Resolve(seq);
  EXPECT_EQ(window.LowestUnresolved(), 2u);
  EXPECT_EQ(window.Add(), 2u);
}

TEST(SeqWindow, ManyInterleavedAddsAndResolvesKeepTheMarkExact) {
  SeqWindow window;
  std::vector<uint64_t> open;
  for (int round = 0; round < 1000; ++round) {
    open.push_back(window.Add());
    open.push_back(window.Add());
    // Resolve the newest of every round and the oldest every other round.
    window.Resolve(open.back());
    open.pop_back();
    if (round % 2 == 1) {
      window.Resolve(open.front());
      open.erase(open.begin());
    }
    ASSERT_EQ(window.LowestUnresolved(), open.front());
  }
}

}  // namespace
}  // namespace ferry::client::internal
