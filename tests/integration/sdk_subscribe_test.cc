// The C++ SDK Subscriber and the `ferry consume` / `groups` / `seek` /
// `pause` commands against real ferryd nodes and a real Kafka broker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ferry/client/subscriber.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::RunFerryCli;
using ::ferry::testing::SharedBroker;
using ::testing::HasSubstr;

class SdkSubscribeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = SharedBroker();
    ASSERT_NE(broker_, nullptr);
  }

  std::string Name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  std::string Topic(int partitions, int count) {
    std::string topic = absl::StrCat("sdk-subscribe.", Name());
    EXPECT_TRUE(broker_->CreateTopic(topic, partitions).ok());
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = 0; i < count; ++i) {
      records.emplace_back(absl::StrCat("k", i % 7), absl::StrCat("v", i));
    }
    if (count > 0) {
      EXPECT_TRUE(testing::ProduceMany(broker_->bootstrap(), topic, records).ok());
    }
    return topic;
  }

  std::unique_ptr<FerrydProcess> Node() {
    auto node = FerrydProcess::Start(
        testing::MainClusterYaml(broker_->bootstrap()) +
        "subscribe:\n  commit_interval: 100ms\n  group_idle_timeout: 0s\n");
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  testing::ProcessResult Cli(const FerrydProcess& node, std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", node.grpc_address()});
    auto result = RunFerryCli(args);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : testing::ProcessResult{.exit_code = -1};
  }

  KafkaBroker* broker_ = nullptr;
};

TEST_F(SdkSubscribeTest, CallbackSubscriberOnTwoNodesReceivesEverythingInKeyOrder) {
  const std::string topic = Topic(4, 2000);
  auto a = Node();
  auto b = Node();
  ASSERT_TRUE(a && b);
  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> offsets_by_key;  // per partition+key
  std::set<std::string> values;
  std::atomic<int> handled{0};
  std::string error;
  auto subscriber =
      client::Subscriber::Builder()
          .Endpoints({a->grpc_address(), b->grpc_address()})
          .Group(Name())
          .Topics({topic})
          .Ordering(client::Ordering::kKey)
          .StartAt(client::StartPosition::Earliest())
          .HandlerThreads(4)
          .OnMessage([&](const client::ReceivedMessage& m, client::AckHandle handle) {
            {
              std::lock_guard lock(mu);
              offsets_by_key[absl::StrCat(m.partition, "/", m.key)].push_back(m.offset);
              values.insert(m.value);
            }
            handle.Ack();
            ++handled;
          })
          .Build(&error);
  ASSERT_NE(subscriber, nullptr) << error;
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (absl::Now() < until) {
    {
      std::lock_guard lock(mu);
      if (values.size() == 2000) break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(subscriber->Close(std::chrono::seconds(10)));
  std::lock_guard lock(mu);
  EXPECT_EQ(values.size(), 2000u);
  for (const auto& [key, offsets] : offsets_by_key) {
    EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end())) << key;
  }
}

TEST_F(SdkSubscribeTest, ConsumeGroupsSeekAndPauseFromTheCli) {
  const std::string topic = Topic(2, 0);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(RunFerryCli({"--server", node->grpc_address(), "produce", "--topic", topic},
                        {}, "one\ntwo\nthree\n")
                ->exit_code,
            0);

  auto consumed = Cli(*node, {"consume", "--group", Name(), "--topic", topic, "--from",
                              "earliest", "--count", "3"});
  ASSERT_EQ(consumed.exit_code, 0) << consumed.err;
  std::vector<std::string> lines = absl::StrSplit(consumed.out, '\n', absl::SkipEmpty());
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre("one", "two", "three"));

  // Acks were flushed on exit: the group's lag drops to zero.
  testing::ProcessResult describe;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  do {
    describe = Cli(*node, {"groups", "describe", Name()});
  } while (describe.out.find("  3  ") == std::string::npos && absl::Now() < until);
  EXPECT_THAT(describe.out, HasSubstr(topic)) << describe.err;
  EXPECT_THAT(Cli(*node, {"groups", "list"}).out, HasSubstr(Name()));

  // Rewind the idle group and read the same three again, as JSON.
  auto seek =
      Cli(*node, {"seek", "--group", Name(), "--topic", topic, "--to", "earliest"});
  ASSERT_EQ(seek.exit_code, 0) << seek.err;
  auto again = Cli(*node, {"consume", "--group", Name(), "--topic", topic, "--count", "3",
                           "--format", "json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("\"value\":\"two\""));
  EXPECT_THAT(again.out, HasSubstr(absl::StrCat("\"topic\":\"", topic, "\"")));

  auto paused = Cli(*node, {"pause", "--group", Name()});
  EXPECT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_THAT(paused.out, HasSubstr("paused group"));
  EXPECT_THAT(Cli(*node, {"groups", "list"}).out, HasSubstr("yes"));
  EXPECT_EQ(Cli(*node, {"resume", "--group", Name()}).exit_code, 0);

  auto bad = Cli(*node, {"seek", "--group", Name(), "--to", "yesterday"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--to"));
  auto unknown = Cli(
      *node, {"consume", "--group", Name(), "--topic", "no.such.topic", "--count", "1"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no.such.topic"));
}

}  // namespace
}  // namespace ferry
