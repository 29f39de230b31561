// A migration stage whose target refuses partition scans (three abandoned
// readers of it still closing): the stage retries the translation within
// mirror_timeout, then fails saying so, the groups left paused. A rollback
// whose translation inside the write hold never finishes ends at the hold's
// bound. Fake clusters for the migration (their partition scans never end
// before their deadline), the embedded store for the control topic.
#include "admin/migration_operations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "backend/embedded/embedded_cluster.h"
#include "backend/fake_cluster.h"
#include "backend/member_leave.h"
#include "backend/scan_test_support.h"
#include "testing/test_dir.h"

namespace ferry::admin {
namespace {

using backend::CommittedCluster;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(30);

// A CommittedCluster whose committed offsets, once slowed, answer only after
// `delay` (a coordinator that does not answer within the admin timeout).
// Asked with a shorter bound, they fail 1 ms before it, as librdkafka's
// calls do (milliseconds rounded down, a back-off given up early): with
// DEADLINE_EXCEEDED, or UNAVAILABLE for a silent broker (its _TRANSPORT).
// It counts commits asked.
class SlowOffsetsCluster final : public CommittedCluster {
 public:
  using CommittedCluster::CommittedCluster;
  void SlowDown(absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    delay_ = delay;
  }
  void FailCutRequestsWith(absl::StatusCode code) {
    absl::MutexLock lock(&mu_);
    cut_code_ = code;
  }
  int commits() const {
    absl::MutexLock lock(&mu_);
    return commits_;
  }
  absl::StatusOr<std::map<backend::TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics) override {
    return CommittedOffsetsWithin(group, topics, absl::InfiniteDuration());
  }
  absl::StatusOr<std::map<backend::TopicPartition, int64_t>> CommittedOffsetsWithin(
      const std::string& group, const std::vector<std::string>& topics,
      absl::Duration timeout) override {
    absl::Duration delay;
    absl::StatusCode cut_code;
    {
      absl::MutexLock lock(&mu_);
      delay = delay_;
      cut_code = cut_code_;
    }
    if (timeout < delay) {
      absl::SleepFor(timeout - absl::Milliseconds(1));
      return absl::Status(
          cut_code,
          "committed offsets of group " + group + " on " + name() + ": " +
              (cut_code == absl::StatusCode::kUnavailable ? "broker transport failure"
                                                          : "timed out"));
    }
    absl::SleepFor(delay);
    return CommittedCluster::CommittedOffsets(group, topics);
  }
  absl::Status AlterCommittedOffsets(
      const std::string& group,
      const std::map<backend::TopicPartition, int64_t>& offsets) override {
    {
      absl::MutexLock lock(&mu_);
      ++commits_;
    }
    return CommittedCluster::AlterCommittedOffsets(group, offsets);
  }

 private:
  mutable absl::Mutex mu_;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  absl::StatusCode cut_code_ ABSL_GUARDED_BY(mu_) = absl::StatusCode::kDeadlineExceeded;
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
};

class CaughtUpListener final : public control::ControlListener {
 public:
  void OnPaused(const std::string&, bool) override {}
  std::set<backend::TopicPartition> OnSeek(const control::SeekCommand&) override {
    return {};
  }
  void OnCaughtUp() override { caught_up_.Notify(); }
  bool WaitCaughtUp() { return caught_up_.WaitForNotificationWithTimeout(kWait); }
  void OnWriteHold(const std::string&, bool held, int64_t) override {
    absl::MutexLock lock(&mu_);
    (held ? held_at_ : released_at_) = absl::Now();
    if (held && slowed_when_held_ != nullptr) slowed_when_held_->SlowDown(kSlowOffsets);
  }
  // Committed offsets of `cluster` answer after kSlowOffsets from the write
  // hold on (before it the early translation and its checks read them).
  void SlowOffsetsWhenHeld(SlowOffsetsCluster* cluster) {
    absl::MutexLock lock(&mu_);
    slowed_when_held_ = cluster;
  }
  static constexpr absl::Duration kSlowOffsets = absl::Seconds(4);
  // How long the last write hold lasted as this node read it; nullopt while
  // none was held and released.
  std::optional<absl::Duration> LastHold() const {
    absl::MutexLock lock(&mu_);
    if (!held_at_ || !released_at_ || *released_at_ < *held_at_) return std::nullopt;
    return *released_at_ - *held_at_;
  }

