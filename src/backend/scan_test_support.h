#pragma once

// Test support for partition scans (backend/partition_scan.h) of a
// FakeCluster, whose reader is never assigned anything: a scan of it ends at
// its deadline.

#include <string>

#include "backend/cluster.h"
#include "backend/partition_scan.h"

namespace ferry::backend {

// Never has what it needs: a scan into it runs until its deadline.
class NeverDoneSink final : public RecordSink {
 public:
  bool Add(const ConsumedRecord&) override { return false; }
};

// Runs three scans of partition 0 of `topic` at once and expects each to end
// at its deadline. Under a LeaveHold of `cluster` their readers are left
// abandoned, closing until the hold ends, and ScanPartitions refuses new
// scans of `cluster` meanwhile.
void AbandonThreeReaders(Cluster& cluster, const std::string& topic);

}  // namespace ferry::backend
