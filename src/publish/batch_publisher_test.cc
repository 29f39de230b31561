#include "publish/batch_publisher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "api/retry.h"
#include "publish/admin_only_cluster.h"
#include "publish/test_batch.h"

namespace ferry::publish {
namespace {

using ::testing::Return;

// A batch for a topic the route would create, when looking the topic up
// fails: every message fails with the lookup's status, and whether the SDK
// may retry it is the one table's decision (api/retry.h), whatever the code.
TEST(BatchPublisher, AFailedAutoCreationFailsEachMessageRetryableByTheTable) {
  AdminOnlyCluster cluster("main");
  routing::RouteTable router(std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{{.topic = "auto.*",
                                        .write = {"main"},
                                        .read = {"main"},
                                        .auto_create_topics = true}},
      std::vector<std::string>{"main"}));
  metrics::Registry registry;
  routing::ClusterBreakers breakers(config::BreakerConfig{}, {&cluster}, &registry);
  InflightLimiter limiter(1 << 20);
  BatchPublisher publisher(config::PublishConfig{}, &router, &breakers, &registry,
                           &limiter);
  const absl::StatusCode codes[] = {
      absl::StatusCode::kUnavailable,       absl::StatusCode::kDeadlineExceeded,
      absl::StatusCode::kResourceExhausted, absl::StatusCode::kAborted,
      absl::StatusCode::kPermissionDenied,  absl::StatusCode::kInvalidArgument,
      absl::StatusCode::kInternal,          absl::StatusCode::kFailedPrecondition};
  for (absl::StatusCode code : codes) {
    // A topic per code: a failed lookup answers everyone who joins it.
    const std::string topic = absl::StrCat("auto.", static_cast<int>(code));
    EXPECT_CALL(cluster, DescribeTopic(topic))
        .WillOnce(Return(absl::StatusOr<backend::TopicInfo>(absl::Status(code, "no"))));
    v1::PublishRequest request;
    request.set_topic(topic);
    request.add_messages()->set_value("a");
    request.add_messages()->set_value("b");
    TestBatch sent(request);
    auto batch = publisher.Prepare(sent.request());
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_TRUE(limiter.TryAcquire(batch->bytes));
    absl::Notification answered;
    publisher.Publish(&sent.request(), sent.answer(), *batch, [&] { answered.Notify(); });
    ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
    const v1::PublishResponse response = sent.Response();
    ASSERT_EQ(response.results_size(), 2);
    for (const v1::PublishResult& result : response.results()) {
      EXPECT_EQ(result.status().code(), static_cast<int>(code));
      EXPECT_EQ(result.status().retryable(), api::IsRetryable(code))
          << absl::StatusCodeToString(code);
    }
  }
  EXPECT_EQ(limiter.in_use(), 0);
}

// Publishes `request` and waits for its response.
v1::PublishResponse PublishAndWait(BatchPublisher& publisher, InflightLimiter& limiter,
                                   v1::PublishRequest request) {
  TestBatch sent(request);
  auto batch = publisher.Prepare(sent.request());
  EXPECT_TRUE(batch.ok()) << batch.status();
  if (!batch.ok()) return {};
  EXPECT_TRUE(limiter.TryAcquire(batch->bytes));
  absl::Notification answered;
  publisher.Publish(&sent.request(), sent.answer(), *batch, [&] { answered.Notify(); });
  EXPECT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return sent.Response();
}

// A node's publish path writing one route to `clusters` (the first is the
// route's read cluster).
struct PublishPath {
  PublishPath(const std::string& topic, const std::vector<backend::Cluster*>& clusters,
              config::BreakerConfig breaker = {}, config::PublishConfig limits = {})
      : router(std::make_shared<const routing::Router>(
            std::vector<config::RouteConfig>{{.topic = topic,
                                              .write = Names(clusters),
                                              .read = {clusters[0]->name()}}},
            Names(clusters))),
        breakers(breaker, clusters, &registry),
        publisher(limits, &router, &breakers, &registry, &limiter) {}

  static std::vector<std::string> Names(const std::vector<backend::Cluster*>& clusters) {
    std::vector<std::string> names;
    for (const backend::Cluster* c : clusters) names.push_back(c->name());
    return names;
  }

