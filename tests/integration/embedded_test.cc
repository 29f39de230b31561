// ferryd as a newcomer first runs it: no configuration at all, so it serves
// every topic from the embedded store in ./ferry-data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "testing/ferryd_process.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::ProcessResult;
using ::ferry::testing::RunFerryCli;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// Each test has a fresh working directory for the nodes it starts (and
// `ferryd` run directly): they put ./ferry-data there.
class EmbeddedNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/ferry-embedded-node-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  ProcessResult Ferry(const FerrydProcess& node, std::vector<std::string> args,
                      const std::string& input = "") {
    args.insert(args.begin(), {"--server", node.grpc_address()});
    auto result = RunFerryCli(args, {}, input);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : ProcessResult{.exit_code = -1};
  }

  // Sum of (high - low) over the partition table of `ferry topics describe`.
  int64_t StoredRecords(const FerrydProcess& node, const std::string& topic) {
    ProcessResult describe = Ferry(node, {"topics", "describe", topic});
    EXPECT_EQ(describe.exit_code, 0) << describe.err;
    EXPECT_THAT(describe.out, HasSubstr("cluster local"));
    int64_t records = 0;
    bool in_table = false;
    const std::vector<std::string> lines =
        absl::StrSplit(describe.out, '\n', absl::SkipEmpty());
    for (const std::string& line : lines) {
      std::vector<std::string> cells = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (!in_table) {
        in_table = !cells.empty() && cells[0] == "PARTITION";
      } else if (cells.size() == 6) {
        records += std::stoll(cells[5]) - std::stoll(cells[4]);
      }
    }
    EXPECT_TRUE(in_table) << describe.out;
    return records;
  }

  std::string dir_;
};

TEST_F(EmbeddedNodeTest, FerrydWithoutClustersStoresPublishedRecordsInFerryData) {
  auto node = FerrydProcess::Start("", {}, dir_);
  ASSERT_TRUE(node.ok()) << node.status();

  ProcessResult produce =
      Ferry(**node, {"produce", "--topic", "first.steps"}, "hello\nworld\nagain\n");
  EXPECT_EQ(produce.exit_code, 0) << produce.err;
  EXPECT_THAT(produce.out, HasSubstr("sent 3, failed 0"));
  EXPECT_EQ(StoredRecords(**node, "first.steps"), 3);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/ferry-data/CURRENT"));

  ProcessResult clusters = Ferry(**node, {"status"});
  EXPECT_EQ(clusters.exit_code, 0) << clusters.err;
  EXPECT_THAT(clusters.out, HasSubstr("local"));
}

// metrics.max_series_per_family reaches the node's registry: with a bound
// of one series per family, the second cluster's ferry_cluster_up series is
// refused and counted.
TEST_F(EmbeddedNodeTest, MetricsBeyondTheSeriesBoundAreDroppedAndCounted) {
  auto node = FerrydProcess::Start(
      "metrics: { max_series_per_family: 1 }\n"
      "clusters:\n"
      "  a: { type: embedded, path: store-a }\n"
      "  b: { type: embedded, path: store-b }\n",
      {}, dir_);
  ASSERT_TRUE(node.ok()) << node.status();

  auto [code, metrics] = (*node)->HttpGet("/metrics");

  EXPECT_EQ(code, 200);
  EXPECT_THAT(metrics, HasSubstr("ferry_cluster_up{cluster=\"a\",type=\"embedded\"} 1"));
  EXPECT_THAT(metrics, ::testing::Not(HasSubstr("ferry_cluster_up{cluster=\"b\"")));
  EXPECT_THAT(
      metrics,
      HasSubstr("ferry_metrics_series_dropped_total{family=\"ferry_cluster_up\"} 1"));
}

TEST_F(EmbeddedNodeTest, RecordsSurviveARestartAndASecondNodeCannotShareTheStore) {
  {
    auto node = FerrydProcess::Start("", {}, dir_);
    ASSERT_TRUE(node.ok()) << node.status();
    ProcessResult produce = Ferry(**node, {"produce", "--topic", "kept"}, "a\nb\n");
    ASSERT_EQ(produce.exit_code, 0) << produce.err;

    // The store is locked while the first node runs.
    auto second = testing::RunFerryd(
        {"--set", "listen.grpc=127.0.0.1:1", "--set", "listen.http=127.0.0.1:2"}, {},
        absl::Seconds(30), dir_);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_NE(second->exit_code, 0);
    EXPECT_THAT(second->out + second->err, HasSubstr("ferry-data"));
    EXPECT_THAT(second->out + second->err, HasSubstr("LOCK"));

    (*node)->process().Signal(SIGTERM);
    ASSERT_TRUE((*node)->process().Wait(absl::Seconds(20)).ok());
  }
  auto node = FerrydProcess::Start("", {}, dir_);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(StoredRecords(**node, "kept"), 2);
}

TEST_F(EmbeddedNodeTest, SubscribersReceivePublishedRecordsAndResumeAfterTheAckedOnes) {
  auto node = FerrydProcess::Start("", {}, dir_);
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_EQ(Ferry(**node, {"produce", "--topic", "sub"}, "one\ntwo\n").exit_code, 0);
  ProcessResult unknown = Ferry(**node, {"groups", "describe", "readers"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("unknown group \"readers\""));

  std::vector<std::string> values;
  {
    testing::SubscriberStream stream((*node)->grpc_address(),
                                     testing::MakeOpen("readers", {"sub"}));
    ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
    // A record published while subscribed arrives as well.
    ASSERT_EQ(Ferry(**node, {"produce", "--topic", "sub"}, "three\n").exit_code, 0);
    std::vector<std::string> receipts;
    for (const auto& m : stream.Take(3, absl::Seconds(20))) {
      values.push_back(m.value());
      receipts.push_back(m.receipt());
      EXPECT_EQ(m.cluster(), "local");
    }
    ASSERT_TRUE(stream.Ack(receipts));
    EXPECT_TRUE(stream.Close().ok());
  }
  // Keyless records may land on different partitions: no order across them.
  EXPECT_THAT(values, UnorderedElementsAre("one", "two", "three"));
  EXPECT_EQ(Ferry(**node, {"groups", "describe", "readers"}).exit_code, 0);

  // The group continues after what it acked.
  ASSERT_EQ(Ferry(**node, {"produce", "--topic", "sub"}, "four\n").exit_code, 0);
  testing::SubscriberStream stream((*node)->grpc_address(),
                                   testing::MakeOpen("readers", {"sub"}));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  std::optional<v1::ReceivedMessage> next = stream.Next(absl::Seconds(20));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->value(), "four");
}

}  // namespace
}  // namespace ferry
