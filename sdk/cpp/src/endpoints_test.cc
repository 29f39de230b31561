#include "endpoints.h"

#include <gtest/gtest.h>

namespace ferry::client::internal {
namespace {

using std::chrono::milliseconds;

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);

TEST(Backoff, DoublesFromInitialUpToMax) {
  Backoff backoff(milliseconds(50), milliseconds(300));
  EXPECT_EQ(backoff.Delay(1), milliseconds(50));
  EXPECT_EQ(backoff.Delay(2), milliseconds(100));
  EXPECT_EQ(backoff.Delay(3), milliseconds(200));
  EXPECT_EQ(backoff.Delay(4), milliseconds(300));
  EXPECT_EQ(backoff.Delay(1000), milliseconds(300));
}

TEST(EndpointSelector, RoundRobinsOverHealthyEndpoints) {
  EndpointSelector selector(3, Backoff(milliseconds(50), milliseconds(2000)));
  EXPECT_EQ(selector.Pick(kStart), 0u);
  EXPECT_EQ(selector.Pick(kStart), 1u);
  EXPECT_EQ(selector.Pick(kStart), 2u);
  EXPECT_EQ(selector.Pick(kStart), 0u);
}

TEST(EndpointSelector, SkipsAFailedEndpointUntilItsBackoffEnds) {
  EndpointSelector selector(2, Backoff(milliseconds(50), milliseconds(2000)));
  // Given endpoint 0 failed,
  selector.ReportFailure(0, kStart);
  // when calls are sent during its backoff, they go to endpoint 1,
  EXPECT_EQ(selector.Pick(kStart), 1u);
  EXPECT_EQ(selector.Pick(kStart + milliseconds(49)), 1u);
  // then endpoint 0 is tried again.
  EXPECT_EQ(selector.Pick(kStart + milliseconds(50)), 0u);
}

TEST(EndpointSelector, WhenAllAreUnhealthyPicksTheOneRecoveringFirst) {
  EndpointSelector selector(3, Backoff(milliseconds(50), milliseconds(2000)));
  selector.ReportFailure(0, kStart + milliseconds(20));  // Until +70.
  selector.ReportFailure(1, kStart);                     // Until +50.
  selector.ReportFailure(2, kStart + milliseconds(10));  // Until +60.
  EXPECT_EQ(selector.Pick(kStart + milliseconds(30)), 1u);
}

TEST(EndpointSelector, RetryAvoidsTheEndpointItFailedOnWhileAnotherIsHealthy) {
  EndpointSelector selector(3, Backoff(milliseconds(50), milliseconds(2000)));
  selector.ReportFailure(0, kStart);
  // Endpoint 0's period has ended, but the retry still prefers the others.
  EXPECT_EQ(selector.Pick(kStart + milliseconds(60), /*avoid=*/0), 1u);
  EXPECT_EQ(selector.Pick(kStart + milliseconds(60), /*avoid=*/0), 2u);
  EXPECT_EQ(selector.Pick(kStart + milliseconds(60), /*avoid=*/0), 1u);
  // With every other endpoint unhealthy, the avoided one is used.
  selector.ReportFailure(1, kStart + milliseconds(60));
  selector.ReportFailure(2, kStart + milliseconds(60));
  EXPECT_EQ(selector.Pick(kStart + milliseconds(60), /*avoid=*/0), 0u);
}

TEST(EndpointSelector, FailuresOfConcurrentCallsCountOnce) {
  EndpointSelector selector(2, Backoff(milliseconds(50), milliseconds(2000)));
  selector.ReportFailure(0, kStart);
  selector.ReportFailure(0, kStart + milliseconds(1));
  selector.ReportFailure(0, kStart + milliseconds(2));
  EXPECT_TRUE(selector.Healthy(0, kStart + milliseconds(50)));
  // A failure after it was healthy again doubles the period.
  selector.ReportFailure(0, kStart + milliseconds(50));
  EXPECT_FALSE(selector.Healthy(0, kStart + milliseconds(149)));
  EXPECT_TRUE(selector.Healthy(0, kStart + milliseconds(150)));
}

TEST(EndpointSelector, SuccessMakesAnEndpointHealthyAndResetsItsBackoff) {
  EndpointSelector selector(2, Backoff(milliseconds(50), milliseconds(2000)));
  selector.ReportFailure(0, kStart);
  selector.ReportSuccess(0);
  EXPECT_TRUE(selector.Healthy(0, kStart));
  selector.ReportFailure(0, kStart);
  EXPECT_TRUE(selector.Healthy(0, kStart + milliseconds(50)));
}

}  // namespace
}  // namespace ferry::client::internal
