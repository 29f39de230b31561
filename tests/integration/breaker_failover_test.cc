// Per-cluster circuit breakers against two real Kafka brokers: a route
// `write: [primary, standby]` moves its writes to the standby when the
// primary is killed, loses no acknowledged message, keeps each key's order
// within each cluster, and comes back to the primary once it recovers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/steady_traffic.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::testing::HasSubstr;

constexpr int kPartitions = 4;
constexpr int kKeys = 20;
// Short, so recovery fits the suite's time budget.
constexpr absl::Duration kOpenFor = absl::Seconds(5);

std::string NodeYaml(const KafkaBroker& primary, const KafkaBroker& standby) {
  return absl::StrCat("clusters:\n",
                      testing::KafkaClusterEntry("primary", primary.bootstrap()), "\n",
                      testing::KafkaClusterEntry("standby", standby.bootstrap()),
                      R"(
routes:
  - topic: "orders.*"
    write: [primary, standby]
    read: [primary, standby]
# The control topic must not live on the cluster the test kills.
control: { cluster: standby }
breaker: { open_for: 5s }
)");
}

class BreakerFailover : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto primary = KafkaBroker::Start("primary");
    auto standby = KafkaBroker::Start("standby");
    ASSERT_TRUE(primary.ok()) << primary.status();
    ASSERT_TRUE(standby.ok()) << standby.status();
    primary_ = primary->release();
    standby_ = standby->release();
  }
  static void TearDownTestSuite() {
    delete primary_;
    delete standby_;
  }
  void SetUp() override {
    ASSERT_NE(primary_, nullptr);
    ASSERT_NE(standby_, nullptr);
  }

  static KafkaBroker* primary_;
  static KafkaBroker* standby_;
};
KafkaBroker* BreakerFailover::primary_ = nullptr;
KafkaBroker* BreakerFailover::standby_ = nullptr;

std::vector<int32_t> AllPartitions() {
  std::vector<int32_t> out;
  for (int p = 0; p < kPartitions; ++p) out.push_back(p);
  return out;
}

// Per key, the sequence numbers a cluster holds in offset order.
std::map<std::string, std::vector<int>> SequencesByKey(
    const std::vector<testing::ConsumedRecord>& records) {
  std::vector<const testing::ConsumedRecord*> sorted;
  for (const auto& r : records) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) {
    return std::tie(a->partition, a->offset) < std::tie(b->partition, b->offset);
  });
  std::map<std::string, std::vector<int>> out;
  for (const auto* r : sorted) {
    std::vector<std::string> parts = absl::StrSplit(r->value, ':');
    int seq = -1;
    EXPECT_TRUE(parts.size() == 2 && absl::SimpleAtoi(parts[1], &seq)) << r->value;
    out[r->key].push_back(seq);
  }
  return out;
}

std::set<std::string> Ids(const std::vector<testing::ConsumedRecord>& records) {
  std::set<std::string> ids;
  for (const auto& r : records) {
    for (const auto& [k, v] : r.headers) {
      if (k == "ferry.id") ids.insert(v);
    }
  }
  return ids;
}

std::string Status(const FerrydProcess& node) {
  auto status = testing::RunFerryCli({"--server", node.grpc_address(), "status"});
  return status.ok() ? status->out : status.status().ToString();
}

