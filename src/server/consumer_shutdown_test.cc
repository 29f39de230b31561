// The end of a node's shutdown on fake clusters whose members hang while
// leaving: the control topic's reader, a mirror job's member and a group's
// member all stuck.
#include "server/consumer_shutdown.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <functional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "backend/fake_cluster.h"
#include "backend/member_leave.h"
#include "server/consumer_metrics.h"

namespace ferry::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kLeaveTimeout = absl::Seconds(1);
constexpr absl::Duration kWait = absl::Seconds(10);

class IgnoringControlListener final : public control::ControlListener {
 public:
  void OnPaused(const std::string&, bool) override {}
  std::set<backend::TopicPartition> OnSeek(const control::SeekCommand&) override {
    return {};
  }
  void OnCaughtUp() override {}
};

class NullSink final : public subscribe::StreamSink {
 public:
  void Send(subscribe::SerializedResponse) override {}
};

class ConsumerShutdownTest : public ::testing::Test {
 protected:
  ConsumerShutdownTest() {
    auto stuck = std::make_unique<backend::FakeCluster>("stuck");
    auto target = std::make_unique<backend::FakeCluster>("target");
    stuck_ = stuck.get();
    stuck_->AddTopic("orders", 1);
    target->AddTopic("orders", 1);
    by_name_ = {{"stuck", stuck_}, {"target", target.get()}};
    clusters_.push_back(std::move(stuck));
    clusters_.push_back(std::move(target));
  }

  // The control topic's reader, mirror job "move" (stuck -> target) and
  // group "g", each with a member on `stuck_`.
  Consumers Start() {
    Consumers consumers;
    consumers.control = std::make_unique<control::ControlPlane>(
        stuck_,
        control::ControlPlane::Options{.node_id = "n1", .leave_timeout = kLeaveTimeout},
        &control_listener_);
    EXPECT_TRUE(stuck_->AwaitMembers("__ferry_control.n1", 1, kWait));
    consumers.mirrors = std::make_unique<mirror::MirrorRunner>(
        by_name_,
        mirror::MirrorJob::Options{.node_id = "n1", .leave_timeout = kLeaveTimeout},
        &metrics_);
    consumers.mirrors->SetJobs(
        {{.name = "move", .source = "stuck", .target = "target", .topics = {"orders"}}});
    EXPECT_TRUE(stuck_->AwaitMembers(mirror::MirrorGroup("move"), 1, kWait));
    config::SubscribeConfig subscribe;
    subscribe.leave_timeout = kLeaveTimeout;
    consumers.groups = std::make_unique<subscribe::GroupRegistry>(
        "n1", subscribe, &router_,
        std::map<std::string, backend::Cluster*>{{"stuck", stuck_}}, &metrics_);
    consumers.groups->OnCaughtUp();
    subscribe::OpenRequest request;
    request.group.group = "g";
    request.stream.topics = {"orders"};
    request.stream.ack_deadline = absl::Seconds(30);
    request.clusters = {stuck_};
    auto attached = consumers.groups->Attach(request, 1, std::make_shared<NullSink>());
    EXPECT_TRUE(attached.ok()) << attached.status();
    EXPECT_TRUE(stuck_->AwaitMembers("g", 1, kWait));
    return consumers;
  }

  std::vector<std::unique_ptr<backend::Cluster>> clusters_;
  backend::FakeCluster* stuck_ = nullptr;
  std::map<std::string, backend::Cluster*> by_name_;
  IgnoringControlListener control_listener_;
  routing::RouteTable router_{std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{
          {.topic = "*", .write = {"stuck"}, .read = {"stuck"}}},
      std::vector<std::string>{"stuck", "target"})};
  metrics::Registry metrics_;
};

