// The header check of offset translation, and a refused scan retried;
// TranslateOffsets' answers are tested on two Kafka brokers
// (tests/integration/mirror_translate_test.cc).
#include "mirror/offset_translator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "backend/fake_cluster.h"
#include "backend/member_leave.h"
#include "backend/partition_scan.h"
#include "backend/scan_test_support.h"

namespace ferry::mirror {
namespace {

const backend::TopicPartition kP1{"orders", 1};

TEST(CopiedFrom, NamesTheSourceOffsetOfACopyOfThePartition) {
  EXPECT_EQ(CopiedFrom({{"ferry.id", "x"}, {"ferry.origin", "a/orders/1/42"}}, "a", kP1),
            42);
}

TEST(CopiedFrom, IgnoresRecordsThatAreNoCopyOfThePartition) {
  EXPECT_EQ(CopiedFrom({}, "a", kP1), std::nullopt) << "written to the target directly";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "b/orders/1/42"}}, "a", kP1), std::nullopt)
      << "another source cluster";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "a/orders/2/42"}}, "a", kP1), std::nullopt)
      << "another partition";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "a/payments/1/42"}}, "a", kP1), std::nullopt)
      << "another topic";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "garbage"}}, "a", kP1), std::nullopt);
}

TEST(TargetResumeOffset, IsTheTranslationWhenThereIsOne) {
  const Translation t{.partition = kP1,
                      .state = Translation::State::kTranslated,
                      .group_offset = 40,
                      .mirrored_offset = 45,
                      .target_offset = 37};
  EXPECT_EQ(TargetResumeOffset(t, 45, 44), 37);
}

TEST(TargetResumeOffset, AtTheSourcesEndWithEverythingCopiedIsTheTargetsEnd) {
  const Translation t{.partition = kP1,
                      .state = Translation::State::kNotYetMirrored,
                      .group_offset = 45,
                      .mirrored_offset = 45};
  EXPECT_EQ(TargetResumeOffset(t, 45, 44), 44);
  EXPECT_EQ(TargetResumeOffset(t, 46, 44), std::nullopt)
      << "a record was written since: wait for its copy";
  Translation behind = t;
  behind.mirrored_offset = 44;
  EXPECT_EQ(TargetResumeOffset(behind, 45, 44), std::nullopt) << "not all copied";
  EXPECT_EQ(TargetResumeOffset({.partition = kP1}, 45, 44), std::nullopt)
      << "no position";
}

// A migration stage's translation met a refused scan (three abandoned
// readers of the target still closing) and failed the stage at once. The
// refusal stays recognisable through the job's wrapping, so the stage
// retries it (backend::RetryRefusedScans, as MoveOffsetsForward and
// MoveOffsetsBack do) and goes on once those readers closed.
using backend::CommittedCluster;

TEST(TranslateOffsets, ARefusedScanIsRetriedUntilTheStuckReadersClosed) {
  CommittedCluster source("a");
  CommittedCluster target("b");
  source.AddTopic("orders", 1);
  target.AddTopic("orders", 1);
  auto hold = std::make_unique<backend::LeaveHold>(target, absl::Seconds(10));
  backend::AbandonThreeReaders(target, "orders");
  const control::MirrorSpec job{
      .name = "move", .source = "a", .target = "b", .topics = {"orders"}};
  // The fake reader is never assigned: a scan that runs ends at this
  // deadline (DEADLINE_EXCEEDED), a refused one at once.
  const TranslateOptions options{.timeout = absl::Milliseconds(200),
                                 .quiet = absl::Milliseconds(50)};
  absl::StatusOr<std::vector<Translation>> refused =
      TranslateOffsets(job, "g", source, target, options);
  EXPECT_TRUE(backend::IsScanRefused(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("mirror job move"));

  std::thread release([&hold] {
    absl::SleepFor(absl::Milliseconds(500));
    hold.reset();  // the stuck readers finish closing
  });
  const absl::Time start = absl::Now();
  int attempts = 0;
  absl::Status retried = backend::RetryRefusedScans(
      absl::Now() + absl::Seconds(10), [] { return false; },
      [&] {
        ++attempts;
        return TranslateOffsets(job, "g", source, target, options).status();
      });
  release.join();
  EXPECT_EQ(retried.code(), absl::StatusCode::kDeadlineExceeded) << retried;
  EXPECT_GT(attempts, 1);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_TRUE(backend::AwaitNoMembersLeaving(absl::Seconds(10)));
}

}  // namespace
}  // namespace ferry::mirror
