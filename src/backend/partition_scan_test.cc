// Scanning partitions on a fake cluster whose reader hangs while closing.
#include "backend/partition_scan.h"

#include <gtest/gtest.h>

#include "backend/fake_cluster.h"

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

}  // namespace
}  // namespace ferry::backend
