// The group registry on a fake cluster: opening, validation, and leaving
// idle groups without stalling the others.
#include "subscribe/group_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "backend/fake_cluster.h"
#include "backend/member_leave.h"

namespace ferry::subscribe {
namespace {

using backend::FakeCluster;
using ::testing::HasSubstr;

class CountingSink final : public StreamSink {
 public:
  void Send(SerializedResponse serialized) override {
    v1::SubscribeResponse response;
    EXPECT_TRUE(response.ParseFromArray(serialized.view().data(),
                                        static_cast<int>(serialized.size())));
    absl::MutexLock lock(&mu_);
    for (const auto& m : response.messages().messages())
      attempts_.push_back(m.delivery_attempt());
  }
  // Waits until a message with `attempt` arrived.
  bool WaitForAttempt(int32_t attempt, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return std::find(attempts_.begin(), attempts_.end(), attempt) != attempts_.end();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  }

 private:
  absl::Mutex mu_;
  std::vector<int32_t> attempts_ ABSL_GUARDED_BY(mu_);
};

class GroupRegistryTest : public ::testing::Test {
 protected:
  GroupRegistryTest() {
    cluster_.AddTopic("orders", 1);
    config_.group_idle_timeout = absl::Milliseconds(100);
  }

  GroupRegistry& registry() {
    if (!registry_) {
      registry_ = std::make_unique<GroupRegistry>(
          "node-1", config_, &router_,
          std::map<std::string, backend::Cluster*>{{"fake", &cluster_}}, &metrics_);
      registry_->OnCaughtUp();
    }
    return *registry_;
  }

  OpenRequest Request(const std::string& group, absl::Duration ack_deadline) {
    OpenRequest request;
    request.group.group = group;
    request.stream.topics = {"orders"};
    request.stream.ack_deadline = ack_deadline;
    request.clusters = {&cluster_};
    return request;
  }

  void TearDown() override {
    if (!release_.HasBeenNotified()) release_.Notify();
    registry_.reset();
    // Abandoned members use cluster_ until they finish.
    ASSERT_TRUE(backend::AwaitNoMembersLeaving(absl::Seconds(10)));
  }

