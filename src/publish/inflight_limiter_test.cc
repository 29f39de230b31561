#include "publish/inflight_limiter.h"

#include <gtest/gtest.h>

namespace ferry::publish {
namespace {

TEST(InflightLimiter, TryAcquireFailsPastTheLimit) {
  InflightLimiter limiter(100);
  EXPECT_TRUE(limiter.TryAcquire(60));
  EXPECT_FALSE(limiter.TryAcquire(41));
  EXPECT_TRUE(limiter.TryAcquire(40));
  limiter.Release(100);
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(InflightLimiter, WaitersAreAdmittedInOrderAsBytesAreReleased) {
  InflightLimiter limiter(100);
  ASSERT_TRUE(limiter.TryAcquire(90));
  std::vector<int> admitted;
  limiter.AcquireAsync(50, [&] { admitted.push_back(1); });
  limiter.AcquireAsync(10, [&] { admitted.push_back(2); });
  EXPECT_TRUE(admitted.empty());
  // A newcomer does not overtake the queue even though 10 bytes would fit.
  EXPECT_FALSE(limiter.TryAcquire(10));

  limiter.Release(40);  // 50 in use: the first waiter fits (100), the second not yet
  EXPECT_EQ(admitted, (std::vector<int>{1}));
  limiter.Release(50);
  EXPECT_EQ(admitted, (std::vector<int>{1, 2}));
  EXPECT_EQ(limiter.in_use(), 60);
}

TEST(InflightLimiter, AcquireAsyncRunsAtOnceWhenItFits) {
  InflightLimiter limiter(100);
  bool admitted = false;
  limiter.AcquireAsync(100, [&] { admitted = true; });
  EXPECT_TRUE(admitted);
}

}  // namespace
}  // namespace ferry::publish
