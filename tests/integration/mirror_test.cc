// Mirror jobs between two real Kafka brokers through ferryd: a live topic is
// copied partition for partition while producers keep writing and a node
// running part of the job is killed; the target ends with every source
// record, in source order per partition (first occurrences), with
// ferry.origin, and duplicates only from the uncommitted window.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::testing::HasSubstr;

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return context;
}

std::string Header(const testing::ConsumedRecord& record, const std::string& key) {
  for (const auto& [k, v] : record.headers) {
    if (k == key) return v;
  }
  return "";
}

class MirrorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto broker = KafkaBroker::Start("mirror-target");
    ASSERT_TRUE(broker.ok()) << broker.status();
    target_ = broker->release();
  }
  static void TearDownTestSuite() {
    delete target_;
    target_ = nullptr;
  }

  void SetUp() override {
    source_ = testing::SharedBroker();
    ASSERT_NE(source_, nullptr);
    ASSERT_NE(target_, nullptr);
  }

  std::string Name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  std::unique_ptr<FerrydProcess> Node() {
    auto node = FerrydProcess::Start(
        absl::StrCat("clusters:\n", testing::KafkaClusterEntry("a", source_->bootstrap()),
                     testing::KafkaClusterEntry("b", target_->bootstrap()),
                     "control: { cluster: a, topic: __ferry_control.", Name(), " }\n",
                     "routes:\n  - { topic: \"*\", write: [a] }\n",
                     "subscribe: { session_timeout: 6s, commit_interval: 200ms }\n"));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static std::unique_ptr<v1::Admin::Stub> Admin(const FerrydProcess& node) {
    return v1::Admin::NewStub(
        grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()));
  }

  static grpc::Status StartMirror(const FerrydProcess& node, const std::string& name,
                                  const std::string& from, const std::string& to,
                                  const std::string& topic) {
    v1::StartMirrorRequest request;
    request.mutable_job()->set_name(name);
    request.mutable_job()->set_source(from);
    request.mutable_job()->set_target(to);
    request.mutable_job()->add_topics(topic);
    v1::MirrorJob job;
    return Admin(node)->StartMirror(Context().get(), request, &job);
  }

  static KafkaBroker* target_;
  KafkaBroker* source_ = nullptr;
};

KafkaBroker* MirrorTest::target_ = nullptr;