  // Waits until the group's series are gone, which the registry does once
  // the group left.
  bool WaitLeft(const std::string& group) {
    const std::string label = "group=\"" + group + "\"";
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (metrics_.Render().find(label) != std::string::npos && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return metrics_.Render().find(label) == std::string::npos;
  }

  // Attaches a stream of `group` and has its member deliver one message.
  std::shared_ptr<GroupDispatcher> Delivering(const std::string& group, StreamId stream) {
    auto sink = std::make_shared<CountingSink>();
    auto dispatcher = registry().Attach(Request(group, absl::Seconds(30)), stream, sink);
    EXPECT_TRUE(dispatcher.ok()) << dispatcher.status();
    if (!dispatcher.ok()) return nullptr;
    backend::FakeGroupMember* member = cluster_.members(group).back();
    member->Assign({{.partition = {"orders", 0}, .next_offset = 0}});
    member->Deliver({{.topic = "orders", .partition = 0, .offset = 0, .value = "x"}});
    EXPECT_TRUE(sink->WaitForAttempt(1, absl::Seconds(10)));
    return *dispatcher;
  }

  void WaitUntilLeaving(int count) {
    ASSERT_TRUE(cluster_.AwaitLeaving(count, absl::Seconds(10)));
    ASSERT_EQ(cluster_.leaving(), count);
  }

  absl::Notification release_;
  FakeCluster cluster_;
  config::SubscribeConfig config_;
  routing::RouteTable router_{std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{
          {.topic = "*", .write = {"fake"}, .read = {"fake"}}},
      std::vector<std::string>{"fake"})};
  metrics::Registry metrics_;
  std::unique_ptr<GroupRegistry> registry_;
};

// Fault 5 of issue 24: the ticker left an idle group itself (seconds with a
// slow broker), and no other group had its deadlines expired meanwhile.
TEST_F(GroupRegistryTest, LeavingAnIdleGroupDoesNotStallTheOthers) {
  auto idle_sink = std::make_shared<CountingSink>();
  auto busy_sink = std::make_shared<CountingSink>();
  auto idle = registry().Attach(Request("idle", absl::Seconds(30)), 1, idle_sink);
  ASSERT_TRUE(idle.ok()) << idle.status();
  auto busy = registry().Attach(Request("busy", absl::Milliseconds(200)), 2, busy_sink);
  ASSERT_TRUE(busy.ok()) << busy.status();
  backend::FakeGroupMember* busy_member = cluster_.members("busy").back();
  busy_member->Assign({{.partition = {"orders", 0}, .next_offset = 0}});
  busy_member->Deliver({{.topic = "orders", .partition = 0, .offset = 0, .value = "x"}});
  ASSERT_TRUE(busy_sink->WaitForAttempt(1, absl::Seconds(10)));

  // The idle group's member hangs while leaving.
  cluster_.HoldLeaving(&release_);
  (*idle)->Detach(1);
  ASSERT_TRUE(cluster_.AwaitLeaving(1, absl::Seconds(10)))
      << "the idle group was not left";
  ASSERT_EQ(cluster_.leaving(), 1);

  // Meanwhile the busy group's unacked message still expires and comes back.
  EXPECT_TRUE(busy_sink->WaitForAttempt(2, absl::Seconds(10)))
      << "the busy group was not ticked while another group was leaving";
  release_.Notify();
  (*busy)->Detach(2);
}

// A member whose leave hung (librdkafka's destroy, after the group's topic
// was deleted) kept the registry's one leaving thread, and no idle group
// left the node afterwards: their consumers piled up.
TEST_F(GroupRegistryTest, AGroupStuckLeavingHoldsUpNoOtherGroupAndCanJoinAgain) {
  config_.leave_timeout = absl::Seconds(1);
  const int64_t abandoned_before =
      backend::ConsumersAbandoned(backend::ConsumerKind::kGroupMember, "fake");
  auto stuck = Delivering("stuck", 1);
  ASSERT_NE(stuck, nullptr);
  cluster_.HoldLeaving(&release_);
  stuck->Detach(1);
  stuck.reset();
  WaitUntilLeaving(1);
  cluster_.HoldLeaving(nullptr);  // later leaves go through

  auto later = Delivering("later", 2);
  ASSERT_NE(later, nullptr);
  later->Detach(2);
  later.reset();
  EXPECT_TRUE(WaitLeft("later")) << "an idle group waited for a stuck leave";
  // The stuck one is abandoned after the leave timeout and its series go.
  EXPECT_TRUE(WaitLeft("stuck"));
  EXPECT_EQ(cluster_.leaving(), 1);
  EXPECT_EQ(backend::ConsumersAbandoned(backend::ConsumerKind::kGroupMember, "fake"),
            abandoned_before + 1);

  // The group joins again with a new member while the old one still hangs.
  auto again = Delivering("stuck", 3);
  ASSERT_NE(again, nullptr);
  EXPECT_THAT(cluster_.members("stuck"), ::testing::SizeIs(2));
  again->Detach(3);
}

// Shutdown left the groups one after the other, each for as long as it
// took: a stuck leave held the node until its shutdown watchdog. Shown by
// order, not time: all three leaves are under way at once (one after the
// other, the first holds the others back).
TEST_F(GroupRegistryTest, ShutdownLeavesGroupsInParallel) {
  config_.leave_timeout = absl::Seconds(60);
  config_.group_idle_timeout = absl::Hours(1);
  for (StreamId stream : {1, 2, 3}) {
    auto group = Delivering("g" + std::to_string(stream), stream);
    ASSERT_NE(group, nullptr);
    group->Detach(stream);
  }
  cluster_.HoldLeaving(&release_);
  absl::Notification stopped;
  std::thread shutdown([&] {
    registry_.reset();
    stopped.Notify();
  });
  cluster_.AwaitLeaving(3, absl::Seconds(10));
  const int leaving_at_once = cluster_.leaving();
  release_.Notify();
  const bool stopped_in_time = stopped.WaitForNotificationWithTimeout(absl::Seconds(10));
  shutdown.join();
  EXPECT_EQ(leaving_at_once, 3) << "shutdown left the groups one after the other";
  EXPECT_TRUE(stopped_in_time);
}

// Idle groups queued for leaving behind stuck leaves were only left after
// the registry was gone (its leaving threads, 4 at a time, each up to the
// leave timeout): the shutdown watchdog killed the node first. Shutdown
// starts their leave with all the others.
TEST_F(GroupRegistryTest, ShutdownLeavesIdleGroupsStillQueuedForLeaving) {
  config_.leave_timeout = absl::Seconds(60);
  cluster_.HoldLeaving(&release_);
  constexpr int kGroups = 5;  // one more than the registry's leaving threads
  for (StreamId stream = 1; stream <= kGroups; ++stream) {
    auto group = Delivering("g" + std::to_string(stream), stream);
    ASSERT_NE(group, nullptr);
    group->Detach(stream);
  }
  // Every group went idle: four hang leaving, the fifth waits its turn.
  const absl::Time idle_by = absl::Now() + absl::Seconds(10);
  while ((!registry().Groups().empty() || cluster_.leaving() < 4) &&
         absl::Now() < idle_by) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_THAT(registry().Groups(), ::testing::IsEmpty());
  ASSERT_EQ(cluster_.leaving(), 4);

  absl::Notification stopped;
  std::thread shutdown([&] {
    registry_.reset();
    stopped.Notify();
  });
  cluster_.AwaitLeaving(kGroups, absl::Seconds(10));
  const int leaving_at_once = cluster_.leaving();
  release_.Notify();
  const bool stopped_in_time = stopped.WaitForNotificationWithTimeout(absl::Seconds(10));
  shutdown.join();
  EXPECT_EQ(leaving_at_once, kGroups) << "shutdown left the queued group only afterwards";
  EXPECT_TRUE(stopped_in_time);
}

// Fault 4 of issue 24: series of groups gone from the node stayed forever.
TEST_F(GroupRegistryTest, SeriesOfAGroupThatLeftTheNodeAreRemoved) {
  auto sink = std::make_shared<CountingSink>();
  auto gone = registry().Attach(Request("gone", absl::Seconds(30)), 1, sink);
  ASSERT_TRUE(gone.ok()) << gone.status();
  auto stays = registry().Attach(Request("stays", absl::Seconds(30)), 2, sink);
  ASSERT_TRUE(stays.ok()) << stays.status();
  for (const char* group : {"gone", "stays"}) {
    backend::FakeGroupMember* member = cluster_.members(group).back();
    member->Assign({{.partition = {"orders", 0}, .next_offset = 0}});
    member->Deliver({{.topic = "orders", .partition = 0, .offset = 0, .value = "x"}});
  }
  ASSERT_THAT(metrics_.Render(), HasSubstr("group=\"gone\""));

  (*gone)->Detach(1);
  EXPECT_TRUE(WaitLeft("gone"));
  const std::string text = metrics_.Render();
  EXPECT_THAT(text, ::testing::Not(HasSubstr("group=\"gone\"")));
  EXPECT_THAT(text, HasSubstr("group=\"stays\""));
  (*stays)->Detach(2);
}

TEST_F(GroupRegistryTest, MissingDeadLetterTopicIsRefusedAtOpenWithWhatToDo) {
  v1::SubscriptionOpen open;
  open.set_group("g");
  open.add_topics("orders");
  open.set_max_delivery_attempts(3);
  auto request = registry().Validate(open);
  ASSERT_EQ(request.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(request.status().message(), HasSubstr("orders.dlq does not exist"));
  EXPECT_THAT(request.status().message(), HasSubstr("ferry topics create orders.dlq"));

  open.set_dead_letter_topic("parked");
  EXPECT_THAT(registry().Validate(open).status().message(), HasSubstr("parked"));
  cluster_.AddTopic("parked", 1);
  EXPECT_TRUE(registry().Validate(open).ok());

  open.set_max_delivery_attempts(0);  // no dead-lettering: no topic needed
  open.set_dead_letter_topic("");
  EXPECT_TRUE(registry().Validate(open).ok());
}

TEST_F(GroupRegistryTest, MalformedFilterIsRefusedAtOpenWithItsColumn) {
  v1::SubscriptionOpen open;
  open.set_group("g");
  open.add_topics("orders");
  open.set_filter("key IN (\"a\", \"b\"");
  auto request = registry().Validate(open);
  ASSERT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(request.status().message(),
            "open.filter: column 17: expected ',' or ')' in IN list, got end of input");
  open.set_filter("  key = 'a' ");
  request = registry().Validate(open);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->stream.filter_text, "key = 'a'");
}

TEST_F(GroupRegistryTest, GroupFilterAppliesToLiveGroupsAndToGroupsJoinedLater) {
  registry().OnGroupFilter("later", "key = 'a'");
  auto sink = std::make_shared<CountingSink>();
  auto later = registry().Attach(Request("later", absl::Seconds(30)), 1, sink);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ((*later)->Snapshot().group_filter, "key = 'a'");

  auto live = registry().Attach(Request("live", absl::Seconds(30)), 2, sink);
  ASSERT_TRUE(live.ok());
  registry().OnGroupFilter("live", "key = 'b'");
  EXPECT_EQ((*live)->Snapshot().group_filter, "key = 'b'");
  registry().OnGroupFilter("live", "key = ");  // from a newer node: kept as it was
  EXPECT_EQ((*live)->Snapshot().group_filter, "key = 'b'");
  registry().OnGroupFilter("live", "");
  EXPECT_EQ((*live)->Snapshot().group_filter, "");
}

// A cluster that does not answer: its metadata requests time out.
class UnreachableCluster final : public FakeCluster {
 public:
  using FakeCluster::FakeCluster;
  absl::StatusOr<backend::TopicInfo> DescribeTopic(const std::string&) override {
    return absl::UnavailableError("no broker answered within 5s");
  }
};

// A cluster the probe found down: asking it would only wait for a timeout.
class DownCluster final : public FakeCluster {
 public:
  using FakeCluster::FakeCluster;
  backend::ClusterStatus Status() const override {
    backend::ClusterStatus status;
    status.state = backend::ClusterState::kDown;
    status.error = "connection refused";
    return status;
  }
  absl::StatusOr<backend::TopicInfo> DescribeTopic(const std::string& topic) override {
    ADD_FAILURE() << "asked a cluster known to be down about " << topic;
    return absl::DeadlineExceededError("timed out");
  }
};

class DualReadRegistryTest : public ::testing::Test {
 protected:
  DualReadRegistryTest() {
    main_.AddTopic("orders", 1);
    standby_.AddTopic("orders", 1);
  }

