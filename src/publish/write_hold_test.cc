#include "publish/write_hold.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "backend/fake_cluster.h"
#include "publish/batch_publisher.h"
#include "publish/test_batch.h"

namespace ferry::publish {
namespace {

using ::testing::ElementsAre;

constexpr absl::Duration kWait = absl::Seconds(10);

// Counts settle callbacks; waits for a number of them.
class Settled {
 public:
  std::function<void()> Callback() {
    return [this] {
      absl::MutexLock lock(&mu_);
      ++count_;
    };
  }
  bool WaitFor(int count) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// Given a publish in flight, when the topic is held, then the hold is
// unsettled (the heartbeat reports the record not applied) until the
// publish completed; publishes to other topics flow meanwhile.
TEST(WriteHold, AHoldSettlesOnlyOnceTheWritesInFlightCompleted) {
  metrics::Registry registry;
  Settled settled;
  WriteHold hold(absl::Seconds(30), &registry, settled.Callback());
  ASSERT_TRUE(hold.TryEnter("orders"));
  hold.Set("orders", true, 42);
  EXPECT_TRUE(hold.IsHeld("orders"));
  EXPECT_EQ(hold.OldestUnsettled(), 42);
  EXPECT_FALSE(hold.TryEnter("orders"));
  ASSERT_TRUE(hold.TryEnter("payments"));
  hold.Done("payments");
  EXPECT_EQ(hold.OldestUnsettled(), 42);
  hold.Done("orders");
  EXPECT_EQ(hold.OldestUnsettled(), std::nullopt);
  EXPECT_TRUE(settled.WaitFor(1));
}

TEST(WriteHold, AHoldOnAnIdleTopicIsSettledAtOnce) {
  metrics::Registry registry;
  Settled settled;
  WriteHold hold(absl::Seconds(30), &registry, settled.Callback());
  hold.Set("orders", true, 7);
  EXPECT_EQ(hold.OldestUnsettled(), std::nullopt);
  EXPECT_TRUE(settled.WaitFor(1));
}

// Given publishes queued while held, when the hold is released, they run in
// the order they came, and a publish arriving while they drain queues
// behind them instead of overtaking.
TEST(WriteHold, QueuedPublishesRunInOrderOnRelease) {
  metrics::Registry registry;
  WriteHold hold(absl::Seconds(30), &registry, [] {});
  hold.Set("orders", true, 1);
  absl::Mutex mu;
  std::vector<int> ran;
  absl::Notification last_ran;
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(hold.TryEnter("orders"));
    hold.Enqueue(
        "orders", absl::Now() + kWait,
        [&, i] {
          {
            absl::MutexLock lock(&mu);
            ran.push_back(i);
          }
          hold.Done("orders");
          if (i == 2) last_ran.Notify();
        },
        [](absl::Status) { FAIL() << "expired"; });
  }
  absl::SleepFor(absl::Milliseconds(100));
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(ran.empty()) << "ran while held";
  }
  hold.Set("orders", false, 2);
  ASSERT_TRUE(last_ran.WaitForNotificationWithTimeout(kWait));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(ran, ElementsAre(0, 1, 2));
}

TEST(WriteHold, AQueuedPublishFailsUnavailableAtItsDeadline) {
  metrics::Registry registry;
  WriteHold hold(absl::Seconds(30), &registry, [] {});
  hold.Set("orders", true, 1);
  absl::Notification expired;
  absl::Status status;
  hold.Enqueue(
      "orders", absl::Now() + absl::Milliseconds(200), [] { FAIL() << "ran while held"; },
      [&](absl::Status s) {
        status = s;
        expired.Notify();
      });
  ASSERT_TRUE(expired.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("held"));
  EXPECT_TRUE(hold.IsHeld("orders"));
}

// A coordinator that died holding: the node releases the hold after
// max_hold, counts it, and the queued publishes go out.
TEST(WriteHold, ANodeReleasesAHoldItKeptLongerThanMaxHold) {
  metrics::Registry registry;
  WriteHold hold(absl::Milliseconds(300), &registry, [] {});
  hold.Set("orders", true, 1);
  absl::Notification ran;
  hold.Enqueue(
      "orders", absl::Now() + kWait,
      [&] {
        hold.Done("orders");
        ran.Notify();
      },
      [](absl::Status) { FAIL() << "expired"; });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(hold.IsHeld("orders"));
  EXPECT_THAT(registry.Render(),
              ::testing::HasSubstr("ferry_write_hold_expired_total{topic=\"orders\"} 1"));
}

// The publish path with a write hold, on clusters "a" and "b" that complete
// publishes inline; the route of "orders" writes to `cluster`.
class HeldPublishPath {
 public:
  explicit HeldPublishPath(config::PublishConfig limits = {})
      : routes_(RouteTo("a")),
        breakers_(config::BreakerConfig{}, {&a_, &b_}, &registry_),
        hold_(absl::Seconds(30), &registry_, [] {}),
        publisher_(limits, &routes_, &breakers_, &registry_, &limiter_, &hold_) {}

