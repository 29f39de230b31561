// Issue 16 end to end, on two real Kafka brokers and two ferryd nodes: an SDK
// publishes keyed messages through both nodes to a route
// `write: [primary, standby]`, `read: [primary, standby]` while a
// key-ordered group consumes both clusters. The primary is killed (kill -9)
// and restarted, or hung and resumed (SIGSTOP / SIGCONT) several times. No
// acknowledged message is lost, the group receives every one, and per
// cluster each key's messages arrive in publish order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/steady_traffic.h"
#include "testing/traffic_consumer.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::TrafficConsumer;
using ::testing::HasSubstr;

constexpr int kPartitions = 3;
constexpr int kKeys = 12;
constexpr absl::Duration kOpenFor = absl::Seconds(4);

class Failover : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto primary = KafkaBroker::Start("fo-primary");
    auto standby = KafkaBroker::Start("fo-standby");
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
    topic_ = absl::StrCat(
        "orders.", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(primary_->CreateTopic(topic_, kPartitions).ok());
    ASSERT_TRUE(standby_->CreateTopic(topic_, kPartitions).ok());
    for (int i = 0; i < 2; ++i) {
      auto node = FerrydProcess::Start(absl::StrCat(
          "clusters:\n", testing::KafkaClusterEntry("primary", primary_->bootstrap()),
          testing::KafkaClusterEntry("standby", standby_->bootstrap()),
          "routes:\n  - { topic: \"orders.*\", write: [primary, standby], read: "
          "[primary, standby] }\n",
          // The control topic must not live on the cluster the test breaks.
          "control: { cluster: standby, topic: __ferry_control.", topic_, " }\n",
          "breaker: { open_for: 4s }\n", "subscribe: { commit_interval: 200ms }\n"));
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(*std::move(node));
    }
  }

  std::vector<std::string> Addresses() const {
    return {nodes_[0]->grpc_address(), nodes_[1]->grpc_address()};
  }

  // Every acknowledged id by cluster; fails the test for each failed message.
  std::map<std::string, std::set<std::string>> Acknowledged(
      const std::vector<testing::SentMessage>& sent) {
    sent_ = &sent;
    std::map<std::string, std::set<std::string>> acknowledged;
    int failed = 0;
    for (const testing::SentMessage& s : sent) {
      if (s.result.ok()) {
        acknowledged[s.result.cluster].insert(s.result.id);
      } else if (++failed <= 5) {
        ADD_FAILURE() << s.result.code << " " << s.result.error;
      }
    }
    std::cout << "published " << sent.size() << ": " << acknowledged["primary"].size()
              << " on the primary, " << acknowledged["standby"].size()
              << " on the standby, " << failed << " failed\n";
    return acknowledged;
  }

  // The group got every acknowledged message, and per cluster each key's
  // first deliveries are in publish order.
  void ExpectConsumed(const TrafficConsumer& consumer,
                      const std::map<std::string, std::set<std::string>>& acked) {
    std::map<std::string, std::vector<std::string>> missing;  // cluster -> ids
    for (const auto& [cluster, ids] : acked) {
      for (const std::string& id : ids) {
        if (!consumer.Has(id)) missing[cluster].push_back(id);
      }
    }
    for (const auto& [cluster, ids] : missing) {
      ADD_FAILURE() << ids.size() << " messages acknowledged on " << cluster
                    << " never reached the group, e.g. " << ids.front();
    }
    if (!missing.empty()) ExplainMissing(missing, consumer);
    for (const auto& [where, seqs] : consumer.sequences_by_cluster()) {
      for (size_t i = 1; i < seqs.size(); ++i) {
        ASSERT_LT(seqs[i - 1], seqs[i])
            << where.first << " " << where.second << " out of order at " << i;
      }
    }
  }

  // Where the missing messages were written, where the group stands on
  // each cluster, and what the consuming node logged about the group.
  void ExplainMissing(const std::map<std::string, std::vector<std::string>>& missing,
                      const TrafficConsumer& consumer) {
    std::set<std::string> wanted;
    for (const auto& [cluster, ids] : missing) wanted.insert(ids.begin(), ids.end());
    for (const testing::SentMessage& s : *sent_) {
      if (!wanted.contains(s.result.id)) continue;
      std::cout << "missing: key-" << s.key << " seq " << s.seq << " on "
                << s.result.cluster << " " << topic_ << "/" << s.result.partition << "@"
                << s.result.offset << " acked at " << s.completed;
      const auto& sequences = consumer.sequences_by_cluster();
      auto got = sequences.find({s.result.cluster, absl::StrCat("key-", s.key)});
      if (got != sequences.end()) {
        std::cout << "; the group got " << got->second.size()
                  << " of the key there, last " << got->second.back();
      }
      std::cout << "\n";
    }
    auto describe = testing::RunFerryCli(
        {"--server", nodes_[0]->grpc_address(), "groups", "describe", "failover"});
    if (describe.ok()) std::cout << describe->out << describe->err << "\n";
    auto [code, metrics] = nodes_[0]->HttpGet("/metrics");
    for (const std::string& line :
         std::vector<std::string>(absl::StrSplit(metrics, '\n'))) {
      if ((absl::StartsWith(line, "ferry_subscribe_lag") ||
           absl::StartsWith(line, "ferry_subscribe_delivered") ||
           absl::StartsWith(line, "ferry_subscribe_acked")) &&
          absl::StrContains(line, "failover")) {
        std::cout << "node0 metric: " << line << "\n";
      }
    }
    for (const std::string& line :
         std::vector<std::string>(absl::StrSplit(nodes_[0]->Log(), '\n'))) {
      if (absl::StrContains(line, "failover") || absl::StrContains(line, "error") ||
          absl::StrContains(line, "warn")) {
        std::cout << "node0: " << line << "\n";
      }
    }
  }

  const std::vector<testing::SentMessage>* sent_ = nullptr;
  static KafkaBroker* primary_;
  static KafkaBroker* standby_;
  std::string topic_;
  std::vector<std::unique_ptr<FerrydProcess>> nodes_;
};
KafkaBroker* Failover::primary_ = nullptr;
KafkaBroker* Failover::standby_ = nullptr;