  absl::StatusOr<OpenRequest> Validate(backend::Cluster& second, int max_attempts) {
    GroupRegistry registry(
        "node-1", config_, &router_,
        std::map<std::string, backend::Cluster*>{{"main", &main_}, {"standby", &second}},
        &metrics_);
    v1::SubscriptionOpen open;
    open.set_group("g");
    open.add_topics("orders");
    open.set_max_delivery_attempts(max_attempts);
    return registry.Validate(open);
  }

  FakeCluster main_{"main"};
  FakeCluster standby_{"standby"};
  UnreachableCluster down_{"standby"};
  config::SubscribeConfig config_;
  routing::RouteTable router_{std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{
          {.topic = "*", .write = {"main"}, .read = {"main", "standby"}}},
      std::vector<std::string>{"main", "standby"})};
  metrics::Registry metrics_;
};

TEST_F(DualReadRegistryTest, AGroupReadsEveryClusterOfItsRoute) {
  auto request = Validate(standby_, 0);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->clusters, (std::vector<backend::Cluster*>{&main_, &standby_}));
}

TEST_F(DualReadRegistryTest, DeadLetterTopicMustExistOnEveryReadCluster) {
  main_.AddTopic("orders.dlq", 1);
  auto request = Validate(standby_, 3);
  ASSERT_EQ(request.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(request.status().message(),
              HasSubstr("orders.dlq does not exist on cluster standby"));
  EXPECT_THAT(request.status().message(), HasSubstr("--cluster standby"));
  standby_.AddTopic("orders.dlq", 1);
  EXPECT_TRUE(Validate(standby_, 3).ok());
}

TEST_F(DualReadRegistryTest, TopicMissingOnAReadClusterIsNotFoundNamingIt) {
  FakeCluster empty{"standby"};
  auto request = Validate(empty, 0);
  ASSERT_EQ(request.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(request.status().message(), HasSubstr("cluster standby"));
}

TEST_F(DualReadRegistryTest, AnUnreachableReadClusterDoesNotFailTheOpen) {
  auto request = Validate(down_, 3);
  ASSERT_EQ(request.status().code(), absl::StatusCode::kNotFound)
      << "the reachable cluster is still checked";
  main_.AddTopic("orders.dlq", 1);
  request = Validate(down_, 3);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->clusters, (std::vector<backend::Cluster*>{&main_, &down_}))
      << "the group still joins the cluster that is down, to pick it up later";
}

TEST_F(DualReadRegistryTest, AClusterKnownToBeDownIsNotWaitedFor) {
  DownCluster down{"standby"};
  auto request = Validate(down, 0);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->clusters, (std::vector<backend::Cluster*>{&main_, &down}));
}