TEST_F(BreakerFailover, WritesMoveToTheStandbyWhenThePrimaryDiesAndComeBack) {
  const std::string topic = "orders.failover";
  ASSERT_TRUE(primary_->CreateTopic(topic, kPartitions).ok());
  ASSERT_TRUE(standby_->CreateTopic(topic, kPartitions).ok());
  auto node = FerrydProcess::Start(NodeYaml(*primary_, *standby_));
  ASSERT_TRUE(node.ok()) << node.status();

  testing::SteadyTraffic traffic({(*node)->grpc_address()}, topic, absl::Milliseconds(5),
                                 kKeys);
  ASSERT_TRUE(traffic.FirstAckOn("primary", absl::InfinitePast(), absl::Seconds(20)));
  absl::SleepFor(absl::Seconds(1));

  ASSERT_TRUE(primary_->Kill9().ok());
  const absl::Time killed = absl::Now();
  auto on_standby = traffic.FirstAckOn("standby", killed, absl::Seconds(15));
  ASSERT_TRUE(on_standby.has_value()) << (*node)->Log();
  const absl::Duration failover = *on_standby - killed;
  std::cout << "failover: kill -9 of the primary -> first acknowledged write on the "
               "standby in "
            << absl::FormatDuration(failover) << "\n";
  EXPECT_LE(failover, absl::Seconds(5));
  EXPECT_THAT(Status(**node), HasSubstr("breaker open"));
  auto metrics = (*node)->HttpGet("/metrics");
  EXPECT_THAT(metrics.second,
              HasSubstr("ferry_cluster_breaker_state{cluster=\"primary\"} 2"));
  EXPECT_THAT(metrics.second,
              HasSubstr("ferry_cluster_failovers_total{cluster=\"primary\"} 1"));

  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(primary_->Restart().ok());
  const absl::Time restarted = absl::Now();
  auto back = traffic.FirstAckOn("primary", restarted, kOpenFor + absl::Seconds(10));
  ASSERT_TRUE(back.has_value()) << (*node)->Log();
  std::cout << "recovery: primary answering -> writes back on it in "
            << absl::FormatDuration(*back - restarted) << "\n";
  EXPECT_LE(*back - restarted, kOpenFor + absl::Seconds(5));
  const std::string log = (*node)->Log();
  EXPECT_THAT(log, HasSubstr("cluster primary breaker closed->open"));
  EXPECT_THAT(log, HasSubstr("cluster primary breaker open->half-open"));
  EXPECT_THAT(log, HasSubstr("cluster primary breaker half-open->closed"));
  EXPECT_THAT(Status(**node), HasSubstr("breaker closed"));
  absl::SleepFor(absl::Seconds(1));

  const std::vector<testing::SentMessage>& sent = traffic.Finish();
  std::map<std::string, std::set<std::string>> acknowledged;  // cluster -> ids
  int failed = 0;
  for (const testing::SentMessage& s : sent) {
    if (s.result.ok()) {
      acknowledged[s.result.cluster].insert(s.result.id);
    } else {
      ++failed;
      if (failed <= 5) ADD_FAILURE() << s.result.code << " " << s.result.error;
    }
  }
  std::cout << "published " << sent.size() << ": " << acknowledged["primary"].size()
            << " on the primary, " << acknowledged["standby"].size()
            << " on the standby, " << failed << " failed\n";
  EXPECT_EQ(failed, 0);
  EXPECT_GT(acknowledged["standby"].size(), 0u);

  // Every acknowledged message is on the cluster the SDK was told, and per
  // cluster each key's messages are in publish order (a message written on
  // the primary whose answer was lost may be there once more, next to
  // itself: ferry.id lets consumers drop it).
  for (auto [name, broker] : {std::pair{"primary", primary_}, {"standby", standby_}}) {
    auto records = testing::ConsumeToEnd(broker->bootstrap(), topic, AllPartitions());
    ASSERT_TRUE(records.ok()) << records.status();
    const std::set<std::string> stored = Ids(*records);
    size_t missing = 0;
    for (const std::string& id : acknowledged[name])
      missing += stored.contains(id) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << "acknowledged messages missing from " << name;
    for (const auto& [key, seqs] : SequencesByKey(*records)) {
      for (size_t i = 1; i < seqs.size(); ++i) {
        EXPECT_LE(seqs[i - 1], seqs[i]) << name << " " << key << " out of order at " << i;
      }
    }
  }
}

TEST_F(BreakerFailover, ADeadClusterWithoutTrafficOpensByItsProbe) {
  auto node = FerrydProcess::Start(NodeYaml(*primary_, *standby_));
  ASSERT_TRUE(node.ok()) << node.status();
  const std::string open = "ferry_cluster_breaker_state{cluster=\"primary\"} 2";
  ASSERT_THAT((*node)->HttpGet("/metrics").second,
              HasSubstr("ferry_cluster_breaker_state{cluster=\"primary\"} 0"));

  ASSERT_TRUE(primary_->Kill9().ok());
  const absl::Time killed = absl::Now();
  while (absl::Now() - killed < absl::Seconds(10) &&
         (*node)->HttpGet("/metrics").second.find(open) == std::string::npos) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const absl::Duration opened = absl::Now() - killed;
  std::cout << "no traffic: kill -9 -> breaker open in " << absl::FormatDuration(opened)
            << "\n";
  EXPECT_THAT((*node)->HttpGet("/metrics").second, HasSubstr(open));
  EXPECT_LE(opened, absl::Seconds(5));
  EXPECT_THAT((*node)->Log(), HasSubstr("metadata probe failing for"));
}

}  // namespace
}  // namespace ferry
