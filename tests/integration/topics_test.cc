// Topic administration as an operator meets it: `ferry topics ...` against a
// real ferryd in front of a real Kafka broker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::ProcessResult;
using ::ferry::testing::RunFerryCli;
using ::ferry::testing::SharedBroker;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A node with one cluster, "main", on the shared broker: every topic routes
// there.
std::unique_ptr<FerrydProcess> StartNode() {
  testing::KafkaBroker* broker = SharedBroker();
  if (broker == nullptr) return nullptr;
  auto node = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  EXPECT_TRUE(node.ok()) << node.status();
  return node.ok() ? *std::move(node) : nullptr;
}

// Runs `ferry --server <node> args...`.
ProcessResult Ferry(const FerrydProcess& node, std::vector<std::string> args) {
  args.insert(args.begin(), {"--server", node.grpc_address()});
  auto result = RunFerryCli(args);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{.exit_code = -1};
}

int Lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

// A failed command: non-zero exit, nothing on stdout, one line on stderr.
void ExpectOneLineError(const ProcessResult& result) {
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_EQ(Lines(result.err), 1) << result.err;
}

struct PartitionRow {
  std::string partition, leader, replicas, isr, low, high;
};

// The partition table of `ferry topics describe`.
std::vector<PartitionRow> PartitionTable(const std::string& out) {
  std::vector<PartitionRow> rows;
  bool in_table = false;
  const std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  for (const std::string& line : lines) {
    std::vector<std::string> cells = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!in_table) {
      in_table = !cells.empty() && cells[0] == "PARTITION";
      continue;
    }
    EXPECT_EQ(cells.size(), 6u) << line;
    if (cells.size() == 6) {
      rows.push_back({cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]});
    }
  }
  EXPECT_TRUE(in_table) << out;
  return rows;
}

TEST(Topics, CreatedTopicHasLeadersAndItsWatermarksCountProducedRecords) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);

  ProcessResult create =
      Ferry(*node, {"topics", "create", "topics.orders", "--partitions", "3", "--config",
                    "retention.ms=3600000"});
  EXPECT_EQ(create.exit_code, 0) << create.err;
  EXPECT_THAT(create.out,
              HasSubstr("created topic topics.orders on main with 3 partitions"));

  ProcessResult describe = Ferry(*node, {"topics", "describe", "topics.orders"});
  ASSERT_EQ(describe.exit_code, 0) << describe.err;
  EXPECT_THAT(describe.out, HasSubstr("topic topics.orders  cluster main  partitions 3"));
  std::vector<PartitionRow> rows = PartitionTable(describe.out);
  ASSERT_EQ(rows.size(), 3u) << describe.out;
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].partition, std::to_string(i));
    EXPECT_EQ(rows[i].leader, "1");  // the broker's node id
    EXPECT_EQ(rows[i].replicas, "1");
    EXPECT_EQ(rows[i].isr, "1");
    EXPECT_EQ(rows[i].low, "0");
    EXPECT_EQ(rows[i].high, "0");
  }

  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(testing::ProduceOne(SharedBroker()->bootstrap(), "topics.orders",
                                    absl::StrCat("record ", i))
                    .ok());
  }
  describe = Ferry(*node, {"topics", "describe", "topics.orders"});
  ASSERT_EQ(describe.exit_code, 0) << describe.err;
  int64_t records = 0;
  for (const PartitionRow& row : PartitionTable(describe.out)) {
    records += std::stoll(row.high) - std::stoll(row.low);
  }
  EXPECT_EQ(records, 5) << describe.out;
}

TEST(Topics, CreateWithoutCountsUsesTheBrokersDefaults) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  ProcessResult create = Ferry(*node, {"topics", "create", "topics.defaults"});
  EXPECT_EQ(create.exit_code, 0) << create.err;

  // scripts/kafka/kafka configures num.partitions=1 on a single broker.
  ProcessResult describe = Ferry(*node, {"topics", "describe", "topics.defaults"});
  ASSERT_EQ(describe.exit_code, 0) << describe.err;
  std::vector<PartitionRow> rows = PartitionTable(describe.out);
  ASSERT_EQ(rows.size(), 1u) << describe.out;
  EXPECT_EQ(rows[0].replicas, "1");
}

TEST(Topics, ListShowsACreatedTopicWithItsCluster) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(Ferry(*node, {"topics", "create", "topics.listed"}).exit_code, 0);

  ProcessResult list = Ferry(*node, {"topics", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, AllOf(ContainsRegex("CLUSTER +TOPIC"),
                              ContainsRegex("main +topics\\.listed"),
                              Not(HasSubstr("__consumer_offsets"))));
  EXPECT_THAT(Ferry(*node, {"topics", "list", "--cluster", "main"}).out,
              HasSubstr("topics.listed"));
}

TEST(Topics, CreatingAnExistingTopicFailsWithAlreadyExists) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(Ferry(*node, {"topics", "create", "topics.twice"}).exit_code, 0);

  ProcessResult again = Ferry(*node, {"topics", "create", "topics.twice"});
  ExpectOneLineError(again);
  EXPECT_THAT(again.err, AllOf(HasSubstr("ferry: topics create: "),
                               HasSubstr("ALREADY_EXISTS: create topic topics.twice: "
                                         "TOPIC_ALREADY_EXISTS")));
}