TEST_F(DualReadRegistryTest, OpenFailsUnavailableWhenNoReadClusterAnswers) {
  UnreachableCluster main_down{"main"};
  GroupRegistry registry(
      "node-1", config_, &router_,
      std::map<std::string, backend::Cluster*>{{"main", &main_down}, {"standby", &down_}},
      &metrics_);
  v1::SubscriptionOpen open;
  open.set_group("g");
  open.add_topics("orders");
  auto request = registry.Validate(open);
  EXPECT_EQ(request.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(request.status().message(), HasSubstr("no broker answered"));
}

// Open groups follow route changes of their topics' read lists.
class RouteFollowingRegistryTest : public ::testing::Test {
 protected:
  RouteFollowingRegistryTest() {
    for (FakeCluster* cluster : {&main_, &standby_}) {
      cluster->AddTopic("orders", 1);
      cluster->AddTopic("payments", 1);
    }
    SetRoutes({"main"}, {"main"});
  }
  ~RouteFollowingRegistryTest() override { registry_.reset(); }

  void SetRoutes(std::vector<std::string> orders, std::vector<std::string> payments) {
    router_.Swap(std::make_shared<const routing::Router>(
        std::vector<config::RouteConfig>{
            {.topic = "orders", .write = {"main"}, .read = std::move(orders)},
            {.topic = "payments", .write = {"main"}, .read = std::move(payments)}},
        std::vector<std::string>{"main", "standby"}));
  }

  std::shared_ptr<GroupDispatcher> Open(std::vector<std::string> topics,
                                        std::vector<backend::Cluster*> clusters,
                                        const std::string& group = "g") {
    OpenRequest request;
    request.group.group = group;
    request.stream.topics = std::move(topics);
    request.clusters = std::move(clusters);
    auto dispatcher = registry_->Attach(request, registry_->NextStreamId(),
                                        std::make_shared<CountingSink>());
    EXPECT_TRUE(dispatcher.ok()) << dispatcher.status();
    return dispatcher.ok() ? *dispatcher : nullptr;
  }

  // Waits until the group reads `clusters`.
  static bool WaitReads(const GroupDispatcher& dispatcher,
                        const std::vector<backend::Cluster*>& clusters) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (dispatcher.clusters() != clusters && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return dispatcher.clusters() == clusters;
  }

  FakeCluster main_{"main"};
  FakeCluster standby_{"standby"};
  config::SubscribeConfig config_;
  routing::RouteTable router_{std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{}, std::vector<std::string>{"main"})};
  metrics::Registry metrics_;
  std::unique_ptr<GroupRegistry> registry_ = std::make_unique<GroupRegistry>(
      "node-1", config_, &router_,
      std::map<std::string, backend::Cluster*>{{"main", &main_}, {"standby", &standby_}},
      &metrics_);
};

