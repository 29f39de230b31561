#include "settings_follower.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ferry::client::internal {
namespace {

using std::chrono::milliseconds;
using TimePoint = FetchSchedule::TimePoint;

// Answers every GetClientConfig inline, before GetClientConfig returns, with
// the status and settings it holds now: a follower that held its own lock
// across the call would deadlock on the first fetch.
class InlineSource : public ConfigSource {
 public:
  explicit InlineSource(std::size_t endpoints) : endpoints_(endpoints) {}

  std::size_t endpoints() const override { return endpoints_; }

  void GetClientConfig(std::size_t endpoint, const ferry::v1::GetClientConfigRequest&,
                       milliseconds, Done done) override {
    grpc::Status status;
    ferry::v1::GetClientConfigResponse response;
    {
      absl::MutexLock lock(&mu_);
      asked_.push_back(endpoint);
      status = endpoint < statuses_.size() ? statuses_[endpoint] : grpc::Status::OK;
      response.mutable_settings()->set_max_batch_messages(max_batch_messages_);
      response.mutable_refresh_interval()->set_seconds(refresh_seconds_);
    }
    done(status, response);
  }

  void Set(std::vector<grpc::Status> statuses, int64_t max_batch_messages,
           int64_t refresh_seconds = 60) {
    absl::MutexLock lock(&mu_);
    statuses_ = std::move(statuses);
    max_batch_messages_ = max_batch_messages;
    refresh_seconds_ = refresh_seconds;
  }
  std::vector<std::size_t> asked() const {
    absl::MutexLock lock(&mu_);
    return asked_;
  }

 private:
  const std::size_t endpoints_;
  mutable absl::Mutex mu_;
  std::vector<grpc::Status> statuses_ ABSL_GUARDED_BY(mu_);
  int64_t max_batch_messages_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t refresh_seconds_ ABSL_GUARDED_BY(mu_) = 60;
  std::vector<std::size_t> asked_ ABSL_GUARDED_BY(mu_);
};

// What the follower applied, behind a lock of its own as a publisher's.
class Applied {
 public:
  SettingsFollower::Apply Callback() {
    return [this](const PushedSettings& pushed) {
      absl::MutexLock lock(&mu_);
      values_.push_back(pushed.max_batch_messages.value_or(0));
    };
  }
  // Waits until `count` settings were applied; returns the last one (-1 on
  // timeout).
  int WaitFor(std::size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return values_.size() >= count;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5))) return -1;
    return values_.back();
  }
  std::size_t count() {
    absl::MutexLock lock(&mu_);
    return values_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<int> values_ ABSL_GUARDED_BY(mu_);
};

const grpc::Status kUnavailable(grpc::StatusCode::UNAVAILABLE, "connection refused");

