#pragma once

// Reads chosen partitions of one cluster, from their start or from a given
// offset, without a consumer group (nothing is committed), handing each
// record to the partition's RecordSink until the sink has what it needs or
// the partition's end is reached. Offset translation in both directions and
// a topic's latest messages are built on it.
//
// Cost: every partition is read from its start point up to the sink's
// answer. Blocking; for admin threads.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"

namespace ferry::backend {

// Consumes one partition's records in offset order. Called on the reader's
// thread, one call at a time.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // True once the sink needs no further record.
  virtual bool Add(const ConsumedRecord& record) = 0;
};

struct PartitionToScan {
  // The high watermark when the scan began: a record at end - 1 is the last;
  // one at or beyond it (the reader jumped past the range) ends the
  // partition without reaching the sink.
  int64_t end = 0;
  RecordSink* sink = nullptr;  // not owned; outlives the scan
  // Where reading starts; unset: at the partition's start. The reader is
  // assigned the partition at this offset, so nothing before it is delivered
  // (a record before it that still arrives is dropped).
  std::optional<int64_t> from = std::nullopt;
};

// Scans until every sink is done or its partition's end was read. A partition
// whose reader got nothing for `quiet` (since it was assigned or since its
// last record) counts as read to its end: its last offsets may be no records
// (transaction markers, compaction); a `quiet` too short can only leave a
// sink without its answer, never give it a wrong record. The limit: the
// quiet period counts from the assignment, not from a first fetch, so a
// partition a slow broker serves nothing within `quiet` ends empty.
// DEADLINE_EXCEEDED when `deadline` passed first (with the reader's last
// error, such as a broker down); OUT_OF_RANGE at once when the reader
// reports a position outside a log (a start offset retention passed); the
// cluster's error when the reader cannot be created; INTERNAL when the
// reader was assigned a partition anywhere but at its start offset (a
// backend ignoring GroupMemberOptions::start_offsets); ABORTED when it lost a
// partition not read yet (its topic deleted or re-created during the scan).
// Up to 16 scans of a cluster run at once; a further one waits for a slot
// until `deadline`. UNAVAILABLE (IsScanRefused) without trying while the
// cluster's abandoned readers (closing past their bound: a stuck broker
// client) and scans number 3 or more, at least one abandoned; or when no
// slot was free by `deadline`.
absl::Status ScanPartitions(Cluster& cluster, const std::string& reader_name,
                            const std::map<TopicPartition, PartitionToScan>& partitions,
                            absl::Time deadline, absl::Duration quiet);

// The payload marking ScanPartitions' refusal: whoever rewraps the status
// keeps it.
inline constexpr char kScanRefusedPayload[] = "ferry.dev/scan-refused";
// True for ScanPartitions' refusal: a scan may succeed once the cluster's
// abandoned readers finished closing.
bool IsScanRefused(const absl::Status& status);

// Calls `attempt` again while it returns a refused scan (IsScanRefused),
// waiting 100 ms, doubling up to 2 s, between calls, until `give_up`. Then
// UNAVAILABLE (still IsScanRefused) saying for how long and how often scans
// were refused, with the last refusal. CANCELLED once `cancelled` (checked
// while waiting, every 100 ms) is true. Any other status is returned at once.
absl::Status RetryRefusedScans(absl::Time give_up, absl::FunctionRef<bool()> cancelled,
                               absl::FunctionRef<absl::Status()> attempt);

}  // namespace ferry::backend
