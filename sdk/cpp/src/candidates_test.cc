#include "candidates.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace ferry::client::internal {
namespace {

std::unique_ptr<Pending> Message(uint64_t seq, std::size_t bytes, int attempts) {
  std::unique_ptr<Pending> message = Pending::New("t", "", bytes);
  message->seq = seq;
  message->attempts = attempts;
  return message;
}

// Against a std::map by seq: mostly new seqs (the ring), now and then an old
// one (the heap), pops in between; sizes, bytes and retries agree throughout.
TEST(CandidatesTest, PopsInSeqOrderWhateverOrderTheyCameIn) {
  std::mt19937 random(11);
  Candidates candidates;
  std::map<uint64_t, std::pair<std::size_t, int>> model;  // seq -> bytes, attempts
  uint64_t next = 1000;
  std::vector<uint64_t> old_seqs;
  for (uint64_t seq = 1; seq < 1000; ++seq) old_seqs.push_back(seq);
  std::shuffle(old_seqs.begin(), old_seqs.end(), random);
  int from_heap = 0;
  for (int step = 0; step < 20000; ++step) {
    const int action = static_cast<int>(random() % 10);
    const std::size_t bytes = random() % 100;
    const int attempts = random() % 4 == 0 ? 1 : 0;
    if (action < 4) {
      candidates.Push(Message(++next, bytes, attempts));
      model[next] = {bytes, attempts};
    } else if (action < 6 && !old_seqs.empty()) {
      const uint64_t seq = old_seqs.back();
      old_seqs.pop_back();
      from_heap += !model.empty() && seq < model.rbegin()->first;
      candidates.Push(Message(seq, bytes, attempts));
      model[seq] = {bytes, attempts};
    } else if (!model.empty()) {
      ASSERT_EQ(candidates.front_seq(), model.begin()->first);
      ASSERT_EQ(candidates.front().seq, model.begin()->first);
      std::unique_ptr<Pending> popped = candidates.Pop();
      ASSERT_EQ(popped->seq, model.begin()->first);
      model.erase(model.begin());
    }
    ASSERT_EQ(candidates.size(), model.size());
    ASSERT_EQ(candidates.empty(), model.empty());
    std::size_t bytes_sum = 0;
    std::size_t retries = 0;
    for (const auto& [seq, entry] : model) {
      bytes_sum += entry.first;
      retries += entry.second > 0;
    }
    ASSERT_EQ(candidates.bytes(), bytes_sum);
    ASSERT_EQ(candidates.retries(), retries);
  }
  EXPECT_GT(from_heap, 100);
  if (candidates.empty()) {
    EXPECT_EQ(candidates.front_seq(), UINT64_MAX);
  }
  std::vector<std::unique_ptr<Pending>> all;
  const std::size_t left = candidates.size();
  candidates.TakeAll(&all);
  EXPECT_EQ(all.size(), left);
  EXPECT_TRUE(candidates.empty());
  EXPECT_EQ(candidates.bytes(), 0u);
  EXPECT_EQ(candidates.front_seq(), UINT64_MAX);
}

// The destructor frees what is still held (ASan's leak check sees it).
TEST(CandidatesTest, FreesWhatItStillHolds) {
  Candidates candidates;
  candidates.Push(Message(5, 1, 0));
  candidates.Push(Message(3, 1, 0));  // older: the heap
  candidates.Push(Message(9, 1, 0));
  EXPECT_EQ(candidates.Pop()->seq, 3u);
  EXPECT_EQ(candidates.size(), 2u);
}

}  // namespace
}  // namespace ferry::client::internal