// Before, the control topic's reader, the mirror jobs and the groups each
// waited their own leave_timeout, one step after the other (30 s and more
// with the defaults, past the node's watchdog). Now one deadline bounds them
// all, and the two later steps get their floor (min(leave_timeout, 2 s))
// beyond it. The stuck cluster is kept, not destroyed under its members
// (under ASan: no use after free when they are released); the other one is
// closed.
TEST_F(ConsumerShutdownTest, EveryStuckConsumerTogetherTakesOneLeaveTimeoutAndTwoFloors) {
  Consumers consumers = Start();
  const int kept_before = backend::ClustersKept();
  std::vector<std::string> stages;
  std::vector<std::string> kept;
  {
    backend::LeaveHold hold(*stuck_, absl::Seconds(8));
    const absl::Time start = absl::Now();
    kept = StopConsumersAndCloseClusters(
        std::move(consumers), nullptr, std::move(clusters_), kLeaveTimeout,
        [&stages](std::string stage) { stages.push_back(std::move(stage)); });
    const absl::Duration took = absl::Now() - start;
    const absl::Duration longest = kLeaveTimeout + 2 * backend::LeaveFloor(kLeaveTimeout);
    EXPECT_LT(took, longest + absl::Milliseconds(700));
    EXPECT_GE(took, longest - absl::Milliseconds(100));
    EXPECT_EQ(backend::MembersLeaving(stuck_), 3);
  }
  EXPECT_THAT(kept, ElementsAre("stuck"));
  EXPECT_EQ(backend::ClustersKept(), kept_before + 1);
  EXPECT_EQ(stages.back(), "closing clusters");
  // After shutdown, leaves get their own bound again.
  EXPECT_GT(backend::LeaveDeadline(absl::Hours(1)), absl::Now() + absl::Minutes(59));
}

// A cluster whose topic creations take `delay` each (a Kafka admin call
// against a stalled cluster takes admin_timeout, 30 s), counted in
// `creates`, which outlives the cluster (shutdown destroys it).
class SlowCreateCluster final : public backend::FakeCluster {
 public:
  SlowCreateCluster(std::string name, absl::Duration delay, std::atomic<int>* creates)
      : FakeCluster(std::move(name)), delay_(delay), creates_(creates) {}
  absl::Status CreateTopic(const std::string& topic, int partitions, int replication,
                           const std::map<std::string, std::string>& configs) override {
    ++*creates_;
    absl::SleepFor(delay_);
    return FakeCluster::CreateTopic(topic, partitions, replication, configs);
  }

 private:
  const absl::Duration delay_;
  std::atomic<int>* const creates_;
};

// Captures what is logged through the default logger while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::ostringstream stream_;
  const std::shared_ptr<spdlog::logger> previous_;
};

constexpr absl::Duration kCreate = absl::Milliseconds(1500);