  routing::RouteTable router;
  metrics::Registry registry;
  InflightLimiter limiter{64 << 20};  // the node's default publish.max_inflight_bytes
  routing::ClusterBreakers breakers;
  BatchPublisher publisher;
};

// The breaker sees every outcome of the batches written to its cluster: when
// enough of them say the primary is unhealthy, the next batch of the route
// goes to the standby, whole.
TEST(BatchPublisher, GivenAnUnhealthyPrimaryTheNextBatchesGoToTheStandby) {
  backend::FakeCluster primary("primary");
  backend::FakeCluster standby("standby");
  PublishPath path("orders", {&primary, &standby},
                   config::BreakerConfig{.min_requests = 20, .failure_rate = 0.5});
  v1::PublishRequest request;
  request.set_topic("orders");
  for (int i = 0; i < 10; ++i) {
    v1::OutgoingMessage* m = request.add_messages();
    m->set_key(absl::StrCat("k", i));
    m->set_value(absl::StrCat("v", i));
  }

  primary.SetPublishStatus(absl::UnavailableError("all brokers down"));
  for (int batch = 0; batch < 2; ++batch) {
    v1::PublishResponse failed = PublishAndWait(path.publisher, path.limiter, request);
    ASSERT_EQ(failed.results_size(), 10);
    EXPECT_EQ(failed.results(0).status().code(),
              static_cast<int>(absl::StatusCode::kUnavailable));
    EXPECT_TRUE(failed.results(0).status().retryable());
  }

  v1::PublishResponse moved = PublishAndWait(path.publisher, path.limiter, request);
  ASSERT_EQ(moved.results_size(), 10);
  for (const v1::PublishResult& result : moved.results()) {
    EXPECT_EQ(result.status().code(), 0);
    EXPECT_EQ(result.cluster(), "standby");
  }
  EXPECT_EQ(standby.published().size(), 10u);
  EXPECT_EQ(path.limiter.in_use(), 0);
}

// Given a batch whose middle message is refused by the per-message checks,
// when it is published to a backend that completes inline, then the other
// messages are written with their keys, values, headers and the id as the
// ferry.id header, and each result lands at its own message's index.
TEST(BatchPublisher, WritesTheAcceptedMessagesAndAnswersEachAtItsIndex) {
  backend::FakeCluster cluster("main");
  PublishPath path("orders", {&cluster});
  v1::PublishRequest request;
  request.set_topic("orders");
  for (int i = 0; i < 3; ++i) {
    v1::OutgoingMessage* m = request.add_messages();
    m->set_id(absl::StrCat("id", i));
    m->set_key(absl::StrCat("k", i));
    m->set_value(absl::StrCat("v", i));
    v1::Header* h = m->add_headers();
    h->set_key("h");
    h->set_value(absl::StrCat("hv", i));
  }
  // Reserved: refused before it reaches the backend.
  v1::Header* reserved = request.mutable_messages(1)->add_headers();
  reserved->set_key("ferry.id");
  reserved->set_value("x");

  v1::PublishResponse response = PublishAndWait(path.publisher, path.limiter, request);

  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(1).id(), "id1");
  EXPECT_EQ(response.results(1).status().code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  for (int i : {0, 2}) {
    EXPECT_EQ(response.results(i).id(), absl::StrCat("id", i));
    EXPECT_EQ(response.results(i).status().code(), 0) << i;
    EXPECT_EQ(response.results(i).cluster(), "main");
  }
  // The fake numbers its writes 0, 1, ...
  EXPECT_EQ(response.results(0).offset(), 0);
  EXPECT_EQ(response.results(2).offset(), 1);
  std::vector<backend::Record> written = cluster.published();
  ASSERT_EQ(written.size(), 2u);
  for (int j = 0; j < 2; ++j) {
    const int i = j * 2;
    const backend::Record& record = written[j];
    EXPECT_EQ(record.topic, "orders");
    EXPECT_EQ(record.key, absl::StrCat("k", i));
    EXPECT_EQ(record.value, absl::StrCat("v", i));
    ASSERT_EQ(record.headers.size(), 2u);
    EXPECT_EQ(record.headers[0].key, "h");
    EXPECT_EQ(record.headers[0].value, absl::StrCat("hv", i));
    EXPECT_EQ(record.headers[1].key, "ferry.id");
    EXPECT_EQ(record.headers[1].value, absl::StrCat("id", i));
  }
  EXPECT_EQ(path.limiter.in_use(), 0);
}

// FERRY_STAGE_TRACE (common/stage_trace.h): one row per answered batch, keyed
// by its first message's id, with its size and its stamps in stage order.
TEST(BatchPublisher, StageTraceWritesARowPerAnsweredBatch) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat("batch_publisher_stage_trace.", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  setenv("FERRY_STAGE_TRACE", dir.c_str(), 1);
  {
    backend::FakeCluster cluster("main");
    PublishPath path("orders", {&cluster});
    unsetenv("FERRY_STAGE_TRACE");
    for (int batch = 0; batch < 2; ++batch) {
      v1::PublishRequest request;
      request.set_topic("orders");
      for (int i = 0; i < 3; ++i) {
        v1::OutgoingMessage* m = request.add_messages();
        m->set_id(absl::StrCat("b", batch, "m", i));
        m->set_value("v");
      }
      ASSERT_EQ(PublishAndWait(path.publisher, path.limiter, request).results_size(), 3);
    }
  }  // The trace is written out when the publisher goes.
  std::vector<std::string> lines;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  std::filesystem::remove_all(dir);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "batch\tmessages\tdispatched_ns\treported_ns\tanswered_ns");
  for (int batch = 0; batch < 2; ++batch) {
    std::vector<std::string> f = absl::StrSplit(lines[batch + 1], '\t');
    ASSERT_EQ(f.size(), 5u);
    EXPECT_EQ(f[0], absl::StrCat("b", batch, "m0"));
    EXPECT_EQ(f[1], "3");
    EXPECT_GT(std::stoll(f[2]), 0);
    EXPECT_LE(std::stoll(f[2]), std::stoll(f[3]));
    EXPECT_LE(std::stoll(f[3]), std::stoll(f[4]));
  }
}

