// Online control of live consumer groups across ferryd nodes: seek (to a
// time while consuming, and of a group nobody consumes), pause/resume that
// survives a node restart, group filters, and DescribeGroup.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SharedBroker;
using ::ferry::testing::SubscriberStream;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(60);

class GroupControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = SharedBroker();
    ASSERT_NE(broker_, nullptr);
  }

  std::string Name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  void Produce(const std::string& topic, int from, int count) {
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = from; i < from + count; ++i) {
      records.emplace_back(absl::StrCat("k", i), absl::StrCat("v", i));
    }
    ASSERT_TRUE(testing::ProduceMany(broker_->bootstrap(), topic, records).ok());
  }

  std::string Topic(int partitions) {
    std::string topic = absl::StrCat("control.", Name());
    EXPECT_TRUE(broker_->CreateTopic(topic, partitions).ok());
    return topic;
  }

  std::unique_ptr<FerrydProcess> Node(const std::string& extra_yaml = "") {
    auto node = FerrydProcess::Start(
        testing::MainClusterYaml(broker_->bootstrap()) +
        "subscribe:\n  commit_interval: 100ms\n  session_timeout: 6s\n" + extra_yaml);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static std::unique_ptr<v1::Admin::Stub> Admin(const FerrydProcess& node) {
    return v1::Admin::NewStub(
        grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()));
  }

  std::map<int32_t, int64_t> Committed(const std::string& topic, int partitions) {
    auto committed =
        testing::CommittedOffsets(broker_->bootstrap(), Name(), topic, partitions);
    EXPECT_TRUE(committed.ok()) << committed.status();
    return committed.ok() ? *committed : std::map<int32_t, int64_t>{};
  }

  bool WaitCommitted(const std::string& topic, std::map<int32_t, int64_t> expected) {
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (absl::Now() < until) {
      if (Committed(topic, static_cast<int>(expected.size())) == expected) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  KafkaBroker* broker_ = nullptr;
};

grpc::ClientContext* Deadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return &context;
}

// The node's log lines about seeks and partition ownership, for failures.
std::string SeekLog(const FerrydProcess& node) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(node.Log(), '\n')) {
    for (absl::string_view word : {"seek", "moved", "assigned", "revoked"}) {
      if (absl::StrContains(line, word)) {
        absl::StrAppend(&out, line, "\n");
        break;
      }
    }
  }
  return out;
}

// Takes messages from several streams until `count` arrived or time is up.
std::vector<std::pair<SubscriberStream*, v1::ReceivedMessage>> TakeFrom(
    const std::vector<SubscriberStream*>& streams, size_t count, absl::Duration timeout) {
  std::vector<std::pair<SubscriberStream*, v1::ReceivedMessage>> out;
  const absl::Time until = absl::Now() + timeout;
  while (out.size() < count && absl::Now() < until) {
    for (SubscriberStream* s : streams) {
      while (auto m = s->Next(absl::Milliseconds(20))) out.emplace_back(s, *m);
    }
  }
  return out;
}

