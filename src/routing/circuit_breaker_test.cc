#include "routing/circuit_breaker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <random>

namespace ferry::routing {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

const absl::Status kUnavailable =
    absl::UnavailableError("cluster main: _MSG_TIMED_OUT: Local: Message timed out");

config::BreakerConfig Config() {
  return {.window = absl::Seconds(10),
          .min_requests = 20,
          .failure_rate = 0.5,
          .down_after = absl::Seconds(3),
          .open_for = absl::Seconds(30),
          .close_after = 3};
}

// A fixed, bucket-aligned start so tests can reason about buckets.
const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

backend::ClusterStatus Up(absl::Time now) {
  return {.state = backend::ClusterState::kUp, .last_contact = now};
}
backend::ClusterStatus Down(absl::Time last_contact) {
  return {.state = backend::ClusterState::kDown,
          .error = "metadata request to 127.0.0.1:9 failed",
          .last_contact = last_contact};
}

// Records `n` outcomes at `now`, returning the first transition.
std::optional<BreakerTransition> Record(CircuitBreaker& breaker, absl::Time now, int n,
                                        bool failed) {
  std::optional<BreakerTransition> first;
  for (int i = 0; i < n; ++i) {
    auto t = breaker.RecordOutcomes(now, 1, failed ? 1 : 0,
                                    failed ? kUnavailable : absl::OkStatus());
    if (t && !first) first = t;
  }
  return first;
}

// Opens a fresh breaker by failures at kStart.
CircuitBreaker Opened() {
  CircuitBreaker breaker(Config(), kStart);
  Record(breaker, kStart, 20, true);
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  return breaker;
}

TEST(CircuitBreaker, GivenFewerOutcomesThanMinRequestsFailuresDoNotOpen) {
  CircuitBreaker breaker(Config(), kStart);
  EXPECT_EQ(Record(breaker, kStart, 19, true), std::nullopt);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST(CircuitBreaker, GivenHalfTheWindowFailedItOpensAndSaysWhy) {
  CircuitBreaker breaker(Config(), kStart);
  Record(breaker, kStart, 10, false);
  EXPECT_EQ(Record(breaker, kStart + absl::Seconds(1), 9, true), std::nullopt);
  auto t = Record(breaker, kStart + absl::Seconds(2), 1, true);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->from, BreakerState::kClosed);
  EXPECT_EQ(t->to, BreakerState::kOpen);
  EXPECT_EQ(t->reason,
            "10/20 failed in the last 10s (UNAVAILABLE: cluster main: _MSG_TIMED_OUT: "
            "Local: Message timed out)");
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
}

TEST(CircuitBreaker, GivenFailuresBelowTheRateItStaysClosed) {
  CircuitBreaker breaker(Config(), kStart);
  Record(breaker, kStart, 11, false);
  EXPECT_EQ(Record(breaker, kStart, 10, true), std::nullopt);  // 10/21 < 50 %
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST(CircuitBreaker, GivenABatchOfOutcomesItCountsLikeTheSameOutcomesOneByOne) {
  CircuitBreaker breaker(Config(), kStart);
  EXPECT_EQ(breaker.RecordOutcomes(kStart, 30, 14, kUnavailable), std::nullopt);
  auto t = breaker.RecordOutcomes(kStart, 10, 6, kUnavailable);
  ASSERT_TRUE(t.has_value());
  EXPECT_THAT(t->reason, HasSubstr("20/40 failed in the last 10s"));
}

TEST(CircuitBreaker, GivenOutcomesOlderThanTheWindowTheyNoLongerCount) {
  CircuitBreaker breaker(Config(), kStart);
  Record(breaker, kStart, 15, true);
  // 10 s later the first bucket has left the window: 5 failures of 5 outcomes.
  EXPECT_EQ(Record(breaker, kStart + absl::Seconds(10), 5, true), std::nullopt);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  // Within the window they add up: 5 + 15 = 20 failures.
  EXPECT_NE(Record(breaker, kStart + absl::Seconds(19), 15, true), std::nullopt);
}

TEST(CircuitBreaker, GivenFailuresThatDoNotCountTheyAreOutcomesOfAHealthyCluster) {
  CircuitBreaker breaker(Config(), kStart);
  for (int i = 0; i < 30; ++i) {
    breaker.RecordOutcomes(kStart, 1, /*failures=*/0,
                           absl::InvalidArgumentError("message too large"));
  }
  EXPECT_EQ(Record(breaker, kStart, 29, true), std::nullopt);  // 29/59
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

// The window against a list of every outcome: after each outcome the breaker
// is open exactly when the outcomes of the last kBuckets buckets reach both
// thresholds.
TEST(CircuitBreaker, GivenRandomOutcomesTheWindowAgreesWithAListOfAllOutcomes) {
  std::mt19937 random(7);
  for (int round = 0; round < 200; ++round) {
    CircuitBreaker breaker(Config(), kStart);
    std::deque<std::pair<int64_t, bool>> outcomes;  // (second, failed)
    absl::Time now = kStart;
    for (int i = 0; i < 400 && breaker.state() == BreakerState::kClosed; ++i) {
      now += absl::Milliseconds(random() % 700);
      const bool failed = random() % 100 < 45;
      const int64_t second = absl::ToUnixSeconds(now);
      outcomes.emplace_back(second, failed);
      while (outcomes.front().first <= second - 10) outcomes.pop_front();
      int64_t failures = 0;
      for (const auto& [unused, f] : outcomes) failures += f ? 1 : 0;
      const bool should_open = failed && outcomes.size() >= 20 &&
                               failures * 2 >= static_cast<int64_t>(outcomes.size());
      breaker.RecordOutcomes(now, 1, failed ? 1 : 0,
                             failed ? kUnavailable : absl::OkStatus());
      ASSERT_EQ(breaker.state() == BreakerState::kOpen, should_open)
          << "round " << round << " outcome " << i;
    }
  }
}

TEST(CircuitBreaker, GivenAClusterWithoutAnswerForDownAfterItOpens) {
  CircuitBreaker breaker(Config(), kStart);
  const absl::Time last_answer = kStart;
  EXPECT_EQ(breaker.ObserveCluster(kStart + absl::Seconds(2), Down(last_answer)),
            std::nullopt);
  auto t = breaker.ObserveCluster(kStart + absl::Seconds(3), Down(last_answer));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, BreakerState::kOpen);
  EXPECT_EQ(t->reason,
            "metadata probe failing for 3s (metadata request to 127.0.0.1:9 failed)");
}

TEST(CircuitBreaker, GivenAClusterThatNeverAnsweredDownAfterCountsFromTheFirstLook) {
  CircuitBreaker breaker(Config(), kStart);
  EXPECT_EQ(breaker.ObserveCluster(kStart, Down(absl::InfinitePast())), std::nullopt);
  EXPECT_EQ(breaker.ObserveCluster(kStart + absl::Seconds(2), Down(absl::InfinitePast())),
            std::nullopt);
  EXPECT_NE(breaker.ObserveCluster(kStart + absl::Seconds(3), Down(absl::InfinitePast())),
            std::nullopt);
}

TEST(CircuitBreaker, GivenAClusterThatAnswersAgainTheDownTimeStartsOver) {
  CircuitBreaker breaker(Config(), kStart);
  breaker.ObserveCluster(kStart, Down(absl::InfinitePast()));
  breaker.ObserveCluster(kStart + absl::Seconds(2), Up(kStart + absl::Seconds(2)));
  EXPECT_EQ(breaker.ObserveCluster(kStart + absl::Seconds(4), Down(absl::InfinitePast())),
            std::nullopt);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST(CircuitBreaker, GivenOpenItGoesHalfOpenOnlyAfterOpenForAndWhenTheClusterAnswers) {
  CircuitBreaker breaker = Opened();
  EXPECT_EQ(breaker.ObserveCluster(kStart + absl::Seconds(29), Up(kStart)), std::nullopt);
  EXPECT_EQ(breaker.ObserveCluster(kStart + absl::Seconds(31), Down(kStart)),
            std::nullopt);
  auto t = breaker.ObserveCluster(kStart + absl::Seconds(32), Up(kStart));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, BreakerState::kHalfOpen);
}

TEST(CircuitBreaker, GivenHalfOpenCloseAfterSuccessfulProbesCloseItWithAnEmptyWindow) {
  CircuitBreaker breaker = Opened();
  absl::Time now = kStart + absl::Seconds(30);
  breaker.ObserveCluster(now, Up(now));
  ASSERT_EQ(breaker.state(), BreakerState::kHalfOpen);
  // Publish outcomes (stragglers of the real traffic) do not count now.
  EXPECT_EQ(Record(breaker, now, 50, false), std::nullopt);
  EXPECT_EQ(breaker.RecordProbe(now, absl::OkStatus()), std::nullopt);
  EXPECT_EQ(breaker.RecordProbe(now, absl::OkStatus()), std::nullopt);
  auto t = breaker.RecordProbe(now, absl::OkStatus());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, BreakerState::kClosed);
  EXPECT_EQ(t->reason, "3 probe messages in a row acknowledged");
  // The failures that opened it are gone: 19 new ones do not reopen it.
  EXPECT_EQ(Record(breaker, now, 19, true), std::nullopt);
}

TEST(CircuitBreaker, GivenHalfOpenOneFailedProbeReopensItForTwiceAsLongCapped) {
  CircuitBreaker breaker = Opened();
  absl::Time now = kStart;
  absl::Duration expected = absl::Seconds(30);
  for (int i = 0; i < 6; ++i) {
    now += breaker.open_period();
    breaker.ObserveCluster(now, Up(now));
    ASSERT_EQ(breaker.state(), BreakerState::kHalfOpen);
    breaker.RecordProbe(now, absl::OkStatus());
    auto t = breaker.RecordProbe(now, kUnavailable);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->to, BreakerState::kOpen);
    expected = std::min(expected * 2, absl::Seconds(30) * 8);
    EXPECT_EQ(breaker.open_period(), expected);
    EXPECT_THAT(t->reason, HasSubstr("probe message failed (UNAVAILABLE"));
    // Not before the longer period is over.
    EXPECT_EQ(breaker.ObserveCluster(now + expected - absl::Seconds(1), Up(now)),
              std::nullopt);
  }
}