 private:
  absl::Notification caught_up_;
  mutable absl::Mutex mu_;
  std::optional<absl::Time> held_at_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> released_at_ ABSL_GUARDED_BY(mu_);
  SlowOffsetsCluster* slowed_when_held_ ABSL_GUARDED_BY(mu_) = nullptr;
};

class MigrationOperationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = backend::embedded::EmbeddedCluster::Open("ctl", {.path = dir_.path()});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    control_ = std::make_unique<control::ControlPlane>(
        store_.get(),
        control::ControlPlane::Options{.node_id = "n1",
                                       .heartbeat_interval = absl::Milliseconds(100)},
        &listener_);
    ASSERT_TRUE(listener_.WaitCaughtUp());
    source_.AddTopic("orders", 1);
    target_.AddTopic("orders", 1);
  }
  void TearDown() override {
    control_.reset();
    EXPECT_TRUE(backend::AwaitNoMembersLeaving(kWait));
  }

  ::ferry::testing::TestDir dir_;
  std::unique_ptr<backend::embedded::EmbeddedCluster> store_;
  CaughtUpListener listener_;
  std::unique_ptr<control::ControlPlane> control_;
  SlowOffsetsCluster source_{"a"};
  CommittedCluster target_{"b"};
  routing::RouteTable routes_{std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{
          {.topic = "orders", .write = {"a"}, .read = {"a"}}},
      std::vector<std::string>{"a", "b"})};

  MigrationOperations Operations() {
    return MigrationOperations(clusters_, &routes_, control_.get(), &mirrors_,
                               {.barrier_timeout = absl::Seconds(10),
                                .mirror_timeout = absl::Seconds(1),
                                .settle = absl::Milliseconds(100)});
  }
  void PutMigration(std::string stage, std::vector<std::string> groups) {
    control::MigrationState state{.topic = "orders",
                                  .from = "a",
                                  .to = "b",
                                  .stage = std::move(stage),
                                  .groups = std::move(groups)};
    ASSERT_TRUE(control_->PutMigration(state).ok());
  }

  const std::map<std::string, backend::Cluster*> clusters_ = {{"a", &source_},
                                                              {"b", &target_}};
  MirrorOperations mirrors_{clusters_, nullptr, nullptr};

  // A rollback of writes (the topic on B), its translation back inside a
  // write hold of `max_write_hold`, an attempt reading `translate_timeout`.
  absl::StatusOr<v1::Migration> RollbackOfWrites(absl::Duration max_write_hold,
                                                 absl::Duration translate_timeout) {
    routes_.Swap(std::make_shared<const routing::Router>(
        std::vector<config::RouteConfig>{
            {.topic = "orders", .write = {"b"}, .read = {"b"}}},
        std::vector<std::string>{"a", "b"}));
    MirrorOperations mirrors(clusters_, control_.get(), nullptr);
    MigrationOperations operations(clusters_, &routes_, control_.get(), &mirrors,
                                   {.barrier_timeout = absl::Seconds(10),
                                    .mirror_timeout = absl::Seconds(10),
                                    .settle = absl::Milliseconds(100),
                                    .max_write_hold = max_write_hold,
                                    .translate_timeout = translate_timeout});
    PutMigration("producers", {"g"});
    absl::StatusOr<v1::Migration> rolled_back = operations.Rollback("orders");
    // As RollbackWrites documents: the hold released, the groups resumed.
    EXPECT_FALSE(control_->IsPaused("g"));
    absl::StatusOr<v1::Migration> now = operations.Get("orders");
    EXPECT_TRUE(now.ok()) << now.status();
    if (now.ok()) {
      EXPECT_EQ(now->stage(), "rollback-held");
    }
    return rolled_back;
  }
};

