// Scanning partitions on a fake cluster whose reader hangs while closing.
#include "backend/partition_scan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/mutex.h"
#include "backend/fake_cluster.h"
#include "backend/member_leave.h"
#include "backend/scan_test_support.h"

namespace ferry::backend {
namespace {

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
    AbandonThreeReaders(cluster, "t");
    absl::Status refused = scan();
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
    EXPECT_THAT(
        std::string(refused.message()),
        ::testing::AllOf(::testing::HasSubstr("3 readers are closing past their bound"),
                         ::testing::Not(::testing::HasSubstr("retry"))));
    EXPECT_TRUE(IsScanRefused(refused));
  }
  ASSERT_TRUE(AwaitNoMembersLeaving(absl::Seconds(10)));
  EXPECT_EQ(scan().code(), absl::StatusCode::kDeadlineExceeded);
}

// Runs `scans` scans of `cluster` started together, each ending at its
// deadline (the fake reader is assigned nothing); the ith waits `delay(i)`
// first and ends `length(i)` after starting. Counts those refused.
struct ScanCounts {
  int ran = 0;
  int refused = 0;
};
ScanCounts ScanTogether(FakeCluster& cluster, int scans,
                        const std::function<absl::Duration(int)>& delay,
                        const std::function<absl::Duration(int)>& length) {
  NeverDoneSink sink;
  std::atomic<int> ran = 0;
  std::atomic<int> refused = 0;
  absl::Barrier start(scans);
  std::vector<std::thread> threads;
  for (int i = 0; i < scans; ++i) {
    threads.emplace_back([&, i] {
      start.Block();
      absl::SleepFor(delay(i));
      absl::Status s =
          ScanPartitions(cluster, "scan", {{{"t", 0}, {.end = 1, .sink = &sink}}},
                         absl::Now() + length(i), absl::Milliseconds(50));
      if (IsScanRefused(s)) {
        ++refused;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
        ++ran;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return {.ran = ran, .refused = refused};
}

absl::Duration Zero(int) { return absl::ZeroDuration(); }
absl::Duration Short(int) { return absl::Milliseconds(300); }

// A healthy cluster serves several operators' console pages and
// translations at once; before, a fourth scan was refused.
TEST(ScanPartitionsTest, ScansOfAHealthyClusterRunTogether) {
  FakeCluster cluster("healthy");
  cluster.AddTopic("t", 1);
  const ScanCounts counts = ScanTogether(cluster, 8, Zero, Short);
  EXPECT_EQ(counts.ran, 8);
  EXPECT_EQ(counts.refused, 0);
}

// Past 16 scans at once a scan waits for a slot instead of being refused.
TEST(ScanPartitionsTest, AScanPastTheLimitWaitsForASlot) {
  FakeCluster cluster("busy");
  cluster.AddTopic("t", 1);
  const ScanCounts counts = ScanTogether(
      cluster, 20,
      [](int i) { return i < 16 ? absl::ZeroDuration() : absl::Milliseconds(100); },
      [](int i) { return i < 16 ? absl::Milliseconds(300) : absl::Seconds(2); });
  EXPECT_EQ(counts.ran, 20);
  EXPECT_EQ(counts.refused, 0);
}

// Scans started together against a stuck cluster: before, each checked the
// count of abandoned readers (0) and only then started, so every one was
// abandoned. Now a scan takes its place in the same step as the check: at
// most 16 run (and are abandoned), the others wait and are refused; while
// those close every new scan is refused.
TEST(ScanPartitionsTest, ScansStartedTogetherStayWithinTheCap) {
  FakeCluster cluster("race");
  cluster.AddTopic("t", 1);
  {
    LeaveHold hold(cluster, absl::Seconds(10));
    const ScanCounts counts = ScanTogether(cluster, 20, Zero, Short);
    EXPECT_EQ(counts.ran, 16);
    EXPECT_EQ(counts.refused, 4);
    EXPECT_LE(MembersLeaving(&cluster), 16);
    const ScanCounts later = ScanTogether(cluster, 4, Zero, Short);
    EXPECT_EQ(later.refused, 4);
    EXPECT_LE(MembersLeaving(&cluster), 16);
  }
  ASSERT_TRUE(AwaitNoMembersLeaving(absl::Seconds(10)));
}

absl::Status Refusal() {
  absl::Status refused = absl::UnavailableError("cluster c: readers still closing");
  refused.SetPayload(kScanRefusedPayload, absl::Cord("1"));
  return refused;
}

bool Never() { return false; }

TEST(RetryRefusedScansTest, RetriesARefusalUntilTheScanRuns) {
  int attempts = 0;
  absl::Status s = RetryRefusedScans(absl::Now() + absl::Seconds(10), Never, [&attempts] {
    return ++attempts < 3 ? Refusal() : absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(attempts, 3);
}

// Within the caller's bound (a migration stage's mirror_timeout), then a
// status saying what happened, still recognisable as a refusal. Between
// attempts it waits (100 ms, then 200 ms): no spin.
TEST(RetryRefusedScansTest, GivesUpAtTheBoundSayingForHowLong) {
  std::vector<absl::Time> attempts;
  const absl::Time start = absl::Now();
  absl::Status s = RetryRefusedScans(start + absl::Milliseconds(500), Never, [&attempts] {
    attempts.push_back(absl::Now());
    return Refusal();
  });
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsScanRefused(s));
  EXPECT_THAT(std::string(s.message()),
              ::testing::AllOf(::testing::HasSubstr("refused for"),
                               ::testing::HasSubstr("readers still closing")));
  EXPECT_GE(took, absl::Milliseconds(500));
  ASSERT_GE(attempts.size(), 2u);
  EXPECT_GE(attempts[1] - attempts[0], absl::Milliseconds(100));
  if (attempts.size() >= 3) {
    EXPECT_GE(attempts[2] - attempts[1], absl::Milliseconds(200));
  }
}

// A node stopping ends the wait: gRPC waits for the handler past the
// shutdown grace otherwise.
TEST(RetryRefusedScansTest, EndsWhenCancelled) {
  const absl::Time start = absl::Now();
  int attempts = 0;
  absl::Status s = RetryRefusedScans(
      start + absl::Seconds(30),
      [start] { return absl::Now() - start >= absl::Milliseconds(250); },
      [&attempts] {
        ++attempts;
        return Refusal();
      });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_GE(attempts, 1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(RetryRefusedScansTest, ReturnsOtherErrorsAtOnce) {
  int attempts = 0;
  absl::Status s = RetryRefusedScans(absl::Now() + absl::Seconds(10), Never, [&attempts] {
    ++attempts;
    return absl::UnavailableError("broker down");  // no refusal: not retried here
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsScanRefused(s));
  EXPECT_EQ(attempts, 1);
}

// Records the offsets it is handed; done at the partition's last one.
class OffsetsSink final : public RecordSink {
 public:
  explicit OffsetsSink(int64_t last) : last_(last) {}
  bool Add(const ConsumedRecord& record) override {
    absl::MutexLock lock(&mu_);
    offsets_.push_back(record.offset);
    return record.offset >= last_;
  }
  std::vector<int64_t> offsets() const {
    absl::MutexLock lock(&mu_);
    return offsets_;
  }

 private:
  const int64_t last_;
  mutable absl::Mutex mu_;
  std::vector<int64_t> offsets_;
};

std::vector<ConsumedRecord> Records(int64_t first, int64_t end) {
  std::vector<ConsumedRecord> records;
  for (int64_t offset = first; offset < end; ++offset) {
    records.push_back({.topic = "t", .partition = 0, .offset = offset});
  }
  return records;
}

// Scans offsets [10, 20) of t/0 from 10 in a thread while `drive` acts as
// the reader's member thread; returns the scan's answer.
absl::Status ScanFrom10(FakeCluster& cluster, OffsetsSink& sink, absl::Duration quiet,
                        const std::function<void(FakeGroupMember&)>& drive,
                        absl::Duration timeout = absl::Seconds(20)) {
  absl::Status scanned;
  std::thread scan;
  {
    // Keeps the reader alive for `drive` should the scan end early.
    LeaveHold hold(cluster, absl::Seconds(30));
    scan = std::thread([&] {
      scanned = ScanPartitions(cluster, "scan",
                               {{{"t", 0}, {.end = 20, .sink = &sink, .from = 10}}},
                               absl::Now() + timeout, quiet);
    });
    // Without a reader the scan ends at its deadline.
    if (cluster.AwaitMembers("scan", 1, absl::Seconds(10))) {
      drive(*cluster.members("scan").front());
    } else {
      ADD_FAILURE() << "the scan's reader never joined";
    }
  }
  scan.join();
  return scanned;
}

std::vector<int64_t> From10To20() {
  std::vector<int64_t> offsets;
  for (int64_t offset = 10; offset < 20; ++offset) offsets.push_back(offset);
  return offsets;
}

// The reader is assigned the partition at the scan's start (the start
// offsets it joins with), so it needs no seek. Before, it started at the end
// and then sought to the start: records fetched from the end until the seek
// landed were a window for wrong answers (a migration lost 191 messages).
TEST(ScanPartitionsTest, TheReaderStartsAtTheScansStart) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  absl::Status scanned = ScanFrom10(cluster, sink, absl::Seconds(10), [](auto& reader) {
    EXPECT_TRUE(reader.options().standalone);
    EXPECT_EQ(reader.options().start_offsets,
              (std::map<TopicPartition, int64_t>{{{"t", 0}, 10}}));
    // Only the scanned partition (the Kafka one: kafka_partition_scan_test).
    EXPECT_EQ(reader.options().partitions, (std::set<TopicPartition>{{"t", 0}}));
    reader.AssignAtStartOffsets();
    reader.Deliver(Records(10, 20));
  });
  EXPECT_TRUE(scanned.ok()) << scanned;
  EXPECT_EQ(sink.offsets(), From10To20());
}

// A negative start offset is refused by the backend (the fake checks as the
// real ones do) and the scan says so instead of waiting for its deadline.
TEST(ScanPartitionsTest, ANegativeStartOffsetIsRefusedAtOnce) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  absl::Status scanned = ScanPartitions(
      cluster, "scan", {{{"t", 0}, {.end = 20, .sink = &sink, .from = -2}}},
      absl::Now() + absl::Seconds(10), absl::Seconds(10));
  EXPECT_EQ(scanned.code(), absl::StatusCode::kInvalidArgument) << scanned;
  EXPECT_THAT(cluster.members("scan"), ::testing::IsEmpty());
}

// A reader assigned anywhere but at the start (a backend not honouring
// start_offsets) fetches records that are not the scan's: none reaches the
// sink and the scan says why, at once.
TEST(ScanPartitionsTest, AReaderAssignedElsewhereHandsTheSinkNothing) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  const absl::Time start = absl::Now();
  absl::Status scanned = ScanFrom10(cluster, sink, absl::Seconds(10), [](auto& reader) {
    // At the end, which grew to 21 since the scan read it (20).
    reader.Assign({{.partition = {"t", 0}, .next_offset = 21}});
    reader.Deliver(Records(21, 23));
    reader.Deliver(Records(10, 23));
  });
  EXPECT_EQ(scanned.code(), absl::StatusCode::kInternal) << scanned;
  EXPECT_THAT(std::string(scanned.message()),
              ::testing::HasSubstr("t/0 at 21, not at the scan's start 10"));
  EXPECT_THAT(sink.offsets(), ::testing::IsEmpty());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5))
      << "ended by the assignment, not quiet";
}

// The embedded store re-assigns a topic deleted and re-created during a
// scan, at the start offsets again. Before, the second assignment's records
// reached the sink after those of the first (duplicates, or another log's)
// and the scan answered OK.
TEST(ScanPartitionsTest, AReaderLosingAPartitionFailsTheScan) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  absl::Status scanned = ScanFrom10(cluster, sink, absl::Seconds(10), [](auto& reader) {
    reader.AssignAtStartOffsets();
    reader.Deliver(Records(10, 13));
    reader.Revoke({{"t", 0}});
    reader.AssignAtStartOffsets();
    reader.Deliver(Records(10, 20));
  });
  EXPECT_EQ(scanned.code(), absl::StatusCode::kAborted) << scanned;
  EXPECT_THAT(std::string(scanned.message()),
              ::testing::HasSubstr("revoked during the scan"));
  EXPECT_EQ(sink.offsets(), (std::vector<int64_t>{10, 11, 12}));
}

// Connecting and the assignment may take longer than the quiet period (a
// loaded broker); the partition is not quiet before the reader could read it.
TEST(ScanPartitionsTest, TheQuietPeriodCountsFromTheAssignment) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  absl::Status scanned =
      ScanFrom10(cluster, sink, absl::Milliseconds(200), [](auto& reader) {
        absl::SleepFor(absl::Milliseconds(600));
        reader.AssignAtStartOffsets();
        reader.Deliver(Records(10, 20));
      });
  EXPECT_TRUE(scanned.ok()) << scanned;
  EXPECT_EQ(sink.offsets(), From10To20());
}

// `from` fell below the log start after the scan read the offsets: Kafka's
// offset reset moves the reader, after its assignment at `from`, to the end,
// and a partition being written hands it records from there. Before, they
// reached the sink as if read from `from`.
TEST(ScanPartitionsTest, ARecordBeyondTheEndEndsThePartitionWithoutReachingTheSink) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  const absl::Time start = absl::Now();
  absl::Status scanned = ScanFrom10(cluster, sink, absl::Seconds(10), [](auto& reader) {
    // Kafka's readers report the reset instead where the option is honoured.
    EXPECT_TRUE(reader.options().fail_out_of_range);
    reader.AssignAtStartOffsets();
    reader.Deliver(Records(25, 27));
  });
  EXPECT_TRUE(scanned.ok()) << scanned;
  EXPECT_THAT(sink.offsets(), ::testing::IsEmpty());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "ended by the record, not quiet";
}