TEST_F(Failover, KillingThePrimaryLosesNothingAndTheGroupDrainsBothClusters) {
  TrafficConsumer consumer(nodes_[0]->grpc_address(), "failover", topic_,
                           v1::ORDERING_KEY);
  testing::SteadyTraffic traffic(Addresses(), topic_, absl::Milliseconds(5), kKeys);
  ASSERT_TRUE(traffic.FirstAckOn("primary", absl::InfinitePast(), absl::Seconds(20)));
  consumer.Drain(absl::Seconds(1));

  ASSERT_TRUE(primary_->Kill9().ok());
  const absl::Time killed = absl::Now();
  consumer.Drain(absl::Seconds(1));
  auto on_standby = traffic.FirstAckOn("standby", killed, absl::Seconds(15));
  ASSERT_TRUE(on_standby.has_value());
  std::cout << "failover through two nodes: kill -9 -> first write acknowledged on the "
               "standby in "
            << absl::FormatDuration(*on_standby - killed) << "\n";
  EXPECT_LE(*on_standby - killed, absl::Seconds(5));
  consumer.Drain(absl::Seconds(2));

  ASSERT_TRUE(primary_->Restart().ok());
  const absl::Time restarted = absl::Now();
  consumer.Drain(absl::Seconds(1));
  auto back = traffic.FirstAckOn("primary", restarted, kOpenFor + absl::Seconds(15));
  ASSERT_TRUE(back.has_value());
  std::cout << "recovery: restart -> writes back on the primary in "
            << absl::FormatDuration(*back - restarted) << "\n";
  consumer.Drain(absl::Seconds(1));

  const auto acknowledged = Acknowledged(traffic.Finish());
  EXPECT_GT(acknowledged.at("standby").size(), 0u);
  std::set<std::string> all;
  for (const auto& [cluster, ids] : acknowledged) all.insert(ids.begin(), ids.end());
  const absl::Time finished = absl::Now();
  consumer.DrainUntil(all, absl::Seconds(60));
  std::cout << "the group had every acknowledged message "
            << absl::FormatDuration(absl::Now() - finished)
            << " after publishing stopped\n";
  ExpectConsumed(consumer, acknowledged);
}

// spdlog's "[2026-12-04 14:15:11.172]" prefix of a log line.
absl::Time LogTime(const std::string& line) {
  absl::CivilSecond second;
  if (line.size() < 25 || !absl::ParseCivilTime(line.substr(1, 19), &second)) {
    return absl::InfinitePast();
  }
  int millis = 0;
  if (!absl::SimpleAtoi(line.substr(21, 3), &millis)) return absl::InfinitePast();
  return absl::FromCivil(second, absl::UTCTimeZone()) + absl::Milliseconds(millis);
}

// Given a primary that hangs (SIGSTOP) and resumes (SIGCONT) three times,
// then nothing acknowledged is lost, and every open period of its breaker on
// each node lasts at least open_for: traffic never swings back faster.
TEST_F(Failover, AFlappingPrimaryNeitherLosesMessagesNorSwingsTrafficFasterThanOpenFor) {
  TrafficConsumer consumer(nodes_[0]->grpc_address(), "failover", topic_,
                           v1::ORDERING_KEY);
  testing::SteadyTraffic traffic(Addresses(), topic_, absl::Milliseconds(5), kKeys);
  ASSERT_TRUE(traffic.FirstAckOn("primary", absl::InfinitePast(), absl::Seconds(20)));
  for (int cycle = 0; cycle < 3; ++cycle) {
    ASSERT_TRUE(primary_->Pause().ok());
    consumer.Drain(absl::Seconds(5));
    ASSERT_TRUE(primary_->Resume().ok());
    consumer.Drain(absl::Seconds(3));
  }
  consumer.Drain(kOpenFor + absl::Seconds(8));  // a last chance to close
  const auto acknowledged = Acknowledged(traffic.Finish());
  std::set<std::string> all;
  for (const auto& [cluster, ids] : acknowledged) all.insert(ids.begin(), ids.end());
  consumer.DrainUntil(all, absl::Seconds(60));
  ExpectConsumed(consumer, acknowledged);

  const std::regex opened("cluster primary breaker [a-z-]+->open");
  const std::regex half_open("cluster primary breaker open->half-open");
  for (const auto& node : nodes_) {
    int trips = 0;
    absl::Time last_open = absl::InfinitePast();
    for (const std::string& line :
         std::vector<std::string>(absl::StrSplit(node->Log(), '\n'))) {
      if (std::regex_search(line, opened)) {
        ++trips;
        last_open = LogTime(line);
      } else if (std::regex_search(line, half_open) &&
                 last_open != absl::InfinitePast()) {
        EXPECT_GE(LogTime(line) - last_open, kOpenFor - absl::Milliseconds(50)) << line;
      }
    }
    std::cout << "node " << node->grpc_address() << ": primary's breaker opened " << trips
              << " times\n";
    EXPECT_GE(trips, 1);
  }
}

}  // namespace
}  // namespace ferry
