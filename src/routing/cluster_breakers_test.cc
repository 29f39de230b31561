#include "routing/cluster_breakers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "backend/fake_cluster.h"

namespace ferry::routing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Publishes complete inline (FakeCluster); counts FailPendingPublishes.
class CountingCluster : public backend::FakeCluster {
 public:
  using FakeCluster::FakeCluster;
  void FailPendingPublishes() override { ++fail_pending; }
  std::atomic<int> fail_pending{0};
};

class ClusterBreakersTest : public ::testing::Test {
 protected:
  ClusterBreakersTest()
      : breakers_({.window = absl::Seconds(10),
                   .min_requests = 20,
                   .failure_rate = 0.5,
                   .down_after = absl::Seconds(3),
                   .open_for = absl::Seconds(30),
                   .close_after = 3},
                  {&primary_, &standby_}, &registry_, [this] { return now_; }) {}

  // Publishes `n` records to `cluster` as the publish path does: through
  // the cluster, recording each outcome into its breaker.
  void Publish(CountingCluster& cluster, int n) {
    ClusterBreaker* breaker = breakers_.Find(cluster.name());
    for (int i = 0; i < n; ++i) {
      cluster.Publish({.topic = "orders", .value = "v"},
                      [breaker](backend::PublishOutcome o) {
                        breaker->Record(1, o.counts_against_cluster ? 1 : 0, o.status);
                      });
    }
  }

  void OpenPrimaryByFailures() {
    primary_.SetPublishStatus(absl::UnavailableError("all brokers down"));
    Publish(primary_, 20);
    primary_.SetPublishStatus(absl::OkStatus());
    ASSERT_EQ(breakers_.Find("primary")->state(), BreakerState::kOpen);
  }