// Before, the consumer stage failed at the first refused scan; now it
// retries until mirror_timeout, then says for how long scans were refused
// and that the groups stay paused (they do), the stage where it was.
TEST_F(MigrationOperationsTest, TheConsumerStageRetriesRefusedScansUntilItsBound) {
  MigrationOperations operations = Operations();
  PutMigration("mirroring", {});
  backend::LeaveHold hold(target_, absl::Seconds(20));
  backend::AbandonThreeReaders(target_, "orders");

  absl::StatusOr<v1::Migration> advanced = operations.Advance("orders", "consumers");
  EXPECT_EQ(advanced.status().code(), absl::StatusCode::kUnavailable)
      << advanced.status();
  EXPECT_THAT(std::string(advanced.status().message()),
              AllOf(HasSubstr("group g: partition scans refused for"),
                    HasSubstr("3 readers are closing past their bound"),
                    HasSubstr("run the stage again (the groups stay paused)")));
  EXPECT_TRUE(control_->IsPaused("g"));
  absl::StatusOr<v1::Migration> now = operations.Get("orders");
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->stage(), "consumers-paused");
}

// The same for a rollback while the groups read B: the translation back
// retries, then the rollback fails with the groups paused.
TEST_F(MigrationOperationsTest, ARollbackOfReadsRetriesRefusedScansUntilItsBound) {
  routes_.Swap(std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{
          {.topic = "orders", .write = {"a"}, .read = {"b"}}},
      std::vector<std::string>{"a", "b"}));
  MigrationOperations operations = Operations();
  PutMigration("consumers", {"g"});
  backend::LeaveHold hold(target_, absl::Seconds(20));
  backend::AbandonThreeReaders(target_, "orders");

  absl::StatusOr<v1::Migration> rolled_back = operations.Rollback("orders");
  EXPECT_EQ(rolled_back.status().code(), absl::StatusCode::kUnavailable)
      << rolled_back.status();
  EXPECT_THAT(std::string(rolled_back.status().message()),
              AllOf(HasSubstr("group g: partition scans refused for"),
                    HasSubstr("run rollback again (the groups stay paused)")));
  EXPECT_TRUE(control_->IsPaused("g"));
  absl::StatusOr<v1::Migration> now = operations.Get("orders");
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->stage(), "rollback-paused");
}

// Before, one translation attempt inside the write hold read for its whole
// timeout (30 s by default; 8 s here), past the hold's bound (hold start +
// max_write_hold - 5 s: 5 s here), and only the retries stopped there.
// Now the attempt's reads end at the bound: the rollback fails saying so.
TEST_F(MigrationOperationsTest, ATranslationInsideTheWriteHoldEndsAtTheHoldsBound) {
  absl::StatusOr<v1::Migration> rolled_back =
      RollbackOfWrites(absl::Seconds(10), absl::Seconds(8));
  EXPECT_EQ(rolled_back.status().code(), absl::StatusCode::kDeadlineExceeded)
      << rolled_back.status();
  EXPECT_THAT(
      std::string(rolled_back.status().message()),
      AllOf(HasSubstr("group g: translating its offsets back reached the write hold's "
                      "bound (migration.max_write_hold 10s less 5s to release it)"),
            HasSubstr("run rollback again (the write hold was released and the groups "
                      "resumed)")));
  std::optional<absl::Duration> hold = listener_.LastHold();
  ASSERT_TRUE(hold.has_value()) << "the hold was not released";
  // The bound (5 s), then the release; the attempt's 8 s would pass it.
  EXPECT_LT(*hold, absl::Seconds(7));
}

// Before, the attempt's offset requests inside the hold were bounded by the
// admin timeout only: A's committed offsets answering after 4 s held writes
// for 4 s, past the bound (2 s: a 4 s hold less half of it). Now they end at
// the bound too, with the hold's error and the request's cause; nothing is
// committed on A. The request fails 1 ms before the bound (as librdkafka's
// do), and as DEADLINE_EXCEEDED or UNAVAILABLE: both are the hold's error,
// which before needed DEADLINE_EXCEEDED at or after the bound.
class OffsetRequestInsideTheWriteHoldTest
    : public MigrationOperationsTest,
      public ::testing::WithParamInterface<std::pair<absl::StatusCode, const char*>> {};

