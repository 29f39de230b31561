#include "pending_queue.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>

namespace ferry::client::internal {
namespace {

std::unique_ptr<Pending> Labelled(uint64_t seq) {
  std::unique_ptr<Pending> message = Pending::New("t", "k", 0);
  message->seq = seq;
  return message;
}

// Against a std::deque of labels: random pushes at both ends and pops, so the
// ring wraps around and grows while wrapped.
TEST(PendingQueueTest, BehavesAsADeque) {
  std::mt19937 random(7);
  PendingQueue queue;
  std::deque<uint64_t> model;
  uint64_t next = 0;
  for (int step = 0; step < 20000; ++step) {
    const int action = static_cast<int>(random() % 5);
    if (action <= 1) {
      queue.push_back(Labelled(++next));
      model.push_back(next);
    } else if (action == 2) {
      queue.push_front(Labelled(++next));
      model.push_front(next);
    } else if (!model.empty()) {
      ASSERT_FALSE(queue.empty());
      EXPECT_EQ(queue.pop_front()->seq, model.front());
      model.pop_front();
    }
    ASSERT_EQ(queue.empty(), model.empty());
  }
  PendingQueue moved = std::move(queue);
  EXPECT_TRUE(queue.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  while (!model.empty()) {
    ASSERT_FALSE(moved.empty());
    EXPECT_EQ(moved.pop_front()->seq, model.front());
    model.pop_front();
  }
  EXPECT_TRUE(moved.empty());
}

TEST(PendingQueueTest, PushFrontOnEmptyThenBack) {
  PendingQueue queue;
  queue.push_front(Labelled(2));
  queue.push_back(Labelled(3));
  queue.push_front(Labelled(1));
  EXPECT_EQ(queue.pop_front()->seq, 1u);
  EXPECT_EQ(queue.pop_front()->seq, 2u);
  EXPECT_EQ(queue.pop_front()->seq, 3u);
  EXPECT_TRUE(queue.empty());
}

}  // namespace
}  // namespace ferry::client::internal