TEST_F(GroupControlTest, SeekToATimeWhileTwoNodesConsumeRedeliversWithoutReconnecting) {
  const std::string topic = Topic(2);
  Produce(topic, 0, 100);
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time middle = absl::Now();
  absl::SleepFor(absl::Milliseconds(50));
  Produce(topic, 100, 100);
  auto a = Node();
  auto b = Node();
  ASSERT_TRUE(a && b);
  SubscriberStream sa(a->grpc_address(), MakeOpen(Name(), {topic}));
  SubscriberStream sb(b->grpc_address(), MakeOpen(Name(), {topic}));

  // Consume everything; ack all but one message of the second half.
  auto first = TakeFrom({&sa, &sb}, 200, kWait);
  ASSERT_EQ(first.size(), 200u);
  std::set<SubscriberStream*> serving;
  std::pair<SubscriberStream*, v1::ReceivedMessage> held;
  for (auto& [stream, m] : first) {
    serving.insert(stream);
    if (held.first == nullptr && m.value() == "v150") {
      held = {stream, m};
      continue;
    }
    ASSERT_TRUE(stream->Ack({m.receipt()}));
  }
  ASSERT_NE(held.first, nullptr);

  v1::SeekRequest seek;
  seek.set_group(Name());
  seek.add_topics(topic);
  seek.mutable_to()->mutable_timestamp()->set_seconds(absl::ToUnixSeconds(middle));
  seek.mutable_to()->mutable_timestamp()->set_nanos(
      static_cast<int32_t>(absl::ToUnixNanos(middle) % 1000000000));
  v1::SeekResponse moved;
  grpc::ClientContext context;
  grpc::Status status = Admin(*a)->Seek(Deadline(context), seek, &moved);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(moved.offsets_size(), 2);

  // The second half comes again, on the same streams.
  auto again = TakeFrom({&sa, &sb}, 100, kWait);
  std::set<std::string> values;
  for (auto& [stream, m] : again) {
    values.insert(m.value());
    ASSERT_TRUE(stream->Ack({m.receipt()}));
  }
  EXPECT_EQ(values.size(), 100u);
  EXPECT_TRUE(values.contains("v100") && values.contains("v199"));
  EXPECT_FALSE(values.contains("v99"));

  // The receipt handed out before the seek is void.
  ASSERT_TRUE(held.first->Ack({held.second.receipt()}));
  auto results = held.first->WaitReceiptResults(1, absl::Seconds(10));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_THAT(results[0].status().message(), HasSubstr("receipt expired"));
  // Everything was acked again after the seek: the group commits to the end.
  std::map<int32_t, int64_t> end = {{0, 0}, {1, 0}};
  for (const auto& [stream, m] : first) {
    end[m.partition()] = std::max(end[m.partition()], m.offset() + 1);
  }
  EXPECT_TRUE(WaitCommitted(topic, end));
}

TEST_F(GroupControlTest, GroupFilterChangesALiveGroupOnEveryNodeWithoutReconnecting) {
  const std::string topic = Topic(2);
  auto a = Node();
  auto b = Node();
  ASSERT_TRUE(a && b);
  SubscriberStream sa(a->grpc_address(), MakeOpen(Name(), {topic}));
  SubscriberStream sb(b->grpc_address(), MakeOpen(Name(), {topic}));
  auto take_values = [&](size_t count) {
    std::set<std::string> values;
    for (auto& [stream, m] : TakeFrom({&sa, &sb}, count, kWait)) {
      values.insert(m.value());
      EXPECT_TRUE(stream->Ack({m.receipt()}));
    }
    // Nothing beyond what was expected.
    for (auto& [stream, m] : TakeFrom({&sa, &sb}, 1, absl::Milliseconds(500))) {
      values.insert(m.value());
    }
    return values;
  };
  Produce(topic, 0, 20);
  ASSERT_EQ(take_values(20).size(), 20u);

  auto set_filter = [&](const FerrydProcess& node, const std::string& filter) {
    auto result = testing::RunFerryCli(
        {"--server", node.grpc_address(), "groups", "filter", Name(), filter});
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->exit_code, 0) << result->err;
  };
  set_filter(*a, "key IN ('k21', 'k34')");
  absl::SleepFor(absl::Seconds(1));  // every node applies it within 1 s
  Produce(topic, 20, 20);
  EXPECT_EQ(take_values(2), (std::set<std::string>{"v21", "v34"}));

  v1::DescribeGroupRequest describe;
  describe.set_group(Name());
  v1::Group group;
  grpc::ClientContext context;
  ASSERT_TRUE(Admin(*b)->DescribeGroup(Deadline(context), describe, &group).ok());
  EXPECT_EQ(group.filter(), "key IN ('k21', 'k34')");

  set_filter(*b, "");
  absl::SleepFor(absl::Seconds(1));
  Produce(topic, 40, 4);
  EXPECT_EQ(take_values(4), (std::set<std::string>{"v40", "v41", "v42", "v43"}));
  // Skipped messages were committed past on both partitions.
  const absl::Time until = absl::Now() + absl::Seconds(30);
  int64_t committed = 0;
  while (absl::Now() < until && committed != 44) {
    committed = 0;
    for (const auto& [partition, offset] : Committed(topic, 2)) committed += offset;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(committed, 44);
}