  static std::shared_ptr<const routing::Router> RouteTo(const std::string& cluster) {
    return std::make_shared<const routing::Router>(
        std::vector<config::RouteConfig>{
            {.topic = "orders", .write = {cluster}, .read = {cluster}}},
        std::vector<std::string>{"a", "b"});
  }

  // Publishes one message to "orders"; `answered` is notified, then
  // sent.Response() is the answer.
  void Publish() {
    auto batch = publisher_.Prepare(sent.request());
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->cluster, &a_);
    ASSERT_TRUE(limiter_.TryAcquire(batch->bytes));
    publisher_.Publish(&sent.request(), sent.answer(), *batch,
                       [this] { answered.Notify(); });
  }

  static v1::PublishRequest OneMessage() {
    v1::PublishRequest request;
    request.set_topic("orders");
    request.add_messages()->set_value("v");
    return request;
  }

  backend::FakeCluster a_{"a"};
  backend::FakeCluster b_{"b"};
  routing::RouteTable routes_;
  metrics::Registry registry_;
  routing::ClusterBreakers breakers_;
  InflightLimiter limiter_{1 << 20};
  WriteHold hold_;
  BatchPublisher publisher_;
  absl::Notification answered;
  // The publisher's until `answered`.
  TestBatch sent{OneMessage()};
};

// A batch published while its topic is held waits, and once released goes to
// the write cluster the route names then (a migration moved it meanwhile).
// The clusters complete publishes inline, so a lock held across the publish
// would deadlock here.
TEST(WriteHold, AHeldBatchIsRoutedAfreshWhenReleased) {
  HeldPublishPath path;
  path.hold_.Set("orders", true, 5);
  path.Publish();
  EXPECT_FALSE(path.answered.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  path.routes_.Swap(HeldPublishPath::RouteTo("b"));
  path.hold_.Set("orders", false, 6);
  ASSERT_TRUE(path.answered.WaitForNotificationWithTimeout(kWait));
  const v1::PublishResponse response = path.sent.Response();
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).status().code(), 0);
  EXPECT_EQ(response.results(0).cluster(), "b");
  EXPECT_TRUE(path.a_.published().empty());
  EXPECT_EQ(path.b_.published().size(), 1u);
  EXPECT_EQ(path.limiter_.in_use(), 0);
  EXPECT_EQ(path.hold_.OldestUnsettled(), std::nullopt);
}

TEST(WriteHold, AHeldBatchFailsRetryableUnavailableAtThePublishTimeout) {
  config::PublishConfig limits;
  limits.timeout = absl::Milliseconds(200);
  HeldPublishPath path(limits);
  path.hold_.Set("orders", true, 1);
  path.Publish();
  ASSERT_TRUE(path.answered.WaitForNotificationWithTimeout(kWait));
  const v1::PublishResponse response = path.sent.Response();
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).status().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(response.results(0).status().retryable());
  EXPECT_TRUE(path.a_.published().empty());
  EXPECT_EQ(path.limiter_.in_use(), 0);
}

}  // namespace
}  // namespace ferry::publish
