#include "common/blocking_task_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"

namespace ferry {
namespace {

TEST(BlockingTaskRunnerTest, RunsTasksInOrderOnOneThread) {
  std::vector<int> order;
  {
    BlockingTaskRunner runner(1);
    for (int i = 0; i < 100; ++i) runner.Post([&order, i] { order.push_back(i); });
  }  // the destructor runs everything posted
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(BlockingTaskRunnerTest, ABlockedTaskDoesNotHoldBackTheOtherThread) {
  BlockingTaskRunner runner(2);
  absl::Notification release, second_ran;
  runner.Post([&] { release.WaitForNotification(); });
  runner.Post([&] { second_ran.Notify(); });
  EXPECT_TRUE(second_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(runner.pending(), 1u);  // the blocked one
  release.Notify();
}

TEST(BlockingTaskRunnerTest, TasksPostedByTasksDuringDestructionRun) {
  std::atomic<int> ran{0};
  {
    BlockingTaskRunner runner(1);
    runner.Post([&] {
      ++ran;
      runner.Post([&] { ++ran; });
    });
  }
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace ferry