// Each batch's keyless messages carry one nonzero placement group of their
// own (Kafka puts them in one partition: one produce request, not one per
// partition); batches get different groups, so they still spread.
TEST(BatchPublisher, EachBatchGivesItsRecordsOneKeylessGroupOfItsOwn) {
  backend::FakeCluster cluster("main");
  PublishPath path("orders", {&cluster});
  constexpr int kBatches = 3;
  constexpr int kMessages = 5;
  for (int batch = 0; batch < kBatches; ++batch) {
    v1::PublishRequest request;
    request.set_topic("orders");
    for (int i = 0; i < kMessages; ++i) request.add_messages()->set_value("v");
    PublishAndWait(path.publisher, path.limiter, request);
  }

  const std::vector<backend::Record> records = cluster.published();
  ASSERT_EQ(records.size(), size_t{kBatches * kMessages});
  std::set<uint32_t> groups;
  for (int batch = 0; batch < kBatches; ++batch) {
    const uint32_t group = records[batch * kMessages].keyless_group;
    EXPECT_NE(group, 0u);
    for (int i = 0; i < kMessages; ++i) {
      EXPECT_EQ(records[batch * kMessages + i].keyless_group, group);
    }
    groups.insert(group);
  }
  EXPECT_EQ(groups.size(), size_t{kBatches});  // a collision: 1 in ~1.4 billion
}

// A cluster that answers batches only when the test says so.
class HoldingCluster : public backend::FakeCluster {
 public:
  using FakeCluster::FakeCluster;
  void PublishBatch(const backend::RecordBatch& batch,
                    backend::BatchCallback done) override {
    absl::MutexLock lock(&mu_);
    held_.push_back({batch.records.size(), std::move(done)});
  }
  // Acknowledges the oldest held batch.
  void AnswerOne() {
    std::pair<size_t, backend::BatchCallback> next;
    {
      absl::MutexLock lock(&mu_);
      ASSERT_FALSE(held_.empty());
      next = std::move(held_.front());
      held_.erase(held_.begin());
    }
    std::vector<backend::PublishOutcome> outcomes(next.first);
    next.second(outcomes);
  }
  size_t held() const {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<size_t, backend::BatchCallback>> held_ ABSL_GUARDED_BY(mu_);
};

// publish.timeout 1 s × 1 %: a batch waits past the budget after 10 ms.
config::PublishConfig TenMillisecondBudget() {
  config::PublishConfig limits;
  limits.timeout = absl::Seconds(1);
  limits.drain_share = 0.01;
  return limits;
}

// One batch of `messages` × 1,000 bytes through the publish path, answered
// into `answered`.
struct SentBatch {
  SentBatch(PublishPath& path, const std::string& topic, int messages = 2) {
    v1::PublishRequest request;
    request.set_topic(topic);
    for (int i = 0; i < messages; ++i) {
      request.add_messages()->set_value(std::string(1000, 'v'));
    }
    sent = std::make_unique<TestBatch>(request);
    auto batch = path.publisher.Prepare(sent->request());
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) return;
    EXPECT_TRUE(path.limiter.TryAcquire(batch->bytes));
    path.publisher.Publish(&sent->request(), sent->answer(), *batch,
                           [this] { answered.Notify(); });
  }
  v1::PublishResponse Wait() {
    EXPECT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
    return sent->Response();
  }