TEST_F(RouteFollowingRegistryTest, AReadListChangeMovesTheOpenGroup) {
  auto group = Open({"orders", "payments"}, {&main_});
  ASSERT_NE(group, nullptr);
  SetRoutes({"main", "standby"}, {"main", "standby"});
  registry_->OnRoutes({});
  EXPECT_TRUE(WaitReads(*group, {&main_, &standby_}));
  EXPECT_THAT(standby_.members("g"), ::testing::SizeIs(1));
}

// The topics' read lists disagree: the group keeps what it reads, and the
// node's other groups follow the change (groups are moved in name order, so
// once "h" moved, "g" was looked at).
TEST_F(RouteFollowingRegistryTest, TopicsReadFromDifferentClustersKeepTheGroupAsItIs) {
  auto g = Open({"orders", "payments"}, {&main_}, "g");
  auto h = Open({"orders"}, {&main_}, "h");
  ASSERT_TRUE(g && h);
  SetRoutes({"main", "standby"}, {"standby"});
  registry_->OnRoutes({});
  ASSERT_TRUE(WaitReads(*h, {&main_, &standby_}));
  EXPECT_EQ(g->clusters(), std::vector<backend::Cluster*>{&main_});
  EXPECT_THAT(standby_.members("g"), ::testing::IsEmpty());
}

// The open was validated against the routes before a change that this node
// followed before the group existed: the new group catches up by itself.
TEST_F(RouteFollowingRegistryTest, AGroupOpenedWithAStaleReadListCatchesUp) {
  auto followed = Open({"orders"}, {&main_}, "h");
  ASSERT_NE(followed, nullptr);
  SetRoutes({"standby"}, {"standby"});
  registry_->OnRoutes({});
  ASSERT_TRUE(WaitReads(*followed, {&standby_}));  // the change was followed
  auto group = Open({"orders"}, {&main_}, "g");
  ASSERT_NE(group, nullptr);
  EXPECT_TRUE(WaitReads(*group, {&standby_}));
}

}  // namespace
}  // namespace ferry::subscribe