// Shuts down while two starts are in progress: the control plane creating
// its topic and a mirror job the first of its three topics, each creation
// taking kCreate. With a `grace`, draining begins first (CutStarts, as
// Server::Shutdown does) and lasts `grace`; then
// StopConsumersAndCloseClusters with `leave_timeout` and `stage`. Returns
// from when the shutdown began.
absl::Time StopDuringStarts(absl::Duration leave_timeout,
                            const std::function<void(std::string)>& stage,
                            absl::Duration grace = absl::ZeroDuration()) {
  std::atomic<int> creates = 0;
  auto owned_target = std::make_unique<SlowCreateCluster>("slow", kCreate, &creates);
  auto owned_source = std::make_unique<backend::FakeCluster>("source");
  SlowCreateCluster* target = owned_target.get();
  for (const char* topic : {"a", "b", "c"}) owned_source->AddTopic(topic, 1);
  const std::map<std::string, backend::Cluster*> by_name = {
      {"slow", target}, {"source", owned_source.get()}};
  std::vector<std::unique_ptr<backend::Cluster>> clusters;
  clusters.push_back(std::move(owned_target));
  clusters.push_back(std::move(owned_source));
  IgnoringControlListener control_listener;
  metrics::Registry metrics;
  Consumers consumers;
  consumers.control = std::make_unique<control::ControlPlane>(
      target,
      control::ControlPlane::Options{.node_id = "n1", .leave_timeout = kLeaveTimeout},
      &control_listener);
  consumers.mirrors = std::make_unique<mirror::MirrorRunner>(
      by_name,
      mirror::MirrorJob::Options{.node_id = "n1", .leave_timeout = kLeaveTimeout},
      &metrics);
  consumers.mirrors->SetJobs({{.name = "move",
                               .source = "source",
                               .target = "slow",
                               .topics = {"a", "b", "c"}}});
  const absl::Time until = absl::Now() + kWait;
  while (creates.load() < 2 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(creates.load(), 2) << "the control topic's and the job's first topic";
  const absl::Time start = absl::Now();
  if (grace > absl::ZeroDuration()) {
    CutStarts(consumers.control.get(), consumers.mirrors.get());
    absl::SleepFor(grace);
  }
  StopConsumersAndCloseClusters(std::move(consumers), nullptr, std::move(clusters),
                                leave_timeout, stage);
  EXPECT_EQ(creates.load(), 2) << "a creation started after the stop";
  return start;
}

// Before, shutdown joined the control plane's start, then waited for the
// job's whole start (three creations, 3 x the admin call, past the
// watchdog's margin, which counted none). Now both are told to stop first,
// and each start ends after its call in progress: one admin call in all.
TEST(ConsumerShutdown, StartsInProgressCostOneClusterCall) {
  CapturedLog log;
  const absl::Time start = StopDuringStarts(kLeaveTimeout, [](std::string) {});
  // 2x: the box is shared; the old code is caught by the creation count.
  EXPECT_LT(absl::Now() - start, 2 * kCreate);
  // A start cut by the shutdown is no failure to warn about.
  EXPECT_THAT(log.text(), ::testing::Not(::testing::HasSubstr("not running")));
}

// Before, the starts were cut only after the grace: the job began its
// second creation during it, and shutdown waited for that one past the
// grace (grace + a creation, and a third creation counted). Now they are
// cut when draining begins: the creation in progress ends during the grace,
// none begins, and shutdown is the grace long.
TEST(ConsumerShutdown, StartsInTheirCallWhenDrainingBeginsEndDuringTheGrace) {
  constexpr absl::Duration kGrace = absl::Seconds(2);
  static_assert(kGrace > kCreate);
  const absl::Time start = StopDuringStarts(
      kLeaveTimeout, [](std::string) {}, kGrace);
  // kGrace + kCreate: the box is shared; the old code is caught by the
  // creation count (a third one begun during the grace).
  EXPECT_LT(absl::Now() - start, kGrace + kCreate);
}

// The leaves' window opens once the starts ended: before, it opened first
// and the starts' cluster call used it up, leaving the mirror jobs and the
// groups only the floor (2 s).
TEST(ConsumerShutdown, TheLeavesWindowOpensAfterTheStartsEnded) {
  constexpr absl::Duration kWindow = absl::Seconds(5);
  absl::Time deadline = absl::InfinitePast();
  const absl::Time start =
      StopDuringStarts(kWindow, [&deadline](const std::string& stage) {
        if (stage.starts_with("stopping mirror jobs"))
          deadline = backend::LeaveDeadline(absl::Hours(1));
      });
  EXPECT_GE(deadline - start, kWindow + kCreate / 2);
}

// The value of `series` (name and labels) in `exposition`; -1 when absent.
double Sample(const std::string& exposition, const std::string& series) {
  const std::string line_start = "\n" + series + " ";
  const size_t at = exposition.find(line_start);
  if (at == std::string::npos) return -1;
  const size_t from = at + line_start.size();
  double value = -1;
  EXPECT_TRUE(absl::SimpleAtod(
      exposition.substr(from, exposition.find('\n', from) - from), &value));
  return value;
}

// One abandoned consumer, one count: before, a group's member was counted by
// ferry_subscribe_leaves_abandoned_total{cluster} and again by the gauge
// ferry_consumers_abandoned{kind="group"}. Now only the counter
// ferry_consumers_abandoned_total{kind,cluster} counts it, for every kind.
TEST_F(ConsumerShutdownTest, AnAbandonedConsumerIsCountedOnceByKindAndCluster) {
  RegisterConsumerMetrics(metrics_, {"stuck", "target"});
  const auto series = [](const std::string& kind, const std::string& cluster) {
    return "ferry_consumers_abandoned_total{cluster=\"" + cluster + "\",kind=\"" + kind +
           "\"}";
  };
  Consumers consumers = Start();
  const std::string before = metrics_.Render();
  EXPECT_THAT(before, HasSubstr("# TYPE ferry_consumers_abandoned_total counter\n"));
  {
    backend::LeaveHold hold(*stuck_, absl::Seconds(8));
    StopConsumersAndCloseClusters(std::move(consumers), nullptr, std::move(clusters_),
                                  kLeaveTimeout, [](std::string) {});
  }
  const std::string after = metrics_.Render();
  for (const std::string kind : {"control", "mirror", "group"}) {
    EXPECT_EQ(Sample(after, series(kind, "stuck")),
              Sample(before, series(kind, "stuck")) + 1)
        << kind;
  }
  EXPECT_EQ(Sample(after, series("scan", "stuck")),
            Sample(before, series("scan", "stuck")));
  // The healthy cluster's series is there and counts nothing of this
  // (process-wide counts: earlier tests may have counted on "target").
  EXPECT_GE(Sample(before, series("group", "target")), 0);
  EXPECT_EQ(Sample(after, series("group", "target")),
            Sample(before, series("group", "target")));
  EXPECT_THAT(after, Not(HasSubstr("leaves_abandoned")));
  EXPECT_THAT(after, Not(HasSubstr("ferry_consumers_abandoned{")));
}

// A cluster whose publishes take `delay` once armed: the control plane's
// departure record uses up the shutdown's leave window.
class SlowPublishCluster final : public backend::FakeCluster {
 public:
  using FakeCluster::FakeCluster;
  void SlowDown(absl::Duration delay) { delay_.store(delay); }
  void Publish(backend::Record record, backend::PublishCallback done) override {
    absl::SleepFor(delay_.load());
    FakeCluster::Publish(std::move(record), std::move(done));
  }

 private:
  std::atomic<absl::Duration> delay_{absl::ZeroDuration()};
};

// An earlier step (here the departure record, slow but finishing) that
// uses up the one leave deadline does not cut the healthy members left:
// before, the control reader and the group's member got a deadline already
// past and were abandoned at once (their revoke committing nothing).
TEST(ConsumerShutdown, HealthyMembersLeaveAfterAnEarlierStepUsedUpTheWindow) {
  auto owned = std::make_unique<SlowPublishCluster>("slow");
  SlowPublishCluster* cluster = owned.get();
  cluster->AddTopic("orders", 1);
  std::vector<std::unique_ptr<backend::Cluster>> clusters;
  clusters.push_back(std::move(owned));
  IgnoringControlListener control_listener;
  metrics::Registry metrics;
  routing::RouteTable router{std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{
          {.topic = "*", .write = {"slow"}, .read = {"slow"}}},
      std::vector<std::string>{"slow"})};
  Consumers consumers;
  consumers.control = std::make_unique<control::ControlPlane>(
      cluster,
      control::ControlPlane::Options{.node_id = "n1", .leave_timeout = kLeaveTimeout},
      &control_listener);
  ASSERT_TRUE(cluster->AwaitMembers("__ferry_control.n1", 1, kWait));
  config::SubscribeConfig subscribe;
  subscribe.leave_timeout = kLeaveTimeout;
  consumers.groups = std::make_unique<subscribe::GroupRegistry>(
      "n1", subscribe, &router,
      std::map<std::string, backend::Cluster*>{{"slow", cluster}}, &metrics);
  consumers.groups->OnCaughtUp();
  subscribe::OpenRequest request;
  request.group.group = "g";
  request.stream.topics = {"orders"};
  request.stream.ack_deadline = absl::Seconds(30);
  request.clusters = {cluster};
  ASSERT_TRUE(consumers.groups->Attach(request, 1, std::make_shared<NullSink>()).ok());
  ASSERT_TRUE(cluster->AwaitMembers("g", 1, kWait));
  const int64_t control_before =
      backend::ConsumersAbandoned(backend::ConsumerKind::kControlReader, "slow");
  const int64_t groups_before =
      backend::ConsumersAbandoned(backend::ConsumerKind::kGroupMember, "slow");
  cluster->SlowDown(kLeaveTimeout + absl::Milliseconds(300));
  const std::vector<std::string> kept =
      StopConsumersAndCloseClusters(std::move(consumers), nullptr, std::move(clusters),
                                    kLeaveTimeout, [](std::string) {});
  EXPECT_TRUE(kept.empty());
  EXPECT_EQ(backend::ConsumersAbandoned(backend::ConsumerKind::kControlReader, "slow"),
            control_before);
  EXPECT_EQ(backend::ConsumersAbandoned(backend::ConsumerKind::kGroupMember, "slow"),
            groups_before);
}

}  // namespace
}  // namespace ferry::server