TEST_F(GroupControlTest, SeekOfAGroupNobodyConsumesMovesItsCommittedOffsets) {
  const std::string topic = Topic(2);
  Produce(topic, 0, 20);
  auto node = Node("  group_idle_timeout: 0s\n");
  ASSERT_NE(node, nullptr);
  {
    SubscriberStream stream(node->grpc_address(), MakeOpen(Name(), {topic}));
    auto got = stream.Take(20, kWait);
    ASSERT_EQ(got.size(), 20u);
    std::map<int32_t, int64_t> end = {{0, 0}, {1, 0}};
    for (const auto& m : got) {
      ASSERT_TRUE(stream.Ack({m.receipt()}));
      end[m.partition()] = std::max(end[m.partition()], m.offset() + 1);
    }
    ASSERT_TRUE(WaitCommitted(topic, end));
    EXPECT_TRUE(stream.Close().ok());
  }
  // The node leaves the group once its last stream closed (idle timeout 0),
  // while the seek is being issued: the node sees the group still has a
  // member and asks it through the control topic; nobody applies it there,
  // so the node moves the offsets directly once the member is gone.
  v1::SeekRequest seek;
  seek.set_group(Name());
  seek.add_topics(topic);
  seek.mutable_to()->set_earliest(true);
  v1::SeekResponse moved;
  grpc::ClientContext context;
  grpc::Status status = Admin(*node)->Seek(Deadline(context), seek, &moved);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(WaitCommitted(topic, {{0, 0}, {1, 0}}));
  SubscriberStream again(node->grpc_address(), MakeOpen(Name(), {topic}));
  EXPECT_EQ(again.Take(20, kWait).size(), 20u);
}

TEST_F(GroupControlTest, DescribeOfAGroupNobodyEverUsedIsNotFound) {
  auto node = Node();
  ASSERT_NE(node, nullptr);
  v1::DescribeGroupRequest describe;
  describe.set_group(Name());
  v1::Group group;
  grpc::ClientContext context;
  grpc::Status status = Admin(*node)->DescribeGroup(Deadline(context), describe, &group);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(Name())) << node->Log();

  // A group known only to Ferry (paused before anyone joined) exists once
  // the node applied the pause from the control topic.
  v1::PauseGroupRequest pause;
  pause.set_group(Name());
  v1::PauseGroupResponse paused;
  grpc::ClientContext pause_context;
  ASSERT_TRUE(Admin(*node)->PauseGroup(Deadline(pause_context), pause, &paused).ok());
  const absl::Time until = absl::Now() + absl::Seconds(10);
  do {
    grpc::ClientContext again;
    status = Admin(*node)->DescribeGroup(Deadline(again), describe, &group);
  } while (!status.ok() && absl::Now() < until);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(group.paused());
}