// Given a topic producers keep writing to and two nodes running its mirror
// job, when one node is killed mid-copy, then the other takes its partitions
// over from the committed offsets and, once the producers stop, the target
// holds every source record in order per partition.
TEST_F(MirrorTest, ALiveTopicIsCopiedInOrderAcrossANodeKill) {
  const std::string topic = absl::StrCat("mirror.", Name());
  constexpr int kPartitions = 3;
  ASSERT_TRUE(source_->CreateTopic(topic, kPartitions).ok());
  auto node1 = Node();
  auto node2 = Node();
  ASSERT_TRUE(node1 && node2);

  std::atomic<bool> producing{true};
  std::atomic<int> produced{0};
  std::thread producer([&] {
    while (producing) {
      std::vector<std::pair<std::string, std::string>> batch;
      for (int i = 0; i < 200; ++i) {
        const int seq = produced + i;
        batch.emplace_back(absl::StrCat("k", seq % 10), absl::StrCat("v", seq));
      }
      ASSERT_TRUE(testing::ProduceMany(source_->bootstrap(), topic, batch).ok());
      produced += 200;
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  absl::SleepFor(absl::Seconds(1));
  auto started =
      testing::RunFerryCli({"--server", node1->grpc_address(), "mirror", "start", "m1",
                            "--from", "a", "--to", "b", "--topic", topic});
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->exit_code, 0) << started->err;
  absl::SleepFor(absl::Seconds(3));
  node1->process().Signal(SIGKILL);
  absl::SleepFor(absl::Seconds(2));
  producing = false;
  producer.join();
  std::cout << "produced " << produced << " records\n";

  // Node 2 owns every partition after the session timeout and catches up.
  v1::MirrorStatus status;
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (absl::Now() < deadline) {
    v1::GetMirrorStatusRequest request;
    request.set_name("m1");
    grpc::Status rpc = Admin(*node2)->GetMirrorStatus(Context().get(), request, &status);
    ASSERT_TRUE(rpc.ok()) << rpc.error_message();
    if (status.lag() == 0) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_EQ(status.lag(), 0) << status.DebugString();

  int duplicates = 0;
  for (int32_t p = 0; p < kPartitions; ++p) {
    auto source = testing::ConsumeToEnd(source_->bootstrap(), topic, {p});
    auto target = testing::ConsumeToEnd(target_->bootstrap(), topic, {p});
    ASSERT_TRUE(source.ok() && target.ok());
    std::map<int64_t, const testing::ConsumedRecord*> by_offset;
    for (const auto& record : *source) by_offset[record.offset] = &record;
    int64_t next_new = 0;  // index into the source offsets, in order
    std::vector<int64_t> offsets;
    for (const auto& [offset, record] : by_offset) offsets.push_back(offset);
    for (const auto& copy : *target) {
      const std::string origin = Header(copy, "ferry.origin");
      const std::string prefix = absl::StrCat("a/", topic, "/", p, "/");
      ASSERT_TRUE(origin.starts_with(prefix)) << origin;
      const int64_t offset = std::stoll(origin.substr(prefix.size()));
      ASSERT_TRUE(by_offset.contains(offset)) << origin;
      EXPECT_EQ(copy.key, by_offset[offset]->key);
      EXPECT_EQ(copy.value, by_offset[offset]->value);
      EXPECT_EQ(copy.timestamp_ms, by_offset[offset]->timestamp_ms);
      if (next_new < static_cast<int64_t>(offsets.size()) &&
          offset == offsets[next_new]) {
        ++next_new;  // its first occurrence, in source order
      } else {
        ASSERT_LT(offset, next_new < static_cast<int64_t>(offsets.size())
                              ? offsets[next_new]
                              : INT64_MAX)
            << "partition " << p << ": offset " << offset
            << " copied before an earlier record (gap or reordering)";
        ++duplicates;
      }
    }
    EXPECT_EQ(next_new, static_cast<int64_t>(offsets.size()))
        << "partition " << p << " lacks records from offset " << offsets[next_new];
  }
  std::cout << "duplicates on the target after the kill: " << duplicates << "\n";

  auto shown =
      testing::RunFerryCli({"--server", node2->grpc_address(), "mirror", "status", "m1"});
  ASSERT_TRUE(shown.ok());
  EXPECT_THAT(shown->out, HasSubstr("lag 0"));
  auto stopped =
      testing::RunFerryCli({"--server", node2->grpc_address(), "mirror", "stop", "m1"});
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->exit_code, 0) << stopped->err;
}

TEST_F(MirrorTest, BadJobsAreRefusedWithAPreciseStatus) {
  const std::string topic = absl::StrCat("mirror.", Name());
  ASSERT_TRUE(source_->CreateTopic(topic, 4).ok());
  ASSERT_TRUE(target_->CreateTopic(topic + ".small", 2).ok());
  ASSERT_TRUE(source_->CreateTopic(topic + ".small", 4).ok());
  auto node = Node();
  ASSERT_TRUE(node);
  struct Case {
    std::string name, from, to, topic;
    grpc::StatusCode code;
    std::string error;
  };
  const Case cases[] = {
      {"j", "a", "a", topic, grpc::StatusCode::INVALID_ARGUMENT, "job.target: the same"},
      {"j", "a", "zz", topic, grpc::StatusCode::INVALID_ARGUMENT,
       "job.target: unknown cluster \"zz\""},
      {"bad name", "a", "b", topic, grpc::StatusCode::INVALID_ARGUMENT, "job.name"},
      {"j", "a", "b", "missing.topic", grpc::StatusCode::NOT_FOUND,
       "missing.topic on source a"},
      {"j", "a", "b", topic + ".small", grpc::StatusCode::FAILED_PRECONDITION,
       "2 partitions on target b but 4 on source a"},
  };
  for (const Case& c : cases) {
    grpc::Status status = StartMirror(*node, c.name, c.from, c.to, c.topic);
    EXPECT_EQ(status.error_code(), c.code) << c.error << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.error));
  }
  ASSERT_TRUE(StartMirror(*node, "j", "a", "b", topic).ok());
  EXPECT_TRUE(StartMirror(*node, "j", "a", "b", topic).ok()) << "the same job again";
  grpc::Status other = StartMirror(*node, "j", "b", "a", topic);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << other.error_message();
  // The name is answered first, whatever the clusters hold.
  grpc::Status missing = StartMirror(*node, "j", "a", "b", "missing.topic");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << missing.error_message();

  auto list = testing::RunFerryCli({"--server", node->grpc_address(), "mirror", "list"});
  ASSERT_TRUE(list.ok());
  EXPECT_THAT(list->out, HasSubstr(topic));
  auto unknown =
      testing::RunFerryCli({"--server", node->grpc_address(), "mirror", "stop", "nope"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_NE(unknown->exit_code, 0);
  EXPECT_THAT(unknown->err, HasSubstr("no mirror job \"nope\""));
  auto stopped =
      testing::RunFerryCli({"--server", node->grpc_address(), "mirror", "stop", "j"});
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->exit_code, 0) << stopped->err;
}

}  // namespace
}  // namespace ferry
