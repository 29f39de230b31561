#include "handler_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ferry::client::internal {
namespace {

constexpr absl::Duration kWait = absl::Seconds(5);

TEST(HandlerPool, TasksOfOneKeyRunInOrderBehindEachOther) {
  HandlerPool pool(4);
  absl::Notification release;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification all_done;
  pool.Submit("k", [&] {
    release.WaitForNotification();
    absl::MutexLock lock(&mu);
    order.push_back(1);
  });
  pool.Submit("k", [&] {
    absl::MutexLock lock(&mu);
    order.push_back(2);
  });
  // Another key and unkeyed tasks are not held up by the blocked key.
  absl::Notification other_key_ran;
  absl::Notification unkeyed_ran;
  pool.Submit("other", [&] { other_key_ran.Notify(); });
  pool.Submit("", [&] { unkeyed_ran.Notify(); });
  EXPECT_TRUE(other_key_ran.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(unkeyed_ran.WaitForNotificationWithTimeout(kWait));
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(order.empty());
  }
  pool.Submit("k", [&] { all_done.Notify(); });
  release.Notify();
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(kWait));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(HandlerPool, SubmitAllKeepsOrderPerKeyWithinAndAcrossBatches) {
  HandlerPool pool(4);
  absl::Mutex mu;
  std::map<std::string, std::vector<int>> seen;
  constexpr int kPerKey = 200;
  absl::BlockingCounter done(3 * kPerKey);
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<HandlerPool::Keyed> tasks;
    for (int i = batch * kPerKey / 4; i < (batch + 1) * kPerKey / 4; ++i) {
      for (std::string key : {"a", "b", "c"}) {
        tasks.push_back({key, [&, key, i] {
                           {
                             absl::MutexLock lock(&mu);
                             seen[key].push_back(i);
                           }
                           done.DecrementCount();
                         }});
      }
    }
    pool.SubmitAll(std::move(tasks));
  }
  done.Wait();
  absl::MutexLock lock(&mu);
  for (const auto& [key, order] : seen) {
    ASSERT_EQ(order.size(), static_cast<size_t>(kPerKey)) << key;
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << key;
  }
}

TEST(HandlerPool, StopDestroysQueuedTasksAndWaitsForRunningOnes) {
  HandlerPool pool(1);
  absl::Notification started;
  absl::Notification release;
  std::atomic<bool> queued_ran = false;
  auto token = std::make_shared<int>(0);
  pool.Submit("", [&] {
    started.Notify();
    release.WaitForNotification();
  });
  pool.Submit("", [&queued_ran, token] { queued_ran = true; });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));

  EXPECT_FALSE(pool.Stop(std::chrono::milliseconds(20)));  // Still running.
  EXPECT_EQ(token.use_count(), 1);                         // The queued task is gone.
  release.Notify();
  EXPECT_TRUE(pool.Stop(std::chrono::milliseconds(5000)));
  EXPECT_FALSE(queued_ran);
}

// Nothing re-checks a waiter's condition on unlock (plain_mutex.h): a missed
// notify leaves a worker asleep, or Stop waiting out its timeout. These wake
// a pool that had kSettle to go idle and bound how late it reacts (generous,
// for a loaded machine; the waits are far longer).
constexpr absl::Duration kLongWait = absl::Seconds(60);
constexpr absl::Duration kWakeBound = absl::Seconds(10);
constexpr absl::Duration kSettle = absl::Milliseconds(200);

TEST(HandlerPool, ATaskSubmittedToAnIdlePoolRunsPromptly) {
  HandlerPool pool(2);
  absl::SleepFor(kSettle);
  absl::Notification ran;
  const absl::Time submitted = absl::Now();
  pool.Submit("k", [&] { ran.Notify(); });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(kLongWait));
  EXPECT_LT(absl::Now() - submitted, kWakeBound);
}

// Two ready tasks, one waiting for the other: both workers must wake.
TEST(HandlerPool, ReadyTasksSubmittedTogetherToAnIdlePoolRunInParallelPromptly) {
  HandlerPool pool(2);
  absl::SleepFor(kSettle);
  absl::Notification second_ran;
  absl::Notification first_ran;
  std::vector<HandlerPool::Keyed> tasks;
  tasks.push_back({"a", [&] {
                     if (second_ran.WaitForNotificationWithTimeout(kLongWait))
                       first_ran.Notify();
                   }});
  tasks.push_back({"b", [&] { second_ran.Notify(); }});
  const absl::Time submitted = absl::Now();
  pool.SubmitAll(std::move(tasks));
  ASSERT_TRUE(first_ran.WaitForNotificationWithTimeout(kLongWait));
  EXPECT_LT(absl::Now() - submitted, kWakeBound);
}

TEST(HandlerPool, StopReturnsPromptlyOnceTheRunningTaskEnds) {
  HandlerPool pool(2);
  absl::Notification started;
  absl::Notification release;
  pool.Submit("", [&] {
    started.Notify();
    release.WaitForNotification();
  });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  std::future<bool> stopped = std::async(std::launch::async, [&] {
    return pool.Stop(absl::ToChronoMilliseconds(kLongWait));
  });
  absl::SleepFor(kSettle);
  const absl::Time released = absl::Now();
  release.Notify();
  EXPECT_TRUE(stopped.get());
  EXPECT_LT(absl::Now() - released, kWakeBound);
}

}  // namespace
}  // namespace ferry::client::internal
