// Idle groups leave the node against a real Kafka broker, also after a group
// whose topic was deleted while it was a member (its librdkafka consumer then
// hung in rd_kafka_destroy, and every later idle group queued behind it).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(30);

class GroupLeaveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::SharedBroker();
    ASSERT_NE(broker_, nullptr);
    auto node = FerrydProcess::Start(testing::MainClusterYaml(broker_->bootstrap()) +
                                     "subscribe:\n"
                                     "  commit_interval: 100ms\n"
                                     "  group_idle_timeout: 1s\n"
                                     // The longest allowed: "not abandoned"
                                     // then means the leave completed, not
                                     // that it was quick on a loaded box.
                                     "  leave_timeout: 10s\n");
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
  }

  std::string Name(const std::string& suffix) const {
    return absl::StrCat("leave.",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                        ".", suffix);
  }

  // A topic with `count` records over `partitions` partitions.
  std::string Topic(const std::string& suffix, int partitions, int count) {
    const std::string topic = Name(suffix);
    EXPECT_TRUE(broker_->CreateTopic(topic, partitions).ok());
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = 0; i < count; ++i) {
      records.emplace_back(absl::StrCat("k", i), std::string(512, 'v'));
    }
    EXPECT_TRUE(testing::ProduceMany(broker_->bootstrap(), topic, records).ok());
    return topic;
  }

  // Opens a stream of `group` on `topic`, takes and acks `count` messages,
  // closes the stream.
  void ConsumeAndClose(const std::string& group, const std::string& topic, size_t count) {
    SubscriberStream stream(node_->grpc_address(), MakeOpen(group, {topic}));
    ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
    for (size_t taken = 0; taken < count;) {
      // Within the stream's default credit (1000 messages).
      std::vector<v1::ReceivedMessage> messages =
          stream.Take(std::min<size_t>(count - taken, 500), kWait);
      ASSERT_FALSE(messages.empty()) << "got " << taken << " of " << count;
      std::vector<std::string> receipts;
      for (const auto& m : messages) receipts.push_back(m.receipt());
      ASSERT_TRUE(stream.Ack(receipts));
      taken += messages.size();
    }
    ASSERT_TRUE(stream.Sync());
    EXPECT_TRUE(stream.Close().ok());
  }

  std::string Metrics() const { return node_->HttpGet("/metrics").second; }

  // Waits until the node dropped the group's series, which it does once the
  // group left.
  bool WaitLeft(const std::string& group, absl::Duration timeout) const {
    const std::string label = absl::StrCat("group=\"", group, "\"");
    const absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      if (Metrics().find(label) == std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  testing::KafkaBroker* broker_ = nullptr;
  std::unique_ptr<FerrydProcess> node_;
};

TEST_F(GroupLeaveTest, GroupWhoseTopicWasDeletedLeavesAndDoesNotHoldUpOthers) {
  // Deep partitions, read in full batches: what python_bench's groups did.
  const std::string doomed_topic = Topic("doomed", 4, 8000);
  const std::string doomed = Name("g1");
  ConsumeAndClose(doomed, doomed_topic, 8000);
  ASSERT_THAT(Metrics(), HasSubstr(absl::StrCat("group=\"", doomed, "\"")));
  // Deleted while the node is still a member (within the idle timeout).
  testing::ProcessResult deleted =
      testing::RunFerryCliOn(*node_, {"topics", "delete", doomed_topic});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;

  const std::string other_topic = Topic("other", 1, 10);
  const std::string other = Name("g2");
  ConsumeAndClose(other, other_topic, 10);

  // An idle timeout (1 s) and a leave: sooner than the bound on a member's
  // leave (subscribe.leave_timeout, 10 s), so it waited for no other group.
  EXPECT_TRUE(WaitLeft(other, absl::Seconds(8)))
      << "an idle group did not leave after a group whose topic was deleted";
  EXPECT_TRUE(WaitLeft(doomed, absl::Seconds(20)))
      << "the group whose topic was deleted never left";
  // It left by itself: librdkafka's destroy completed within the bound.
  EXPECT_THAT(
      Metrics(),
      HasSubstr("ferry_consumers_abandoned_total{cluster=\"main\",kind=\"group\"} 0\n"));
  EXPECT_THAT(node_->Log(), Not(HasSubstr("abandoned")));

  // The first group's name joins again and consumes.
  ConsumeAndClose(doomed, other_topic, 10);
}

}  // namespace
}  // namespace ferry