// Closes it after `open` ends, at the returned time.
absl::Time CloseAfterOpen(CircuitBreaker& breaker, absl::Time opened) {
  const absl::Time now = opened + breaker.open_period();
  breaker.ObserveCluster(now, Up(now));
  for (int i = 0; i < 3; ++i) breaker.RecordProbe(now, absl::OkStatus());
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  return now;
}

TEST(CircuitBreaker, GivenAFlappingClusterEachOpenLastsLongerAndStabilityResetsIt) {
  CircuitBreaker breaker = Opened();
  absl::Time closed = CloseAfterOpen(breaker, kStart);
  // Trips again 5 s after closing: flapping, so the next open is longer.
  absl::Time now = closed + absl::Seconds(5);
  Record(breaker, now, 20, true);
  ASSERT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.open_period(), absl::Seconds(60));
  closed = CloseAfterOpen(breaker, now);
  // Closed for longer than the open period: the next trip starts over.
  now = closed + absl::Seconds(61);
  Record(breaker, now, 20, true);
  EXPECT_EQ(breaker.open_period(), absl::Seconds(30));
}

TEST(CircuitBreaker, GivenDrainedItStaysOpenUntilUndrainedThenProbes) {
  CircuitBreaker breaker(Config(), kStart);
  auto t = breaker.SetDrained(kStart, true);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->from, BreakerState::kClosed);
  EXPECT_EQ(t->to, BreakerState::kOpen);
  EXPECT_EQ(t->reason, "drained by an operator");
  EXPECT_EQ(breaker.SetDrained(kStart, true), std::nullopt);
  const absl::Time later = kStart + absl::Hours(1);
  EXPECT_EQ(breaker.ObserveCluster(later, Up(later)), std::nullopt);
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  t = breaker.SetDrained(later, false);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, BreakerState::kHalfOpen);
  for (int i = 0; i < 3; ++i) breaker.RecordProbe(later, absl::OkStatus());
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST(CircuitBreaker, StatesHaveTheAdminApiNames) {
  EXPECT_EQ(ToString(BreakerState::kClosed), "closed");
  EXPECT_EQ(ToString(BreakerState::kHalfOpen), "half-open");
  EXPECT_EQ(ToString(BreakerState::kOpen), "open");
}

}  // namespace
}  // namespace ferry::routing