TEST_P(OffsetRequestInsideTheWriteHoldTest, EndsAtTheHoldsBoundWithItsError) {
  const auto& [code, cause] = GetParam();
  source_.FailCutRequestsWith(code);
  listener_.SlowOffsetsWhenHeld(&source_);
  absl::StatusOr<v1::Migration> rolled_back =
      RollbackOfWrites(absl::Seconds(4), absl::Seconds(3));
  EXPECT_EQ(rolled_back.status().code(), absl::StatusCode::kDeadlineExceeded)
      << rolled_back.status();
  EXPECT_THAT(std::string(rolled_back.status().message()),
              AllOf(HasSubstr("group g: translating its offsets back reached the write "
                              "hold's bound (migration.max_write_hold 4s less 2s"),
                    HasSubstr(std::string("committed offsets of group g on a: ") + cause),
                    HasSubstr("the write hold was released and the groups resumed")));
  std::optional<absl::Duration> hold = listener_.LastHold();
  ASSERT_TRUE(hold.has_value()) << "the hold was not released";
  EXPECT_LT(*hold, absl::Seconds(3));
  EXPECT_EQ(source_.commits(), 0);
}

INSTANTIATE_TEST_SUITE_P(Causes, OffsetRequestInsideTheWriteHoldTest,
                         ::testing::Values(std::pair(absl::StatusCode::kDeadlineExceeded,
                                                     "timed out"),
                                           std::pair(absl::StatusCode::kUnavailable,
                                                     "broker transport failure")),
                         [](const auto& info) {
                           return info.param.first == absl::StatusCode::kUnavailable
                                      ? "Unavailable"
                                      : "DeadlineExceeded";
                         });

// Before, a hold of 5 s or less (the key allows 1 s) had its bound (start +
// hold - 5 s) already past: no translation was ever tried. Now the margin
// is half such a hold: the attempt reads until the bound (1 s here).
TEST_F(MigrationOperationsTest, AShortWriteHoldStillTriesTheTranslation) {
  absl::StatusOr<v1::Migration> rolled_back =
      RollbackOfWrites(absl::Seconds(2), absl::Seconds(4));
  EXPECT_EQ(rolled_back.status().code(), absl::StatusCode::kDeadlineExceeded)
      << rolled_back.status();
  EXPECT_THAT(std::string(rolled_back.status().message()),
              AllOf(HasSubstr("(migration.max_write_hold 2s less 1s to release it)"),
                    Not(HasSubstr("no time left to read"))));
  std::optional<absl::Duration> hold = listener_.LastHold();
  ASSERT_TRUE(hold.has_value()) << "the hold was not released";
  EXPECT_GE(*hold, absl::Milliseconds(900));
  EXPECT_LT(*hold, absl::Seconds(3));
}

// Before, the bound passing during the back-off after refused scans made
// the error say "last: no time left to read"; now it keeps the real cause.
TEST_F(MigrationOperationsTest, ABoundReachedWhileScansAreRefusedKeepsTheirCause) {
  backend::LeaveHold leave_hold(target_, absl::Seconds(20));
  backend::AbandonThreeReaders(target_, "orders");
  absl::StatusOr<v1::Migration> rolled_back =
      RollbackOfWrites(absl::Seconds(2), absl::Seconds(4));
  EXPECT_EQ(rolled_back.status().code(), absl::StatusCode::kDeadlineExceeded)
      << rolled_back.status();
  EXPECT_THAT(std::string(rolled_back.status().message()),
              AllOf(HasSubstr("reached the write hold's bound"),
                    HasSubstr("3 readers are closing past their bound"),
                    Not(HasSubstr("no time left to read"))));
}

}  // namespace
}  // namespace ferry::admin
