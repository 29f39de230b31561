// Scanning partitions on a fake cluster whose reader hangs while closing.
#include "backend/partition_scan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/synchronization/barrier.h"
#include "backend/fake_cluster.h"
#include "backend/member_leave.h"

namespace ferry::backend {
namespace {

class NeverDoneSink final : public RecordSink {
 public:
  bool Add(const ConsumedRecord&) override { return false; }
};

// The admin call (latest messages, an offset translation) answers although
// the reader does not close; before, it waited for the reader for good.
TEST(ScanPartitionsTest, AReaderHangingWhileClosingDoesNotHoldUpTheAnswer) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  NeverDoneSink sink;
  LeaveHold hold(cluster, absl::Seconds(10));
  const absl::Time start = absl::Now();
  // The fake reader is never assigned anything: the deadline ends the scan.
  absl::Status scanned =
      ScanPartitions(cluster, "scan", {{{"t", 0}, {.end = 1, .sink = &sink}}},
                     start + absl::Milliseconds(100), absl::Milliseconds(50));
  EXPECT_EQ(scanned.code(), absl::StatusCode::kDeadlineExceeded) << scanned;
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
}

// Each scan against a stuck cluster abandoned one reader with its broker
// client's threads and sockets, and retries piled them up without end. Now
// new scans are refused while three are still closing, and run again once
// they finished.
TEST(ScanPartitionsTest, ScansAreRefusedWhileTooManyAbandonedReadersStillClose) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  NeverDoneSink sink;
  auto scan = [&cluster, &sink] {
    return ScanPartitions(cluster, "scan", {{{"t", 0}, {.end = 1, .sink = &sink}}},
                          absl::Now() + absl::Milliseconds(100), absl::Milliseconds(50));
  };
  {
    LeaveHold hold(cluster, absl::Seconds(10));
    std::vector<std::thread> stuck;
    for (int i = 0; i < 3; ++i) {
      stuck.emplace_back(
          [&scan] { EXPECT_EQ(scan().code(), absl::StatusCode::kDeadlineExceeded); });
    }
    for (std::thread& thread : stuck) thread.join();
    absl::Status refused = scan();
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
    EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("retry"));
    EXPECT_TRUE(IsScanRefused(refused));
  }
  ASSERT_TRUE(AwaitNoMembersLeaving(absl::Seconds(10)));
  EXPECT_EQ(scan().code(), absl::StatusCode::kDeadlineExceeded);
}

// Scans started together against a stuck cluster: before, each checked the
// count of abandoned readers (0) and only then started, so all of them were
// abandoned (8 broker clients left closing, past the cap of 3). Now a scan
// takes its place in the same step as the check: at most 3 run, the others
// are refused without starting a reader.
TEST(ScanPartitionsTest, ScansStartedTogetherStayWithinTheCap) {
  FakeCluster cluster("race");
  cluster.AddTopic("t", 1);
  NeverDoneSink sink;
  constexpr int kScans = 8;
  std::atomic<int> ran = 0;
  std::atomic<int> refused = 0;
  {
    LeaveHold hold(cluster, absl::Seconds(10));
    absl::Barrier start(kScans);
    std::vector<std::thread> scans;
    for (int i = 0; i < kScans; ++i) {
      scans.emplace_back([&] {
        start.Block();
        absl::Status s =
            ScanPartitions(cluster, "scan", {{{"t", 0}, {.end = 1, .sink = &sink}}},
                           absl::Now() + absl::Milliseconds(300), absl::Milliseconds(50));
        if (IsScanRefused(s)) {
          ++refused;
        } else {
          EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
          ++ran;
        }
      });
    }
    for (std::thread& scan : scans) scan.join();
    EXPECT_LE(MembersLeaving(&cluster), 3);
  }
  EXPECT_EQ(ran, 3);
  EXPECT_EQ(refused, kScans - 3);
  ASSERT_TRUE(AwaitNoMembersLeaving(absl::Seconds(10)));
}

absl::Status Refusal() {
  absl::Status refused = absl::UnavailableError("cluster c: readers still closing");
  refused.SetPayload(kScanRefusedPayload, absl::Cord("1"));
  return refused;
}

TEST(RetryRefusedScansTest, RetriesARefusalUntilTheScanRuns) {
  int attempts = 0;
  absl::Status s = RetryRefusedScans(absl::Now() + absl::Seconds(10), [&attempts] {
    return ++attempts < 3 ? Refusal() : absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(attempts, 3);
}

// Within the caller's bound (a migration stage's mirror_timeout), then a
// status saying what happened, still recognisable as a refusal.
TEST(RetryRefusedScansTest, GivesUpAtTheBoundSayingForHowLong) {
  int attempts = 0;
  const absl::Time start = absl::Now();
  absl::Status s = RetryRefusedScans(start + absl::Milliseconds(500), [&attempts] {
    ++attempts;
    return Refusal();
  });
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsScanRefused(s));
  EXPECT_THAT(std::string(s.message()),
              ::testing::AllOf(::testing::HasSubstr("refused for"),
                               ::testing::HasSubstr("readers still closing")));
  EXPECT_GE(took, absl::Milliseconds(500));
  EXPECT_LT(took, absl::Milliseconds(1500));
  EXPECT_GE(attempts, 4);  // 100, 200, then 200 ms to the bound: backoff, no spin
  EXPECT_LE(attempts, 6);
}

TEST(RetryRefusedScansTest, ReturnsOtherErrorsAtOnce) {
  int attempts = 0;
  absl::Status s = RetryRefusedScans(absl::Now() + absl::Seconds(10), [&attempts] {
    ++attempts;
    return absl::UnavailableError("broker down");  // no refusal: not retried here
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsScanRefused(s));
  EXPECT_EQ(attempts, 1);
}

}  // namespace
}  // namespace ferry::backend
