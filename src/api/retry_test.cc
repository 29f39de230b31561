#include "api/retry.h"

#include <gtest/gtest.h>

#include <set>

namespace ferry::api {
namespace {

// Every absl::StatusCode value, with the decision clients rely on; values
// abseil may add later are covered by the next test.
TEST(Retry, EveryStatusCodeHasItsDecision) {
  using C = absl::StatusCode;
  const std::set<C> retryable = {C::kUnavailable, C::kDeadlineExceeded,
                                 C::kResourceExhausted, C::kAborted};
  const C all[] = {C::kOk,
                   C::kCancelled,
                   C::kUnknown,
                   C::kInvalidArgument,
                   C::kDeadlineExceeded,
                   C::kNotFound,
                   C::kAlreadyExists,
                   C::kPermissionDenied,
                   C::kResourceExhausted,
                   C::kFailedPrecondition,
                   C::kAborted,
                   C::kOutOfRange,
                   C::kUnimplemented,
                   C::kInternal,
                   C::kUnavailable,
                   C::kDataLoss,
                   C::kUnauthenticated};
  ASSERT_EQ(std::size(all), 17u);  // OK .. UNAUTHENTICATED (16), as in gRPC
  for (C code : all) {
    EXPECT_EQ(IsRetryable(code), retryable.contains(code))
        << absl::StatusCodeToString(code);
  }
}

TEST(Retry, CodesThisVersionDoesNotKnowAreNotRetryable) {
  for (int value : {-1, 17, 18, 100, 1 << 20}) {
    EXPECT_FALSE(IsRetryable(static_cast<absl::StatusCode>(value))) << value;
  }
}

TEST(Retry, OnlyUnavailableAndDeadlineExceededCountAgainstACluster) {
  using C = absl::StatusCode;
  for (int value = -1; value <= 20; ++value) {
    const auto code = static_cast<C>(value);
    const bool unhealthy = code == C::kUnavailable || code == C::kDeadlineExceeded;
    EXPECT_EQ(CountsAgainstCluster(code), unhealthy) << absl::StatusCodeToString(code);
    // A failure that moves traffic to another cluster is one worth resending.
    if (CountsAgainstCluster(code)) {
      EXPECT_TRUE(IsRetryable(code));
    }
  }
}

}  // namespace
}  // namespace ferry::api
