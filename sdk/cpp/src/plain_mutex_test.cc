#include "plain_mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace ferry::client::internal {
namespace {

using std::chrono::milliseconds;

TEST(PlainCondVar, AwaitForWithATimeoutOfZeroOrLessOnlyChecks) {
  PlainMutex mu;
  PlainCondVar cv;
  PlainLock lock(&mu);
  for (milliseconds timeout : {milliseconds::min(), milliseconds(-1), milliseconds(0)}) {
    EXPECT_FALSE(cv.AwaitFor(
        &mu, [] { return false; }, timeout));
    EXPECT_TRUE(cv.AwaitFor(
        &mu, [] { return true; }, timeout));
  }
}

TEST(PlainCondVar, AwaitForEndsAtItsTimeoutOrWhenNotified) {
  PlainMutex mu;
  PlainCondVar cv;
  bool ready = false;
  {
    PlainLock lock(&mu);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(cv.AwaitFor(
        &mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ready; },
        milliseconds(20)));
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(20));
  }
  std::thread notifier([&] {
    std::this_thread::sleep_for(milliseconds(20));
    PlainLock lock(&mu);
    ready = true;
    cv.NotifyAll();
  });
  {
    PlainLock lock(&mu);
    // milliseconds::max(): past the clock's range, waits without a deadline.
    EXPECT_TRUE(cv.AwaitFor(
        &mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ready; },
        milliseconds::max()));
  }
  notifier.join();
}

// A condition that throws leaves the mutex held once, for the caller's
// PlainLock to release: a second unlock would be undefined behaviour.
TEST(PlainCondVar, AConditionThatThrowsLeavesTheMutexHeldOnce) {
  PlainMutex mu;
  PlainCondVar cv;
  auto throws = []() -> bool { throw std::runtime_error("condition"); };
  for (int form = 0; form < 3; ++form) {
    try {
      PlainLock lock(&mu);
      if (form == 0) cv.Await(&mu, throws);
      if (form == 1) {
        cv.AwaitUntil(&mu, throws, std::chrono::steady_clock::now() + milliseconds(10));
      }
      if (form == 2) cv.AwaitFor(&mu, throws, milliseconds(10));
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error&) {
    }
    // Taken and released again from another thread: the mutex is free.
    std::thread other([&] { PlainLock lock(&mu); });
    other.join();
  }
}

}  // namespace
}  // namespace ferry::client::internal