TEST(FetchSchedule, FetchesAtOnceThenAfterRefreshOrRetry) {
  FetchSchedule schedule({.retry = milliseconds(1000), .min_gap = milliseconds(500)});
  const TimePoint t0{std::chrono::seconds(100)};
  EXPECT_LE(schedule.next(), t0);  // at once
  schedule.Answered(t0, milliseconds(30'000));
  EXPECT_EQ(schedule.next(), t0 + milliseconds(30'000));
  schedule.NoAnswer(t0 + milliseconds(30'000));
  EXPECT_EQ(schedule.next(), t0 + milliseconds(31'000));
}

TEST(FetchSchedule, AReconnectFetchesSoonButNotTwiceWithinTheGap) {
  FetchSchedule schedule({.retry = milliseconds(1000), .min_gap = milliseconds(500)});
  const TimePoint t0{std::chrono::seconds(100)};
  schedule.Answered(t0, milliseconds(30'000));
  schedule.Reconnected(t0 + milliseconds(100));  // within the gap: at its end
  EXPECT_EQ(schedule.next(), t0 + milliseconds(500));
  schedule.Answered(t0 + milliseconds(500), milliseconds(30'000));
  schedule.Reconnected(t0 + milliseconds(2000));  // after the gap: at once
  EXPECT_EQ(schedule.next(), t0 + milliseconds(2000));
  schedule.Answered(t0 + milliseconds(2000), milliseconds(100));
  schedule.Reconnected(t0 + milliseconds(2050));  // never later than planned
  EXPECT_EQ(schedule.next(), t0 + milliseconds(2100));
}

TEST(SettingsFollower, AppliesWhatASourceAnsweringInlineHandsOut) {
  auto source = std::make_unique<InlineSource>(1);
  source->Set({}, 7);
  Applied applied;
  SettingsFollower follower(std::move(source), "test", applied.Callback());
  EXPECT_EQ(applied.WaitFor(1), 7);
  EXPECT_TRUE(follower.fetched());
}

TEST(SettingsFollower, AsksTheNextNodeWhenOneDoesNotAnswerAndRefreshesAfterTheInterval) {
  auto owned = std::make_unique<InlineSource>(2);
  InlineSource* source = owned.get();
  source->Set({kUnavailable, grpc::Status::OK}, 7, /*refresh_seconds=*/1);
  Applied applied;
  SettingsFollower follower(std::move(owned), "test", applied.Callback(),
                            {.retry = milliseconds(50), .min_gap = milliseconds(50)});
  EXPECT_EQ(applied.WaitFor(1), 7);
  EXPECT_EQ(source->asked(), (std::vector<std::size_t>{0, 1}));
  source->Set({}, 9, 1);
  EXPECT_EQ(applied.WaitFor(2), 9);  // the next refresh, a second later
}

TEST(SettingsFollower, RetriesSoonWhileNoNodeAnswersAndFollowsWhenOneReturns) {
  auto owned = std::make_unique<InlineSource>(1);
  InlineSource* source = owned.get();
  source->Set({kUnavailable}, 7);
  Applied applied;
  SettingsFollower follower(std::move(owned), "test", applied.Callback(),
                            {.retry = milliseconds(50), .min_gap = milliseconds(50)});
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_GE(source->asked().size(), 3u);  // every 50 ms
  EXPECT_EQ(applied.count(), 0u);
  EXPECT_FALSE(follower.fetched());
  source->Set({}, 7);
  EXPECT_EQ(applied.WaitFor(1), 7);
}

TEST(SettingsFollower, AReconnectFetchesBeforeTheRefreshInterval) {
  auto owned = std::make_unique<InlineSource>(1);
  InlineSource* source = owned.get();
  source->Set({}, 7, /*refresh_seconds=*/60);
  Applied applied;
  SettingsFollower follower(std::move(owned), "test", applied.Callback(),
                            {.retry = milliseconds(50), .min_gap = milliseconds(50)});
  EXPECT_EQ(applied.WaitFor(1), 7);
  source->Set({}, 11, 60);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(applied.count(), 1u);  // the refresh is a minute away
  follower.NodeReconnected();
  EXPECT_EQ(applied.WaitFor(2), 11);
}

TEST(SettingsFollower, AnOlderNodeLeavesTheSettingsAloneAndIsNotAskedInALoop) {
  auto owned = std::make_unique<InlineSource>(2);
  InlineSource* source = owned.get();
  source->Set({grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method")}, 7);
  Applied applied;
  SettingsFollower follower(std::move(owned), "test", applied.Callback(),
                            {.retry = milliseconds(50), .min_gap = milliseconds(50)});
  std::this_thread::sleep_for(milliseconds(300));
  // UNIMPLEMENTED is an answer: the second node is not asked, nothing is
  // applied, and the next round waits for the default refresh (30 s).
  EXPECT_EQ(source->asked(), (std::vector<std::size_t>{0}));
  EXPECT_EQ(applied.count(), 0u);
  EXPECT_FALSE(follower.fetched());
}

}  // namespace
}  // namespace ferry::client::internal