  std::unique_ptr<TestBatch> sent;
  absl::Notification answered;
};

// Admission by wait: while a topic's oldest batch waits past the budget, its
// next batch is answered RESOURCE_EXHAUSTED, retryable, without reaching the
// cluster, and counted; another topic of the same cluster is still written;
// once the oldest is answered the topic's batches pass again.
TEST(BatchPublisher, ATopicsBatchBehindAnOverdueOneIsRefusedUnwrittenOthersAreNot) {
  HoldingCluster cluster("main");
  PublishPath path("orders.*", {&cluster}, {}, TenMillisecondBudget());
  SentBatch first(path, "orders.stalled");
  absl::SleepFor(absl::Milliseconds(30));
  SentBatch second(path, "orders.stalled");
  const v1::PublishResponse refused = second.Wait();
  EXPECT_EQ(cluster.held(), 1u);
  ASSERT_EQ(refused.results_size(), 2);
  for (const v1::PublishResult& result : refused.results()) {
    EXPECT_EQ(result.status().code(),
              static_cast<int>(absl::StatusCode::kResourceExhausted));
    EXPECT_TRUE(result.status().retryable());
    EXPECT_THAT(result.status().message(), ::testing::HasSubstr("publish.drain_share"));
  }
  EXPECT_THAT(
      path.registry.Render(),
      ::testing::HasSubstr("ferry_publish_refused_messages_total{cluster=\"main\"} 2"));

  SentBatch other(path, "orders.healthy");
  EXPECT_EQ(cluster.held(), 2u) << "another topic's batch is written";

  cluster.AnswerOne();
  EXPECT_EQ(first.Wait().results(0).status().code(), 0);
  SentBatch third(path, "orders.stalled");
  EXPECT_EQ(cluster.held(), 2u);
  cluster.AnswerOne();
  cluster.AnswerOne();
  EXPECT_EQ(other.Wait().results(0).status().code(), 0);
  EXPECT_EQ(third.Wait().results(1).status().code(), 0);
  EXPECT_EQ(path.limiter.in_use(), 0);
}

// A refusal is not the cluster failing (nothing was written): the breaker
// takes no outcome from it, so refusals alone never move a route to its
// standby.
TEST(BatchPublisher, RefusalsDoNotCountAgainstTheClustersBreaker) {
  HoldingCluster primary("primary");
  backend::FakeCluster standby("standby");
  PublishPath path("orders", {&primary, &standby},
                   config::BreakerConfig{.min_requests = 20, .failure_rate = 0.5},
                   TenMillisecondBudget());
  SentBatch overdue(path, "orders");
  absl::SleepFor(absl::Milliseconds(30));
  for (int i = 0; i < 30; ++i) {
    SentBatch refused(path, "orders", 10);
    EXPECT_EQ(refused.Wait().results(0).status().code(),
              static_cast<int>(absl::StatusCode::kResourceExhausted));
  }
  EXPECT_EQ(path.breakers.Find("primary")->state(), routing::BreakerState::kClosed);
  EXPECT_TRUE(standby.published().empty());
  primary.AnswerOne();
  EXPECT_EQ(overdue.Wait().results(0).status().code(), 0);
  EXPECT_EQ(path.limiter.in_use(), 0);
}

// The start of a burst far larger than the cluster drains at once: nothing
// has waited yet, so nothing is refused (what the rate gates got wrong).
TEST(BatchPublisher, AStartBurstIsAdmittedWhateverItsSize) {
  HoldingCluster cluster("main");
  PublishPath path("orders", {&cluster});
  std::vector<std::unique_ptr<SentBatch>> burst;
  for (int i = 0; i < 60; ++i) {
    burst.push_back(std::make_unique<SentBatch>(path, "orders", 500));  // 30 MB
  }
  EXPECT_EQ(cluster.held(), 60u);
  EXPECT_THAT(
      path.registry.Render(),
      ::testing::HasSubstr("ferry_publish_refused_messages_total{cluster=\"main\"} 0"));
  for (int i = 0; i < 60; ++i) cluster.AnswerOne();
  for (auto& sent : burst) EXPECT_EQ(sent->Wait().results(0).status().code(), 0);
  EXPECT_EQ(path.limiter.in_use(), 0);
}

}  // namespace
}  // namespace ferry::publish