// Seeks issued while a second node keeps joining and leaving the group:
// partitions change owners under the commands (eager rebalances revoke them
// all, then reassign), yet after every seek that returned OK every message
// comes again.
TEST_F(GroupControlTest, SeeksDuringRebalancesMoveEveryPartition) {
  const std::string topic = Topic(4);
  Produce(topic, 0, 200);
  auto a = Node();
  auto b = Node("  group_idle_timeout: 0s\n");
  ASSERT_TRUE(a && b);
  SubscriberStream sa(a->grpc_address(), MakeOpen(Name(), {topic}));

  absl::Mutex mu;
  std::set<std::string> seen;  // values delivered since the last seek
  auto take = [&](SubscriberStream& stream, absl::Duration timeout) {
    for (auto& [s, m] : TakeFrom({&stream}, 1000, timeout)) {
      s->Ack({m.receipt()});
      absl::MutexLock lock(&mu);
      seen.insert(m.value());
    }
  };
  std::atomic<bool> stop = false;
  std::thread churn([&] {
    while (!stop) {
      SubscriberStream sb(b->grpc_address(), MakeOpen(Name(), {topic}));
      take(sb, absl::Milliseconds(900));
      EXPECT_TRUE(sb.Close().ok());
      absl::SleepFor(absl::Milliseconds(400));
    }
  });
  absl::Cleanup stop_churn = [&] {
    stop = true;
    churn.join();
  };

  // Counts the distinct messages delivered until all 200 came or time is up.
  auto wait_all = [&] {
    size_t count = 0;
    for (const absl::Time until = absl::Now() + absl::Seconds(20);
         count < 200 && absl::Now() < until;) {
      take(sa, absl::Milliseconds(100));
      absl::MutexLock lock(&mu);
      count = seen.size();
    }
    return count;
  };
  ASSERT_EQ(wait_all(), 200u) << "first consumption";

  v1::SeekRequest seek;
  seek.set_group(Name());
  seek.add_topics(topic);
  seek.mutable_to()->set_earliest(true);
  for (int round = 0; round < 10; ++round) {
    // Cleared before the seek: a node may deliver the moved partitions (to
    // the churning stream) before Seek's answer reaches this thread. With
    // everything consumed, only the seek delivers messages again.
    {
      absl::MutexLock lock(&mu);
      seen.clear();
    }
    v1::SeekResponse moved;
    grpc::ClientContext context;
    grpc::Status status = Admin(*a)->Seek(Deadline(context), seek, &moved);
    ASSERT_TRUE(status.ok()) << "round " << round << ": " << status.error_message();
    const size_t count = wait_all();
    EXPECT_EQ(count, 200u) << "round " << round
                           << ": a partition missed the seek (it changed owners); "
                           << "seek lines of node a:\n"
                           << SeekLog(*a) << "node b:\n"
                           << SeekLog(*b);
  }
}

TEST_F(GroupControlTest, PauseHoldsEveryNodeAndSurvivesARestart) {
  const std::string topic = Topic(2);
  auto a = Node();
  auto b = Node();
  ASSERT_TRUE(a && b);
  grpc::ClientContext pause_context;
  v1::PauseGroupRequest pause;
  pause.set_group(Name());
  v1::PauseGroupResponse paused;
  ASSERT_TRUE(Admin(*a)->PauseGroup(Deadline(pause_context), pause, &paused).ok());

  auto sa =
      std::make_unique<SubscriberStream>(a->grpc_address(), MakeOpen(Name(), {topic}));
  auto sb =
      std::make_unique<SubscriberStream>(b->grpc_address(), MakeOpen(Name(), {topic}));
  Produce(topic, 0, 50);
  EXPECT_TRUE(TakeFrom({sa.get(), sb.get()}, 1, absl::Seconds(3)).empty());

  // B restarts: it learns the pause from the control topic.
  sb.reset();
  b.reset();
  b = Node();
  ASSERT_NE(b, nullptr);
  sb = std::make_unique<SubscriberStream>(b->grpc_address(), MakeOpen(Name(), {topic}));
  EXPECT_TRUE(TakeFrom({sa.get(), sb.get()}, 1, absl::Seconds(10)).empty());

  // Describe through either node: members of both nodes, partitions with lag.
  v1::DescribeGroupRequest describe;
  describe.set_group(Name());
  v1::Group group;
  grpc::ClientContext describe_context;
  ASSERT_TRUE(
      Admin(*b)->DescribeGroup(Deadline(describe_context), describe, &group).ok());
  EXPECT_TRUE(group.paused());
  EXPECT_EQ(group.partitions_size(), 2);
  int64_t lag = 0;
  for (const auto& p : group.partitions()) lag += p.lag();
  EXPECT_EQ(lag, 50);

  grpc::ClientContext resume_context;
  v1::ResumeGroupRequest resume;
  resume.set_group(Name());
  v1::ResumeGroupResponse resumed;
  ASSERT_TRUE(Admin(*b)->ResumeGroup(Deadline(resume_context), resume, &resumed).ok());
  auto got = TakeFrom({sa.get(), sb.get()}, 50, kWait);
  EXPECT_EQ(got.size(), 50u);
}

}  // namespace
}  // namespace ferry