// A scan that does not finish says what its reader last reported (a broker
// down); before, only that it timed out.
TEST(ScanPartitionsTest, AScanThatDoesNotFinishNamesTheReadersLastError) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  absl::Status scanned = ScanFrom10(
      cluster, sink, absl::Seconds(10),
      [](auto& reader) { reader.ReportError(absl::UnavailableError("broker 1 down")); },
      absl::Seconds(1));
  EXPECT_EQ(scanned.code(), absl::StatusCode::kDeadlineExceeded) << scanned;
  EXPECT_THAT(std::string(scanned.message()), ::testing::HasSubstr("broker 1 down"));
}

// A start offset retention passed (Kafka with auto.offset.reset=error): the
// reader reports it and reads that partition no further. Before, the scan
// only kept the error, the partition went quiet and counted as read: OK with
// an empty sink.
TEST(ScanPartitionsTest, AStartOffsetOutOfRangeFailsTheScanAtOnce) {
  FakeCluster cluster("c");
  cluster.AddTopic("t", 1);
  OffsetsSink sink(/*last=*/19);
  const absl::Time start = absl::Now();
  absl::Status scanned =
      ScanFrom10(cluster, sink, absl::Milliseconds(200), [](auto& reader) {
        reader.AssignAtStartOffsets();
        reader.ReportError(absl::OutOfRangeError("t/0: offset 10 out of range"));
      });
  EXPECT_EQ(scanned.code(), absl::StatusCode::kOutOfRange) << scanned;
  EXPECT_THAT(std::string(scanned.message()),
              ::testing::HasSubstr("offset 10 out of range"));
  EXPECT_THAT(sink.offsets(), ::testing::IsEmpty());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace ferry::backend
