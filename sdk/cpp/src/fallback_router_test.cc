#include "fallback_router.h"

#include <gtest/gtest.h>

namespace ferry::client::internal {
namespace {

using std::chrono::milliseconds;

TEST(FallbackRouter, GoesDirectOnlyAfterNoNodeAnsweredForFallbackAfter) {
  FallbackRouter router(milliseconds(10'000));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(router.Current(t0), Path::kFerry);
  router.NodeUnreachable(t0);
  router.NodeUnreachable(t0 + milliseconds(5'000));  // the clock runs from the first
  EXPECT_EQ(router.Current(t0 + milliseconds(9'999)), Path::kFerry);
  EXPECT_EQ(router.Current(t0 + milliseconds(10'000)), Path::kDirect);
  router.NodeAnswered();
  EXPECT_EQ(router.Current(t0 + milliseconds(10'001)), Path::kFerry);
}

TEST(FallbackRouter, KeyWaitsWhileAnEarlierMessageIsInFlightOnTheOtherPath) {
  FallbackRouter router(milliseconds(1));
  EXPECT_EQ(router.Admit(1, "k", Path::kFerry), Path::kFerry);
  EXPECT_EQ(router.Admit(2, "k", Path::kFerry), Path::kFerry);  // same path: joins
  EXPECT_EQ(router.Admit(3, "k", Path::kDirect), std::nullopt);
  EXPECT_EQ(router.Admit(4, "k", Path::kFerry), std::nullopt);  // behind 3
  EXPECT_EQ(router.Admit(5, "other", Path::kDirect), Path::kDirect);
  EXPECT_EQ(router.Admit(6, "", Path::kDirect), Path::kDirect);  // unordered
  EXPECT_EQ(router.waiting(), 2u);

  EXPECT_TRUE(router.Finish("k", std::nullopt, Path::kDirect).tokens.empty());
  FallbackRouter::Released released = router.Finish("k", std::nullopt, Path::kDirect);
  EXPECT_EQ(released.path, Path::kDirect);
  EXPECT_EQ(released.tokens, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(router.waiting(), 0u);
  // 3 and 4 are in flight directly: a Ferry message of the key waits again.
  EXPECT_EQ(router.Admit(7, "k", Path::kFerry), std::nullopt);
  router.Finish("k", std::nullopt, Path::kFerry);
  EXPECT_EQ(router.Finish("k", std::nullopt, Path::kFerry).tokens,
            (std::vector<uint64_t>{7}));
  router.Finish("k", std::nullopt, Path::kFerry);
  router.Finish("other", std::nullopt, Path::kFerry);
  EXPECT_EQ(router.keys(), 0u);
}

TEST(FallbackRouter, FailedMessageIsResentAheadOfItsKeysWaitingMessages) {
  FallbackRouter router(milliseconds(1));
  ASSERT_EQ(router.Admit(1, "k", Path::kFerry), Path::kFerry);
  ASSERT_EQ(router.Admit(2, "k", Path::kDirect), std::nullopt);
  FallbackRouter::Released released = router.Finish("k", 1, Path::kDirect);
  EXPECT_EQ(released.tokens, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(released.path, Path::kDirect);
}

TEST(FallbackRouter, MessagesFailingOneAfterTheOtherAreResentInPublishOrder) {
  FallbackRouter router(milliseconds(1));
  ASSERT_EQ(router.Admit(1, "k", Path::kFerry), Path::kFerry);
  ASSERT_EQ(router.Admit(2, "k", Path::kFerry), Path::kFerry);
  ASSERT_EQ(router.Admit(3, "k", Path::kDirect), std::nullopt);
  EXPECT_TRUE(router.Finish("k", 1, Path::kDirect).tokens.empty());  // 2 in flight
  EXPECT_EQ(router.Finish("k", 2, Path::kDirect).tokens,
            (std::vector<uint64_t>{1, 2, 3}));
}

}  // namespace
}  // namespace ferry::client::internal
