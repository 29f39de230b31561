// Exact offset translation (Admin.TranslateOffsets, `ferry mirror translate`)
// on two real Kafka brokers, against a target partition whose layout is
// known: records written to the target directly (no ferry.origin), the
// mirror's copies, and a hand-made rewind (copies of source records repeated,
// as after a mirror failure).
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

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
using ::testing::ContainsRegex;

constexpr char kGroup[] = "readers";

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return context;
}

class MirrorTranslateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = testing::SharedBroker();
    ASSERT_NE(source_, nullptr);
    auto target = KafkaBroker::Start("translate-target");
    ASSERT_TRUE(target.ok()) << target.status();
    target_ = *std::move(target);
    auto node = FerrydProcess::Start(
        absl::StrCat("clusters:\n", testing::KafkaClusterEntry("a", source_->bootstrap()),
                     testing::KafkaClusterEntry("b", target_->bootstrap()),
                     "control: { cluster: a, topic: __ferry_control.", job_, " }\n",
                     "routes:\n  - { topic: \"*\", write: [a] }\n",
                     "subscribe: { commit_interval: 200ms }\n"));
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
    admin_ = v1::Admin::NewStub(
        grpc::CreateChannel(node_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  // Source offsets 0..count-1 of partition p of the topic.
  void ProduceToSource(int32_t partition, int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(testing::ProduceToPartition(source_->bootstrap(), topic_, partition,
                                              absl::StrCat("s", partition, "-", i))
                      .ok());
    }
  }

  void ProduceToTarget(int32_t partition, const std::string& origin) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!origin.empty()) headers.emplace_back("ferry.origin", origin);
    ASSERT_TRUE(testing::ProduceToPartition(target_->bootstrap(), topic_, partition,
                                            "by hand", headers)
                    .ok());
  }

  // Waits until the job committed `offsets` (partition -> source offset).
  void WaitMirrored(const std::map<int32_t, int64_t>& offsets) {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    std::map<int32_t, int64_t> committed;
    while (absl::Now() < give_up) {
      v1::GetMirrorStatusRequest request;
      request.set_name(job_);
      v1::MirrorStatus status;
      if (admin_->GetMirrorStatus(Context().get(), request, &status).ok()) {
        committed.clear();
        for (const auto& p : status.partitions()) {
          committed[p.partition()] = p.committed_offset();
        }
        if (committed == offsets) return;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    std::string seen;
    for (const auto& [p, o] : committed) absl::StrAppend(&seen, " ", p, ":", o);
    FAIL() << "the mirror did not commit the expected offsets; committed:" << seen;
  }

  // Waits until partition 0's high watermarks are these (commit markers are
  // written after the transaction's commit returned).
  void WaitHighWatermarks(int64_t source, int64_t target) {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (absl::Now() < give_up) {
      v1::GetMirrorStatusRequest request;
      request.set_name(job_);
      v1::MirrorStatus status;
      if (admin_->GetMirrorStatus(Context().get(), request, &status).ok() &&
          status.partitions(0).source_high_watermark() == source &&
          status.partitions(0).target_high_watermark() == target) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    FAIL() << "high watermarks never reached " << source << " / " << target;
  }

  void CommitGroup(int32_t partition, int64_t offset) {
    v1::SeekRequest request;
    request.set_group(kGroup);
    request.set_cluster("a");
    request.add_topics(topic_);
    v1::PartitionOffset* to = request.mutable_to()->mutable_offsets()->add_offsets();
    to->set_topic(topic_);
    to->set_partition(partition);
    to->set_offset(offset);
    v1::SeekResponse response;
    grpc::Status status = admin_->Seek(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // partition -> translation
  std::map<int32_t, v1::TranslatedOffset> Translate() {
    v1::TranslateOffsetsRequest request;
    request.set_name(job_);
    request.set_group(kGroup);
    v1::TranslateOffsetsResponse response;
    grpc::Status status = admin_->TranslateOffsets(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<int32_t, v1::TranslatedOffset> out;
    for (const auto& t : response.offsets()) out[t.partition()] = t;
    return out;
  }

  // Per test: the source broker, its groups and topics outlive a test.
  const std::string topic_ = absl::StrCat(
      "translate.", ::testing::UnitTest::GetInstance()->current_test_info()->name());
  const std::string job_ = absl::StrCat(
      "to-b.", ::testing::UnitTest::GetInstance()->current_test_info()->name());
  KafkaBroker* source_ = nullptr;
  std::unique_ptr<KafkaBroker> target_;
  std::unique_ptr<FerrydProcess> node_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

// Target partition 0, offset: content
//   0: written directly             5..6: copies of 4..5
//   1..4: copies of source 0..3     7: copy of 3 again, 8: 4 again (rewind)
//                                   9: written directly, 10..11: copies of 6..7
// Partition 1 holds copies of source 0..2 and nothing else.
TEST_F(MirrorTranslateTest, EachOffsetMapsToTheFirstCopyOfTheFirstRecordAtOrAfterIt) {
  ASSERT_TRUE(source_->CreateTopic(topic_, 2).ok());
  ASSERT_TRUE(target_->CreateTopic(topic_, 2).ok());
  ProduceToTarget(0, "");
  ProduceToSource(0, 6);
  ProduceToSource(1, 3);
  {
    v1::StartMirrorRequest request;
    request.mutable_job()->set_name(job_);
    request.mutable_job()->set_source("a");
    request.mutable_job()->set_target("b");
    request.mutable_job()->add_topics(topic_);
    v1::MirrorJob job;
    grpc::Status status = admin_->StartMirror(Context().get(), request, &job);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  WaitMirrored({{0, 6}, {1, 3}});
  const std::string origin = absl::StrCat("a/", topic_, "/0/");
  ProduceToTarget(0, origin + "3");
  ProduceToTarget(0, origin + "4");
  ProduceToTarget(0, "");
  ProduceToSource(0, 2);  // source offsets 6 and 7
  WaitMirrored({{0, 8}, {1, 3}});
  auto target = testing::ConsumeToEnd(target_->bootstrap(), topic_, {0});
  ASSERT_TRUE(target.ok()) << target.status();
  ASSERT_EQ(target->size(), 12u) << "the target's layout is not the one assumed";

  // The group has nothing committed in partition 1 yet.
  const std::map<int64_t, int64_t> expected = {{0, 1}, {3, 4},  {4, 5},
                                               {5, 6}, {6, 10}, {7, 11}};
  for (const auto& [source, target_offset] : expected) {
    SCOPED_TRACE(absl::StrCat("source offset ", source));
    CommitGroup(0, source);
    auto translated = Translate();
    ASSERT_EQ(translated.size(), 2u);
    EXPECT_EQ(translated[0].state(), v1::TranslatedOffset::TRANSLATED);
    EXPECT_EQ(translated[0].source_offset(), source);
    EXPECT_EQ(translated[0].target_offset(), target_offset);
    EXPECT_EQ(translated[0].mirrored_offset(), 8);
    EXPECT_EQ(translated[1].state(), v1::TranslatedOffset::NO_GROUP_OFFSET);
    EXPECT_EQ(translated[1].target_offset(), -1);
  }

  // Not yet mirrored: the group is at the end of the source (8), or ahead of
  // what partition 1 holds; never guessed.
  CommitGroup(0, 8);
  CommitGroup(1, 3);
  auto at_end = Translate();
  for (int32_t p : {0, 1}) {
    EXPECT_EQ(at_end[p].state(), v1::TranslatedOffset::NOT_YET_MIRRORED) << p;
    EXPECT_EQ(at_end[p].target_offset(), -1) << p;
  }
  CommitGroup(1, 1);
  auto cli = testing::RunFerryCli({"--server", node_->grpc_address(), "mirror",
                                   "translate", job_, "--group", kGroup});
  ASSERT_TRUE(cli.ok()) << cli.status();
  ASSERT_EQ(cli->exit_code, 0) << cli->err;
  EXPECT_THAT(cli->out, ContainsRegex("TOPIC +PARTITION +SOURCE-OFFSET +TARGET-OFFSET"));
  EXPECT_THAT(cli->out, ContainsRegex("\n[^ ]+ +0 +8 +not yet mirrored +8"));
  EXPECT_THAT(cli->out, ContainsRegex("\n[^ ]+ +1 +1 +1 +3"));
}

// Transaction markers take offsets that hold no record: on the source, an
// offset the group committed may be one (the next record counts); on the
// target, a partition may end with one (it is still read to its end).
TEST_F(MirrorTranslateTest, OffsetsOfTransactionMarkersAreGapsOnBothSides) {
  ASSERT_TRUE(source_->CreateTopic(topic_, 1).ok());
  ASSERT_TRUE(target_->CreateTopic(topic_, 1).ok());
  // Source: records at 0 and 1, the commit marker at 2, a record at 3.
  absl::Status written =
      testing::ProduceInTransaction(source_->bootstrap(), topic_, 0, {"t0", "t1"});
  ASSERT_TRUE(written.ok()) << written;
  {
    v1::StartMirrorRequest request;
    request.mutable_job()->set_name(job_);
    request.mutable_job()->set_source("a");
    request.mutable_job()->set_target("b");
    request.mutable_job()->add_topics(topic_);
    v1::MirrorJob job;
    grpc::Status status = admin_->StartMirror(Context().get(), request, &job);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  WaitHighWatermarks(3, 2);
  ProduceToSource(0, 1);
  WaitMirrored({{0, 4}});
  // Target: copies of 0, 1, 3 at 0..2, then a direct record at 3 and the
  // marker at 4.
  written = testing::ProduceInTransaction(target_->bootstrap(), topic_, 0, {"direct"});
  ASSERT_TRUE(written.ok()) << written;
  WaitHighWatermarks(4, 5);

  CommitGroup(0, 2);
  auto at_marker = Translate();
  EXPECT_EQ(at_marker[0].state(), v1::TranslatedOffset::TRANSLATED);
  EXPECT_EQ(at_marker[0].target_offset(), 2) << "the copy of source record 3";

  CommitGroup(0, 4);
  auto at_end = Translate();
  EXPECT_EQ(at_end[0].state(), v1::TranslatedOffset::NOT_YET_MIRRORED);
}

TEST_F(MirrorTranslateTest, UnknownJobIsNotFound) {
  v1::TranslateOffsetsRequest request;
  request.set_name("no-such-job");
  request.set_group(kGroup);
  v1::TranslateOffsetsResponse response;
  grpc::Status status = admin_->TranslateOffsets(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace ferry
