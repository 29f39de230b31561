#include "retry.h"

#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include <set>

#include "api/retry.h"  // ferryd's table: a test-only dependency

namespace ferry::client::internal {
namespace {

constexpr int kLastKnownCode = 16;  // UNAUTHENTICATED

TEST(Retryable, WithoutTheNodesWordEveryCodeHasItsDecision) {
  const std::set<int> retryable = {static_cast<int>(grpc::StatusCode::CANCELLED),
                                   static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED),
                                   static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED),
                                   static_cast<int>(grpc::StatusCode::ABORTED),
                                   static_cast<int>(grpc::StatusCode::UNAVAILABLE)};
  for (int code = 0; code <= kLastKnownCode; ++code) {
    EXPECT_EQ(Retryable(code), retryable.contains(code)) << "code " << code;
  }
  for (int code : {-1, 17, 100}) EXPECT_FALSE(Retryable(code)) << "code " << code;
}

TEST(Retryable, TheNodesWordWinsOverTheCode) {
  EXPECT_FALSE(Retryable(static_cast<int>(grpc::StatusCode::UNAVAILABLE), false));
  EXPECT_TRUE(Retryable(static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION), true));
  EXPECT_TRUE(Retryable(static_cast<int>(grpc::StatusCode::UNKNOWN), true));
  // OK is never retried, whatever a confused node says.
  EXPECT_FALSE(Retryable(0, true));
}

// The SDK cannot link ferryd, so it keeps its own table; this keeps the two
// from drifting apart. CANCELLED is the SDK's one addition (see retry.h).
TEST(Retryable, AgreesWithTheNodesTableExceptForCancelled) {
  for (int code = 0; code <= kLastKnownCode; ++code) {
    if (code == static_cast<int>(grpc::StatusCode::CANCELLED)) continue;
    EXPECT_EQ(Retryable(code), api::IsRetryable(static_cast<absl::StatusCode>(code)))
        << "code " << code;
  }
}

}  // namespace
}  // namespace ferry::client::internal
