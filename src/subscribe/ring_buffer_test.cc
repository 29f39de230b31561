#include "subscribe/ring_buffer.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace ferry::subscribe {
namespace {

std::vector<int> Contents(const RingBuffer<int>& ring) {
  std::vector<int> out;
  for (size_t i = 0; i < ring.size(); ++i) out.push_back(ring[i]);
  return out;
}

TEST(RingBuffer, KeepsOrderAcrossWrapAroundAndGrowth) {
  RingBuffer<int> ring;
  int next = 0, first = 0;
  // Push and pop so that the used part wraps around the array end, then grow
  // it while wrapped.
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 7; ++i) ring.push_back(next++);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(ring.front(), first++);
      ring.pop_front();
    }
  }
  ASSERT_EQ(ring.size(), 20u);
  for (size_t i = 0; i < ring.size(); ++i)
    EXPECT_EQ(ring[i], first + static_cast<int>(i));
  EXPECT_EQ(ring.back(), next - 1);
}

TEST(RingBuffer, FillingAndDrainingAgainKeepsTheArray) {
  RingBuffer<int> ring;
  for (int i = 0; i < 500; ++i) ring.push_back(i);
  const size_t grown = ring.capacity();
  EXPECT_GE(grown, 500u);
  for (int round = 0; round < 3; ++round) {
    while (!ring.empty()) ring.pop_front();
    EXPECT_EQ(ring.capacity(), grown) << "shrank while draining in round " << round;
    for (int i = 0; i < 500; ++i) ring.push_back(i);
    EXPECT_EQ(ring.capacity(), grown) << "reallocated while refilling in round " << round;
  }
  ring.Trim();  // the peak since the start needed all of it
  EXPECT_EQ(ring.capacity(), grown);
}

TEST(RingBuffer, TrimShrinksToThePeakSinceTheLastTrim) {
  RingBuffer<int> ring;
  for (int i = 0; i < 1000; ++i) ring.push_back(i);
  const size_t grown = ring.capacity();
  while (ring.size() > 10) ring.pop_front();
  ring.Trim();  // this period's peak was 1000
  EXPECT_EQ(ring.capacity(), grown);
  ring.push_back(1000);
  ring.pop_front();
  ring.Trim();  // this period's peak was 11
  EXPECT_LE(ring.capacity(), 64u) << "grown to " << grown;
  EXPECT_GE(ring.capacity(), 16u);
  ASSERT_EQ(ring.size(), 10u);
  EXPECT_EQ(ring.front(), 991);
  EXPECT_EQ(ring.back(), 1000);
}

TEST(RingBuffer, TrimFreesTheArrayOfABufferIdleForAPeriod) {
  RingBuffer<int> ring;
  for (int i = 0; i < 100; ++i) ring.push_back(i);
  while (!ring.empty()) ring.pop_front();
  ring.Trim();
  EXPECT_GT(ring.capacity(), 0u) << "held 100 in this period";
  ring.Trim();
  EXPECT_EQ(ring.capacity(), 0u);
  ring.push_back(7);  // usable again
  EXPECT_EQ(ring.front(), 7);
}

TEST(RingBuffer, RemoveIfKeepsTheOrderOfTheRest) {
  RingBuffer<int> ring;
  for (int i = 0; i < 40; ++i) ring.push_back(i);
  for (int i = 0; i < 30; ++i) ring.pop_front();  // 30..39, wrapped later on
  for (int i = 40; i < 50; ++i) ring.push_back(i);
  ring.RemoveIf([](int v) { return v % 3 != 0; });
  EXPECT_EQ(Contents(ring), (std::vector<int>{30, 33, 36, 39, 42, 45, 48}));
}

TEST(RingBuffer, DestroysWhatItPopsRemovesAndClears) {
  auto tracked = std::make_shared<int>(0);
  RingBuffer<std::shared_ptr<int>> ring;
  for (int i = 0; i < 50; ++i) ring.push_back(tracked);
  EXPECT_EQ(tracked.use_count(), 51);
  ring.pop_front();
  EXPECT_EQ(tracked.use_count(), 50);
  bool odd = false;
  ring.RemoveIf([&](const std::shared_ptr<int>&) { return odd = !odd; });
  EXPECT_EQ(ring.size(), 24u);
  EXPECT_EQ(tracked.use_count(), 25);
  ring.clear();
  EXPECT_EQ(tracked.use_count(), 1);
  EXPECT_TRUE(ring.empty());
  ring.push_back(tracked);  // usable again after clear()
  EXPECT_EQ(ring.size(), 1u);
}

}  // namespace
}  // namespace ferry::subscribe
