// The migration playbook end to end (docs/migration.md), on two real Kafka
// brokers and two ferryd nodes: an SDK publishes keyed messages through both
// nodes the whole time, two groups (one in key order, one unordered) consume
// the whole time, and `ferry migrate` runs every stage on the first of three
// nodes; one node is killed -9 while the mirror runs and another while the
// consumer stage runs, so the barriers must drop them. Every acknowledged message reaches
// both groups, the key-ordered group's first deliveries keep each key's publish order
// across the two clusters, and duplicates are counted. A second test rolls back from the
// consumer stage with the same checks, a third from the producer stage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/steady_traffic.h"
#include "testing/subscriber_stream.h"
#include "testing/traffic_consumer.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int kPartitions = 3;
constexpr int kKeys = 12;
// Messages a stream may have delivered and not yet acknowledged at a pause
// (half a second of SteadyTraffic at one message every 10 ms).
constexpr int kInFlightBound = 50;

using Consumer = ::ferry::testing::TrafficConsumer;

class MigrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto a = KafkaBroker::Start("migrate-a");
    auto b = KafkaBroker::Start("migrate-b");
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    a_ = a->release();
    b_ = b->release();
  }
  static void TearDownTestSuite() {
    delete a_;
    delete b_;
  }

  void SetUp() override {
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    topic_ = absl::StrCat(
        "orders.", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(a_->CreateTopic(topic_, kPartitions).ok());
    for (int i = 0; i < 3; ++i) {
      auto node = FerrydProcess::Start(
          absl::StrCat("node: { id: node-", i, " }\n", "clusters:\n",
                       testing::KafkaClusterEntry("a", a_->bootstrap()),
                       testing::KafkaClusterEntry("b", b_->bootstrap()),
                       "routes:\n  - { topic: \"orders.*\", write: [a], read: [a] }\n",
                       "control: { cluster: a, topic: __ferry_control.", topic_,
                       ", heartbeat_interval: 200ms, node_timeout: 2s }\n",
                       "subscribe: { commit_interval: 200ms }\n"));
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(*std::move(node));
    }
  }

  // Runs `ferry migrate <args> --topic T` on node 0 while both groups go on
  // consuming, and `meanwhile` 300 ms into it; returns the CLI's output.
  std::string Migrate(const std::vector<std::string>& args, Consumer& keyed,
                      Consumer& unordered, bool expect_ok = true,
                      std::function<void()> meanwhile = nullptr) {
    std::vector<std::string> argv = {"--server", nodes_[0]->grpc_address(), "migrate"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--topic", topic_});
    const absl::Time start = absl::Now();
    auto result =
        std::async(std::launch::async, [argv] { return testing::RunFerryCli(argv); });
    while (result.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      if (meanwhile && absl::Now() - start > absl::Milliseconds(300)) {
        meanwhile();
        meanwhile = nullptr;
      }
      keyed.Drain(absl::Milliseconds(100));
      unordered.Drain(absl::Milliseconds(100));
      if (late_ != nullptr) late_->Drain(absl::Milliseconds(100));
    }
    auto done = result.get();
    EXPECT_TRUE(done.ok()) << done.status();
    if (!done.ok()) return "";
    std::cout << "ferry migrate " << args[0] << " ("
              << absl::FormatDuration(absl::Now() - start) << "):\n"
              << done->out << done->err;
    if (expect_ok) {
      EXPECT_EQ(done->exit_code, 0) << done->err;
    }
    return done->out + done->err;
  }

  static void DrainBoth(Consumer& keyed, Consumer& unordered, absl::Duration period) {
    const absl::Time end = absl::Now() + period;
    while (absl::Now() < end) {
      keyed.Drain(absl::Milliseconds(100));
      unordered.Drain(absl::Milliseconds(100));
    }
  }

  // Where the acknowledged messages `consumer` lacks were written, per
  // cluster and partition: how many, their offsets and publish times (since
  // the first message), so a miss tells a stretch skipped from a stall.
  static std::string DescribeMissing(const std::vector<testing::SentMessage>& sent,
                                     const Consumer& consumer) {
    struct Stretch {
      int count = 0;
      int64_t first_offset = -1, last_offset = -1;
      absl::Time first_published, last_published;
    };
    std::map<std::pair<std::string, int32_t>, Stretch> missing;
    for (const testing::SentMessage& s : sent) {
      if (!s.result.ok() || consumer.Has(s.result.id)) continue;
      Stretch& m = missing[{s.result.cluster, s.result.partition}];
      if (m.count++ == 0) {
        m.first_offset = s.result.offset;
        m.first_published = s.published;
      }
      m.last_offset = s.result.offset;
      m.last_published = s.published;
    }
    const absl::Time start = sent.empty() ? absl::Now() : sent.front().published;
    std::string out;
    for (const auto& [where, m] : missing) {
      absl::StrAppend(&out, "\n  ", where.first, "/", where.second, ": ", m.count,
                      " missing, offsets ", m.first_offset, "..", m.last_offset,
                      ", published ", absl::FormatDuration(m.first_published - start),
                      "..", absl::FormatDuration(m.last_published - start),
                      " after the first message");
    }
    return out;
  }

  // Every acknowledged message reached both groups (waiting up to 90 s for
  // the last ones); the key-ordered group's first deliveries are in order.
  static void ExpectEverythingConsumed(const std::vector<testing::SentMessage>& sent,
                                       Consumer& keyed, Consumer& unordered) {
    std::set<std::string> acked;
    std::map<std::string, int> by_cluster;
    int failed = 0;
    for (const testing::SentMessage& s : sent) {
      if (s.result.ok()) {
        acked.insert(s.result.id);
        ++by_cluster[s.result.cluster];
      } else {
        ++failed;
      }
    }
    std::cout << "published " << sent.size() << ": a=" << by_cluster["a"]
              << " b=" << by_cluster["b"] << ", " << failed << " failed\n";
    EXPECT_EQ(failed, 0);
    const absl::Time give_up = absl::Now() + absl::Seconds(90);
    auto missing = [&](const Consumer& c) {
      int n = 0;
      for (const std::string& id : acked) n += !c.Has(id);
      return n;
    };
    while ((missing(keyed) > 0 || missing(unordered) > 0) && absl::Now() < give_up) {
      DrainBoth(keyed, unordered, absl::Milliseconds(500));
    }
    std::cout << keyed.Summary() << "\n" << unordered.Summary() << "\n";
    EXPECT_EQ(missing(keyed), 0) << "acknowledged messages the key-ordered group missed"
                                 << DescribeMissing(sent, keyed);
    EXPECT_EQ(missing(unordered), 0) << "acknowledged messages the unordered group missed"
                                     << DescribeMissing(sent, unordered);
    EXPECT_EQ(keyed.OrderViolations(), 0);
  }

  // Given traffic to A and both groups reading it: starts the migration.
  void StartMigration(Consumer& keyed, Consumer& unordered,
                      testing::SteadyTraffic& traffic) {
    EXPECT_TRUE(traffic.FirstAckOn("a", absl::InfinitePast(), absl::Seconds(20)));
    DrainBoth(keyed, unordered, absl::Seconds(2));
    Migrate({"start", "--from", "a", "--to", "b"}, keyed, unordered);
    DrainBoth(keyed, unordered, absl::Seconds(2));
  }

  // Given traffic to A and both groups reading it: starts the migration and
  // moves the groups to B.
  void MigrateConsumers(Consumer& keyed, Consumer& unordered,
                        testing::SteadyTraffic& traffic) {
    StartMigration(keyed, unordered, traffic);
    const int keyed_before = keyed.duplicates();
    const int unordered_before = unordered.duplicates();
    EXPECT_THAT(Migrate({"consumers"}, keyed, unordered),
                ::testing::HasSubstr("stage consumers\n"));
    DrainBoth(keyed, unordered, absl::Seconds(3));
    ExpectOnlyInFlightAgain("the consumer stage", keyed, keyed_before, unordered,
                            unordered_before);
  }

  // Both groups consume as fast as messages come and ack each batch at once:
  // what is delivered and not acknowledged at a pause is a few messages, not
  // seconds of traffic. (Before a resume waited for the route change, the
  // unordered group got 270-360 again: what it had buffered from the
  // cluster it left.)
  static void ExpectOnlyInFlightAgain(const std::string& when, const Consumer& keyed,
                                      int keyed_before, const Consumer& unordered,
                                      int unordered_before) {
    const int keyed_again = keyed.duplicates() - keyed_before;
    const int unordered_again = unordered.duplicates() - unordered_before;
    std::cout << "duplicates from " << when << ": keyed " << keyed_again << ", unordered "
              << unordered_again << "\n";
    EXPECT_LE(keyed_again, kKeys) << "at most one unacknowledged message per key";
    EXPECT_LE(unordered_again, kInFlightBound) << when;
  }

  std::vector<std::string> Addresses() const {
    return {nodes_[0]->grpc_address(), nodes_[1]->grpc_address(),
            nodes_[2]->grpc_address()};
  }

  static KafkaBroker* a_;
  static KafkaBroker* b_;
  // A third group's consumer, drained by Migrate once set.
  Consumer* late_ = nullptr;
  std::string topic_;
  std::vector<std::unique_ptr<FerrydProcess>> nodes_;
};

KafkaBroker* MigrationTest::a_ = nullptr;
KafkaBroker* MigrationTest::b_ = nullptr;

TEST_F(MigrationTest, ALiveTopicMovesStageByStageLosingNothingAndKeepingKeyOrder) {
  Consumer keyed(nodes_[0]->grpc_address(), "keyed." + topic_, topic_, v1::ORDERING_KEY);
  Consumer unordered(nodes_[0]->grpc_address(), "unordered." + topic_, topic_,
                     v1::ORDERING_NONE);
  testing::SteadyTraffic traffic(Addresses(), topic_, absl::Milliseconds(10), kKeys);
  ASSERT_TRUE(traffic.FirstAckOn("a", absl::InfinitePast(), absl::Seconds(20)));
  DrainBoth(keyed, unordered, absl::Seconds(2));

  // Bad input changes nothing.
  EXPECT_THAT(Migrate({"consumers"}, keyed, unordered, false),
              HasSubstr("no migration of topic"));
  EXPECT_THAT(
      Migrate({"start", "--from", "a", "--to", "nowhere"}, keyed, unordered, false),
      HasSubstr("unknown cluster \"nowhere\""));

  Migrate({"start", "--from", "a", "--to", "b"}, keyed, unordered);
  EXPECT_THAT(Migrate({"start", "--from", "b", "--to", "a"}, keyed, unordered, false),
              HasSubstr("is at stage mirroring"));
  EXPECT_THAT(Migrate({"producers"}, keyed, unordered, false),
              HasSubstr("not at stage mirroring"));
  // A node dies while the mirror runs: the barriers stop waiting for it
  // after control.node_timeout, and the SDK publishes through the other.
  nodes_[1]->process().Signal(SIGKILL);
  DrainBoth(keyed, unordered, absl::Seconds(2));

  // Another node dies while the groups are paused.
  const int unordered_before = unordered.duplicates();
  EXPECT_THAT(Migrate({"consumers"}, keyed, unordered, true,
                      [&] { nodes_[2]->process().Signal(SIGKILL); }),
              HasSubstr("stage consumers\n"));
  DrainBoth(keyed, unordered, absl::Seconds(2));
  std::cout << "unordered duplicates from the consumer stage with a node killed: "
            << unordered.duplicates() - unordered_before << "\n";
  EXPECT_THAT(Migrate({"producers"}, keyed, unordered), HasSubstr("stage producers\n"));
  ASSERT_TRUE(traffic.FirstAckOn("b", absl::InfinitePast(), absl::Seconds(20)));
  DrainBoth(keyed, unordered, absl::Seconds(2));
  EXPECT_THAT(Migrate({"finish"}, keyed, unordered), HasSubstr("stage finished\n"));
  EXPECT_THAT(Migrate({"status"}, keyed, unordered), HasSubstr("(no mirror)"));
  ExpectEverythingConsumed(traffic.Finish(), keyed, unordered);
}

// A group whose stream opens while the consumer stage runs, after the groups
// were listed: it is found when they are listed again after the pause, and
// moves to B like the others. Left behind, it joined B with nothing committed
// there and got the whole topic again (or, starting at the end, skipped what
// was written meanwhile).
TEST_F(MigrationTest, AGroupThatSubscribesDuringTheConsumerStageMovesToo) {
  Consumer keyed(nodes_[0]->grpc_address(), "keyed." + topic_, topic_, v1::ORDERING_KEY);
  Consumer unordered(nodes_[0]->grpc_address(), "unordered." + topic_, topic_,
                     v1::ORDERING_NONE);
  testing::SteadyTraffic traffic(Addresses(), topic_, absl::Milliseconds(10), kKeys);
  StartMigration(keyed, unordered, traffic);
  std::unique_ptr<Consumer> late;
  EXPECT_THAT(Migrate({"consumers"}, keyed, unordered, true,
                      [&] {
                        late = std::make_unique<Consumer>(nodes_[0]->grpc_address(),
                                                          "late." + topic_, topic_,
                                                          v1::ORDERING_NONE);
                        late_ = late.get();
                      }),
              AllOf(HasSubstr("subscribed meanwhile paused and settled: late."),
                    HasSubstr("stage consumers\n")));
  ASSERT_NE(late, nullptr);
  DrainBoth(keyed, unordered, absl::Seconds(3));
  late->Drain(absl::Seconds(1));
  std::set<std::string> acked;
  for (const testing::SentMessage& m : traffic.Finish()) {
    if (m.result.ok()) acked.insert(m.result.id);
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  auto missing = [&] {
    int n = 0;
    for (const std::string& id : acked) n += !late->Has(id);
    return n;
  };
  while (missing() > 0 && absl::Now() < give_up) late->Drain(absl::Milliseconds(500));
  std::cout << late->Summary() << "\n";
  EXPECT_EQ(missing(), 0) << "acknowledged messages the late group missed";
  EXPECT_LE(late->duplicates(), kInFlightBound) << "the late group read B from the start";
  late_ = nullptr;
}

// Where a group that started at the end began: the latest, over the
// partitions, of the publish time of the first message it got there (a
// partition's messages are in publish order, and B's partition p copies A's).
absl::Time StartOf(const std::vector<testing::SentMessage>& sent,
                   const Consumer& consumer) {
  std::map<int32_t, absl::Time> first;
  for (const testing::SentMessage& s : sent) {
    if (s.result.ok() && consumer.Has(s.result.id)) {
      first.try_emplace(s.result.partition, s.published);
    }
  }
  absl::Time start = absl::InfinitePast();
  for (const auto& [partition, published] : first) start = std::max(start, published);
  return start;
}

// Every acknowledged message handed to the publisher after `since` reached
// `consumer` (waiting up to 60 s), the first deliveries of each key in
// publish order.
void ExpectReceivedSince(const std::vector<testing::SentMessage>& sent,
                         Consumer& consumer, absl::Time since) {
  std::set<std::string> wanted;
  for (const testing::SentMessage& s : sent) {
    if (s.result.ok() && s.published > since) wanted.insert(s.result.id);
  }
  consumer.DrainUntil(wanted, absl::Seconds(60));
  int missing = 0;
  for (const std::string& id : wanted) missing += !consumer.Has(id);
  std::cout << consumer.Summary() << "; " << wanted.size()
            << " published after it started, " << missing << " missing\n";
  EXPECT_GT(wanted.size(), 100u);
  EXPECT_EQ(missing, 0) << "acknowledged messages published after it started";
  EXPECT_EQ(consumer.OrderViolations(), 0);
}

// Groups the consumer stage did not move, because they were not there when it
// listed the groups, start on B where they would have started on A: a group
// whose position on A was set after the stage (an operator's seek), and a
// group that first subscribes after the stage (at A's end, translated) while
// producers still write to A, and again after the producer stage. A group
// with a commit on A that was stopped during the stage (the stage moved it)
// continues from it. Each gets every message published after its start, in
// key order. Without the node's translation, the seeked group started at B's
// end when it was assigned and missed what was published in the 2 s between
// the seek and its start.
TEST_F(MigrationTest, GroupsThatStartAfterTheConsumerStageMissNothingOnTheTarget) {
  Consumer keyed(nodes_[0]->grpc_address(), "keyed." + topic_, topic_, v1::ORDERING_KEY);
  Consumer unordered(nodes_[0]->grpc_address(), "unordered." + topic_, topic_,
                     v1::ORDERING_NONE);
  testing::SteadyTraffic traffic(Addresses(), topic_, absl::Milliseconds(10), kKeys);
  absl::Time stopped_at;
  {
    Consumer stopped(nodes_[1]->grpc_address(), "stopped." + topic_, topic_,
                     v1::ORDERING_KEY);
    StartMigration(keyed, unordered, traffic);
    stopped.Drain(absl::Seconds(1));
    stopped_at = absl::Now();
  }
  EXPECT_THAT(Migrate({"consumers"}, keyed, unordered),
              AllOf(HasSubstr("group stopped."), HasSubstr("stage consumers\n")));

  // An operator sets a new group's position on A: the stage never saw it.
  auto seek = testing::RunFerryCli({"--server", nodes_[0]->grpc_address(), "seek",
                                    "--group", "seeked." + topic_, "--topic", topic_,
                                    "--cluster", "a", "--to", "latest"});
  ASSERT_TRUE(seek.ok()) << seek.status();
  ASSERT_EQ(seek->exit_code, 0) << seek->err;
  const absl::Time seeked_at = absl::Now();
  DrainBoth(keyed, unordered, absl::Seconds(2));

  const absl::Time fresh_opens = absl::Now();
  Consumer fresh(nodes_[1]->grpc_address(), "fresh." + topic_, topic_, v1::ORDERING_KEY,
                 /*from_earliest=*/false);
  Consumer seeked(nodes_[2]->grpc_address(), "seeked." + topic_, topic_, v1::ORDERING_KEY,
                  /*from_earliest=*/false);
  Consumer stopped(nodes_[1]->grpc_address(), "stopped." + topic_, topic_,
                   v1::ORDERING_KEY, /*from_earliest=*/false);
  for (int i = 0; i < 10; ++i) {
    DrainBoth(keyed, unordered, absl::Milliseconds(100));
    for (Consumer* c : {&fresh, &seeked, &stopped}) c->Drain(absl::Milliseconds(100));
  }
  EXPECT_THAT(Migrate({"producers"}, keyed, unordered), HasSubstr("stage producers\n"));
  ASSERT_TRUE(traffic.FirstAckOn("b", absl::InfinitePast(), absl::Seconds(20)));
  const absl::Time fresh_unordered_opens = absl::Now();
  Consumer fresh_unordered(nodes_[2]->grpc_address(), "fresh-unordered." + topic_, topic_,
                           v1::ORDERING_NONE, /*from_earliest=*/false);
  for (int i = 0; i < 10; ++i) {
    DrainBoth(keyed, unordered, absl::Milliseconds(100));
    for (Consumer* c : {&fresh, &seeked, &stopped, &fresh_unordered}) {
      c->Drain(absl::Milliseconds(100));
    }
  }
  const std::vector<testing::SentMessage>& sent = traffic.Finish();
  ExpectReceivedSince(sent, seeked, seeked_at);
  ExpectReceivedSince(sent, stopped, stopped_at);
  // A new group's start at the end is resolved as the node attaches its
  // stream, after answering the open: nothing after it may be missing.
  for (auto [consumer, opens] : {std::pair{&fresh, fresh_opens},
                                 std::pair{&fresh_unordered, fresh_unordered_opens}}) {
    const absl::Time start = StartOf(sent, *consumer);
    std::cout << "started " << absl::FormatDuration(start - opens) << " after its open: ";
    EXPECT_LT(start - opens, absl::Seconds(5));
    ExpectReceivedSince(sent, *consumer, start);
  }
  // Nothing read twice but what B holds twice (the mirror's copies; counted
  // above), never a stretch read again.
  for (const Consumer* c : {&fresh, &seeked, &stopped, &fresh_unordered}) {
    EXPECT_LE(c->duplicates(), kInFlightBound);
  }
}

TEST_F(MigrationTest,
       RollbackFromTheConsumerStageReturnsReadersToTheSourceLosingNothing) {
  Consumer keyed(nodes_[0]->grpc_address(), "keyed." + topic_, topic_, v1::ORDERING_KEY);
  Consumer unordered(nodes_[0]->grpc_address(), "unordered." + topic_, topic_,
                     v1::ORDERING_NONE);
  testing::SteadyTraffic traffic(Addresses(), topic_, absl::Milliseconds(10), kKeys);
  MigrateConsumers(keyed, unordered, traffic);
  const int keyed_before = keyed.duplicates();
  const int unordered_before = unordered.duplicates();
  EXPECT_THAT(Migrate({"rollback"}, keyed, unordered),
              AllOf(HasSubstr("translated back and committed on a"),
                    HasSubstr("stage rolled-back\n")));
  DrainBoth(keyed, unordered, absl::Seconds(2));
  // A finished rollback frees the topic for a new migration.
  EXPECT_THAT(Migrate({"producers"}, keyed, unordered, false),
              HasSubstr("not at stage rolled-back"));
  ExpectEverythingConsumed(traffic.Finish(), keyed, unordered);
  // 3 s of traffic (~300 messages) were read on B.
  ExpectOnlyInFlightAgain("the rollback", keyed, keyed_before, unordered,
                          unordered_before);
}

// Writes moved to B, then the move is undone: B's direct writes are copied
// back to A (a reverse mirror that skips A's own records), each group's
// offsets are translated back, and new writes land on A after a key's last
// B messages.
TEST_F(MigrationTest,
       RollbackFromTheProducerStageBringsWritesAndReadsBackLosingNothingInKeyOrder) {
  Consumer keyed(nodes_[0]->grpc_address(), "keyed." + topic_, topic_, v1::ORDERING_KEY);
  Consumer unordered(nodes_[0]->grpc_address(), "unordered." + topic_, topic_,
                     v1::ORDERING_NONE);
  testing::SteadyTraffic traffic(Addresses(), topic_, absl::Milliseconds(10), kKeys);
  MigrateConsumers(keyed, unordered, traffic);
  EXPECT_THAT(Migrate({"producers"}, keyed, unordered), HasSubstr("stage producers\n"));
  ASSERT_TRUE(traffic.FirstAckOn("b", absl::InfinitePast(), absl::Seconds(20)));
  DrainBoth(keyed, unordered, absl::Seconds(3));

  const int keyed_before = keyed.duplicates();
  const int unordered_before = unordered.duplicates();
  std::string mirrors_during_rollback;
  const absl::Time rollback_start = absl::Now();
  EXPECT_THAT(
      Migrate({"rollback"}, keyed, unordered, true,
              [&] {
                auto list = testing::RunFerryCli(
                    {"--server", nodes_[1]->grpc_address(), "mirror", "list"});
                if (list.ok()) mirrors_during_rollback = list->out;
              }),
      AllOf(HasSubstr("mirror b -> a copied b to its end"),
            HasSubstr("translated back and committed on a"),
            HasSubstr("writes and reads routed to a"), HasSubstr("stage rolled-back\n")));
  std::cout << "mirrors 300 ms into the rollback:\n" << mirrors_during_rollback;
  EXPECT_THAT(mirrors_during_rollback,
              ::testing::ContainsRegex("migrate-back\\.orders\\.[^ ]+ +b +a +[^ ]+ +a "));
  ASSERT_TRUE(traffic.FirstAckOn("a", rollback_start, absl::Seconds(20)))
      << "new writes go to a again";
  DrainBoth(keyed, unordered, absl::Seconds(2));
  EXPECT_THAT(Migrate({"status"}, keyed, unordered), HasSubstr("(no mirror)"));
  ExpectEverythingConsumed(traffic.Finish(), keyed, unordered);
  ExpectOnlyInFlightAgain("the rollback", keyed, keyed_before, unordered,
                          unordered_before);
}

}  // namespace
}  // namespace ferry