  std::string Chosen(const std::vector<std::string>& write) {
    ClusterBreaker* b = breakers_.Choose(write);
    return b == nullptr ? "(none)" : b->cluster()->name();
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  CountingCluster primary_{"primary"};
  CountingCluster standby_{"standby"};
  metrics::Registry registry_;
  ClusterBreakers breakers_;
};

TEST_F(ClusterBreakersTest, GivenEveryBreakerClosedChooseTakesTheFirstOfTheWriteList) {
  EXPECT_EQ(Chosen({"primary", "standby"}), "primary");
  EXPECT_EQ(Chosen({"standby", "primary"}), "standby");
  EXPECT_EQ(Chosen({"gone", "standby"}), "standby");
  EXPECT_EQ(Chosen({"gone"}), "(none)");
}

TEST_F(ClusterBreakersTest, GivenAFailingPrimaryWritesMoveAndItsPendingPublishesFail) {
  // Failures that do not say the cluster is unhealthy move nothing.
  primary_.SetPublishStatus(absl::InvalidArgumentError("message too large"));
  Publish(primary_, 40);
  EXPECT_EQ(Chosen({"primary", "standby"}), "primary");
  now_ += absl::Seconds(10);  // they leave the window

  OpenPrimaryByFailures();
  EXPECT_EQ(Chosen({"primary", "standby"}), "standby");
  const std::string metrics = registry_.Render();
  EXPECT_THAT(metrics, HasSubstr("ferry_cluster_breaker_state{cluster=\"primary\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("ferry_cluster_breaker_state{cluster=\"standby\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("ferry_cluster_failovers_total{cluster=\"primary\"} 1"));
  // The watcher, not the publish callback, fails what the cluster still holds.
  EXPECT_EQ(primary_.fail_pending, 0);
  breakers_.WatchAll();
  EXPECT_EQ(primary_.fail_pending, 1);
  breakers_.WatchAll();
  EXPECT_EQ(primary_.fail_pending, 1);
  EXPECT_EQ(standby_.fail_pending, 0);
}

TEST_F(ClusterBreakersTest, GivenNoClosedBreakerTheFirstClusterIsStillWritten) {
  OpenPrimaryByFailures();
  standby_.SetPublishStatus(absl::DeadlineExceededError("request timed out"));
  Publish(standby_, 20);
  EXPECT_EQ(Chosen({"primary", "standby"}), "primary");
}

TEST_F(ClusterBreakersTest, GivenADeadClusterWithoutTrafficItsProbeOpensTheBreaker) {
  primary_.SetStatus({.state = backend::ClusterState::kDown,
                      .error = "metadata request failed",
                      .last_contact = now_});
  now_ += absl::Seconds(2);
  breakers_.WatchAll();
  EXPECT_EQ(Chosen({"primary", "standby"}), "primary");
  now_ += absl::Seconds(1);
  breakers_.WatchAll();
  EXPECT_EQ(Chosen({"primary", "standby"}), "standby");
  EXPECT_EQ(primary_.fail_pending, 1);
}

TEST_F(ClusterBreakersTest, GivenHalfOpenProbeMessagesCloseItAndWritesReturn) {
  OpenPrimaryByFailures();
  breakers_.WatchAll();
  now_ += absl::Seconds(30);
  breakers_.WatchAll();  // half-open; the first probe is acknowledged inline
  EXPECT_EQ(breakers_.Find("primary")->state(), BreakerState::kHalfOpen);
  EXPECT_EQ(Chosen({"primary", "standby"}), "standby");  // traffic stays away
  breakers_.WatchAll();
  breakers_.WatchAll();
  EXPECT_EQ(breakers_.Find("primary")->state(), BreakerState::kClosed);
  EXPECT_EQ(Chosen({"primary", "standby"}), "primary");
  int probes = 0;
  for (const backend::Record& r : primary_.published()) {
    if (r.topic == kProbeTopic) ++probes;
  }
  EXPECT_EQ(probes, 3);
  EXPECT_TRUE(primary_.DescribeTopic(kProbeTopic).ok());  // created when missing
  EXPECT_THAT(registry_.Render(),
              HasSubstr("ferry_cluster_breaker_state{cluster=\"primary\"} 0"));
}

TEST_F(ClusterBreakersTest, GivenHalfOpenAFailedProbeReopensIt) {
  OpenPrimaryByFailures();
  now_ += absl::Seconds(30);
  primary_.SetPublishStatus(absl::UnavailableError("still down"));
  breakers_.WatchAll();
  EXPECT_EQ(breakers_.Find("primary")->state(), BreakerState::kOpen);
  now_ += absl::Seconds(59);
  breakers_.WatchAll();  // the reopened breaker waits twice as long
  EXPECT_EQ(breakers_.Find("primary")->state(), BreakerState::kOpen);
  // Reopening is no new failover, and does not fail pending publishes again.
  EXPECT_THAT(registry_.Render(),
              HasSubstr("ferry_cluster_failovers_total{cluster=\"primary\"} 1"));
  EXPECT_EQ(primary_.fail_pending, 1);
}

TEST_F(ClusterBreakersTest, GivenADrainedClusterWritesLeaveWithoutFailingItsPublishes) {
  ASSERT_TRUE(breakers_.SetDrained("primary", true).ok());
  EXPECT_EQ(Chosen({"primary", "standby"}), "standby");
  now_ += absl::Hours(1);
  breakers_.WatchAll();
  EXPECT_EQ(Chosen({"primary", "standby"}), "standby");
  EXPECT_EQ(primary_.fail_pending, 0);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("ferry_cluster_failovers_total{cluster=\"primary\"} 1"));

  ASSERT_TRUE(breakers_.SetDrained("primary", false).ok());
  EXPECT_EQ(breakers_.Find("primary")->state(), BreakerState::kHalfOpen);
  for (int i = 0; i < 3; ++i) breakers_.WatchAll();
  EXPECT_EQ(Chosen({"primary", "standby"}), "primary");
}

TEST_F(ClusterBreakersTest, GivenAnUnknownClusterDrainIsNotFound) {
  absl::Status s = breakers_.SetDrained("nope", true);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"nope\""));
  EXPECT_THAT(registry_.Render(), Not(HasSubstr("nope")));
}

}  // namespace
}  // namespace ferry::routing