TEST(Topics, BadNameIsInvalidArgumentNamingTheCharacter) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  for (const char* command : {"create", "describe", "delete"}) {
    ProcessResult result = Ferry(*node, {"topics", command, "a b"});
    ExpectOneLineError(result);
    EXPECT_THAT(
        result.err,
        AllOf(HasSubstr("INVALID_ARGUMENT"),
              HasSubstr("topic \"a b\": character ' ' at position 1 is not allowed")))
        << command;
  }
}

TEST(Topics, CountsTheClusterCannotHonourAreInvalidArgument) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  ProcessResult negative =
      Ferry(*node, {"topics", "create", "topics.negative", "--partitions=-2"});
  ExpectOneLineError(negative);
  EXPECT_THAT(negative.err,
              AllOf(HasSubstr("INVALID_ARGUMENT"), HasSubstr("partitions must be >= 0")));

  // One broker cannot hold three replicas; the broker's reason is kept.
  ProcessResult replicas =
      Ferry(*node, {"topics", "create", "topics.replicas", "--replication-factor", "3"});
  ExpectOneLineError(replicas);
  EXPECT_THAT(replicas.err,
              AllOf(HasSubstr("INVALID_ARGUMENT"),
                    HasSubstr("INVALID_REPLICATION_FACTOR"), HasSubstr("broker")));

  ProcessResult config = Ferry(
      *node, {"topics", "create", "topics.config", "--config", "no.such.setting=1"});
  ExpectOneLineError(config);
  EXPECT_THAT(config.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_EQ(Ferry(*node, {"topics", "describe", "topics.config"}).exit_code, 1);
}

TEST(Topics, DescribingAnUnknownTopicIsNotFound) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  ProcessResult result = Ferry(*node, {"topics", "describe", "topics.nowhere"});
  ExpectOneLineError(result);
  EXPECT_THAT(result.err, HasSubstr("NOT_FOUND: describe topic topics.nowhere: "
                                    "UNKNOWN_TOPIC_OR_PART"));
}

TEST(Topics, DeletedTopicIsNotFoundAfterwards) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(
      Ferry(*node, {"topics", "create", "topics.doomed", "--partitions", "2"}).exit_code,
      0);

  ProcessResult deleted = Ferry(*node, {"topics", "delete", "topics.doomed"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_THAT(deleted.out, HasSubstr("deleted topic topics.doomed"));

  ProcessResult describe = Ferry(*node, {"topics", "describe", "topics.doomed"});
  ExpectOneLineError(describe);
  EXPECT_THAT(describe.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(Ferry(*node, {"topics", "list"}).out, Not(HasSubstr("topics.doomed")));

  ProcessResult again = Ferry(*node, {"topics", "delete", "topics.doomed"});
  ExpectOneLineError(again);
  EXPECT_THAT(again.err, HasSubstr("NOT_FOUND"));
}

TEST(Topics, WithTwoClustersAnUnroutedTopicNeedsAClusterName) {
  testing::KafkaBroker* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  auto node = FerrydProcess::Start(
      absl::StrCat("clusters:\n", testing::KafkaClusterEntry("a", broker->bootstrap()),
                   testing::KafkaClusterEntry("b", broker->bootstrap())));
  ASSERT_TRUE(node.ok()) << node.status();

  ProcessResult unrouted = Ferry(**node, {"topics", "create", "topics.unrouted"});
  ExpectOneLineError(unrouted);
  EXPECT_THAT(unrouted.err,
              AllOf(HasSubstr("NOT_FOUND"), HasSubstr("no route for topic")));

  ProcessResult unknown =
      Ferry(**node, {"topics", "create", "topics.unrouted", "--cluster", "nowhere"});
  ExpectOneLineError(unknown);
  EXPECT_THAT(unknown.err,
              HasSubstr("NOT_FOUND: unknown cluster \"nowhere\" (configured: a, b)"));
  ProcessResult list_unknown = Ferry(**node, {"topics", "list", "--cluster", "nowhere"});
  ExpectOneLineError(list_unknown);
  EXPECT_THAT(list_unknown.err, HasSubstr("unknown cluster \"nowhere\""));

  ProcessResult named =
      Ferry(**node, {"topics", "create", "topics.unrouted", "--cluster", "b"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_THAT(named.out, HasSubstr("created topic topics.unrouted on b"));
}

TEST(Topics, ListNamesAClusterThatIsDown) {
  testing::KafkaBroker* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  auto ports = testing::PickFreePorts(1);
  ASSERT_TRUE(ports.ok()) << ports.status();
  auto node = FerrydProcess::Start(absl::StrCat(
      "cluster_probe: { interval: 500ms, timeout: 1s }\nclusters:\n",
      testing::KafkaClusterEntry("main", broker->bootstrap()),
      testing::KafkaClusterEntry("dead", absl::StrCat("127.0.0.1:", (*ports)[0]))));
  ASSERT_TRUE(node.ok()) << node.status();

  ProcessResult all = Ferry(**node, {"topics", "list"});
  ExpectOneLineError(all);
  EXPECT_THAT(all.err,
              AllOf(HasSubstr("UNAVAILABLE"), HasSubstr("cluster \"dead\" is down")));
  EXPECT_EQ(Ferry(**node, {"topics", "list", "--cluster", "main"}).exit_code, 0);
}

}  // namespace
}  // namespace ferry
