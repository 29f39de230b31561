#include "publish/topic_auto_creator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "publish/admin_only_cluster.h"

namespace ferry::publish {
namespace {

using ::testing::_;
using ::testing::Invoke;
using ::testing::Return;

// Collects callback results from any thread.
class Results {
 public:
  std::function<void(absl::Status)> Add() {
    return [this](absl::Status status) {
      absl::MutexLock lock(&mu_);
      statuses_.push_back(std::move(status));
    };
  }
  std::vector<absl::Status> WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return statuses_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return statuses_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
};

// True once `topic` is known to exist: EnsureExists then answers OK on the
// caller's thread before returning. The worker marks a topic known only after
// its last waiter returned, so this polls briefly. Callbacks that were queued
// instead run later on the worker; they own what they touch.
bool BecomesKnown(TopicAutoCreator& creator, backend::Cluster* cluster,
                  const std::string& topic) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto inline_ok = std::make_shared<std::atomic<int>>(0);
    const std::thread::id caller = std::this_thread::get_id();
    creator.EnsureExists(cluster, topic, [inline_ok, caller](absl::Status s) {
      if (s.ok() && std::this_thread::get_id() == caller) inline_ok->store(1);
    });
    if (inline_ok->load() == 1) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

// After a failed lookup whose callbacks were answered: true once a caller
// gets OK from a new lookup. The worker forgets the failed lookup only after
// its last callback returned, and a caller arriving before that gets the
// same failure, so this polls briefly.
bool AsksAgainAndSucceeds(TopicAutoCreator& creator, backend::Cluster* cluster,
                          const std::string& topic) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Results again;
    creator.EnsureExists(cluster, topic, again.Add());
    auto statuses = again.WaitFor(1);
    if (statuses.size() != 1) return false;
    if (statuses[0].ok()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

TEST(TopicAutoCreator, CallersOfOneMissingTopicShareOneLookupAndCreation) {
  AdminOnlyCluster cluster("a");
  absl::Notification release;
  EXPECT_CALL(cluster, DescribeTopic("orders")).WillOnce(Invoke([&](const std::string&) {
    release.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(absl::NotFoundError("no such topic"));
  }));
  EXPECT_CALL(cluster, CreateTopic("orders", -1, -1, _))
      .WillOnce(Return(absl::OkStatus()));
  Results results;
  TopicAutoCreator creator;
  for (int i = 0; i < 10; ++i) creator.EnsureExists(&cluster, "orders", results.Add());
  release.Notify();
  auto statuses = results.WaitFor(10);
  ASSERT_EQ(statuses.size(), 10u);
  for (const auto& status : statuses) EXPECT_TRUE(status.ok()) << status;

  // Known from now on (no second lookup): answered at once, on the caller's
  // thread.
  EXPECT_TRUE(BecomesKnown(creator, &cluster, "orders"));
}

TEST(TopicAutoCreator, AnUnreachableClusterDelaysOnlyItsOwnTopics) {
  AdminOnlyCluster down("down"), up("up");
  absl::Notification release;
  EXPECT_CALL(down, DescribeTopic("t")).WillOnce(Invoke([&](const std::string&) {
    release.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(absl::UnavailableError("timed out"));
  }));
  EXPECT_CALL(up, DescribeTopic("t"))
      .WillOnce(Return(absl::StatusOr<backend::TopicInfo>(backend::TopicInfo{})));
  Results slow, fast;
  TopicAutoCreator creator;
  creator.EnsureExists(&down, "t", slow.Add());
  creator.EnsureExists(&up, "t", fast.Add());
  auto statuses = fast.WaitFor(1);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_TRUE(statuses[0].ok());
  release.Notify();
  statuses = slow.WaitFor(1);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable);

  // A failed lookup is not remembered: the next caller asks again.
  EXPECT_CALL(down, DescribeTopic("t"))
      .WillOnce(Return(absl::StatusOr<backend::TopicInfo>(backend::TopicInfo{})));
  EXPECT_TRUE(AsksAgainAndSucceeds(creator, &down, "t"));
}

// Records the order callbacks ran in, from any thread.
class Order {
 public:
  void Ran(int which) {
    absl::MutexLock lock(&mu_);
    order_.push_back(which);
  }
  std::vector<int> WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return order_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return order_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> order_ ABSL_GUARDED_BY(mu_);
};

// PublishStream relies on this: a batch that asks after an earlier batch of
// the same topic is dispatched after it, even when it asks while the earlier
// batch's callback is still running on the worker.
TEST(TopicAutoCreator, ALaterCallerRunsOnlyAfterEveryEarlierWaiter) {
  AdminOnlyCluster cluster("a");
  absl::Notification release_lookup;
  EXPECT_CALL(cluster, DescribeTopic("orders")).WillOnce(Invoke([&](const std::string&) {
    release_lookup.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(absl::NotFoundError("no such topic"));
  }));
  EXPECT_CALL(cluster, CreateTopic("orders", -1, -1, _))
      .WillOnce(Return(absl::OkStatus()));
  Order order;
  absl::Notification first_running, first_may_return;
  TopicAutoCreator creator;
  // Given two callers waiting for a topic being created,
  creator.EnsureExists(&cluster, "orders", [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    order.Ran(1);
    first_running.Notify();
    first_may_return.WaitForNotification();
  });
  creator.EnsureExists(&cluster, "orders", [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    order.Ran(2);
  });
  release_lookup.Notify();
  // when a third one asks while the first callback is still running,
  first_running.WaitForNotification();
  creator.EnsureExists(&cluster, "orders", [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    order.Ran(3);
  });
  first_may_return.Notify();
  // then it runs after both, not at once on its own thread.
  EXPECT_THAT(order.WaitFor(3), ::testing::ElementsAre(1, 2, 3));

  // Once every waiter ran the topic is known (no second lookup).
  EXPECT_TRUE(BecomesKnown(creator, &cluster, "orders"));
}

// A failed lookup answers everyone who asked before its waiters finished
// with the same failure: a later batch must not be written (after a fresh
// lookup) while an earlier one is still being failed, or the client's retry
// of the earlier one would land behind it.
TEST(TopicAutoCreator, CallersArrivingWhileAFailureIsAnsweredGetTheSameFailure) {
  AdminOnlyCluster cluster("a");
  absl::Notification release_lookup;
  EXPECT_CALL(cluster, DescribeTopic("orders")).WillOnce(Invoke([&](const std::string&) {
    release_lookup.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(absl::UnavailableError("timed out"));
  }));
  Order order;
  absl::Notification first_running, first_may_return;
  TopicAutoCreator creator;
  creator.EnsureExists(&cluster, "orders", [&](absl::Status s) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    order.Ran(1);
    first_running.Notify();
    first_may_return.WaitForNotification();
  });
  release_lookup.Notify();
  first_running.WaitForNotification();
  creator.EnsureExists(&cluster, "orders", [&](absl::Status s) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    order.Ran(2);
  });
  first_may_return.Notify();
  EXPECT_THAT(order.WaitFor(2), ::testing::ElementsAre(1, 2));

  // The failure is not remembered: the next caller asks again.
  EXPECT_CALL(cluster, DescribeTopic("orders"))
      .WillOnce(Return(absl::StatusOr<backend::TopicInfo>(backend::TopicInfo{})));
  EXPECT_TRUE(AsksAgainAndSucceeds(creator, &cluster, "orders"));
}

TEST(TopicAutoCreator, ShutdownAnswersWaitersUnavailable) {
  AdminOnlyCluster cluster("a");
  absl::Notification entered, release;
  EXPECT_CALL(cluster, DescribeTopic("first")).WillOnce(Invoke([&](const std::string&) {
    entered.Notify();
    release.WaitForNotification();
    return absl::StatusOr<backend::TopicInfo>(backend::TopicInfo{});
  }));
  Results results;
  {
    TopicAutoCreator creator;
    creator.EnsureExists(&cluster, "first", results.Add());
    entered.WaitForNotification();
    creator.EnsureExists(&cluster, "second", results.Add());  // queued behind
    std::thread releaser([&] {
      absl::SleepFor(absl::Milliseconds(50));
      release.Notify();
    });
    // The destructor waits for the lookup in progress, never starts "second".
    releaser.detach();
  }
  auto statuses = results.WaitFor(2);
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ferry::publish
