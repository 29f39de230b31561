#pragma once

// Where a consumer group of a mirror job's source starts on the job's target
// (the consumer stage's cutover): the first copy, in target order, of the
// first source record at or after the group's committed source offset g.
//
// The job copies a partition in source order and, after a failure, copies
// again from its last commit, so the first copies of source records appear
// on the target in source order; later duplicates only repeat records
// copied before. The answer is therefore the first target record whose
// ferry.origin names the source partition with an offset >= g; records
// written to the target directly, or copied from elsewhere, are skipped.
//
// Not thread-safe; cost O(1) per record.

#include <cstdint>
#include <optional>
#include <string>

#include "backend/cluster.h"
#include "backend/partition_scan.h"

namespace ferry::mirror {

class FirstCopyAtOrAfter final : public backend::RecordSink {
 public:
  // `group_offset`: g; `from`: the target offset the records fed start at.
  FirstCopyAtOrAfter(std::string source_cluster, backend::TopicPartition partition,
                     int64_t group_offset, int64_t from);

  // True once the answer arrived.
  bool Add(const backend::ConsumedRecord& record) override;

  std::optional<int64_t> found() const { return found_; }
  // No record from `from` up to here is a copy of a source record at or
  // after g: the answer, or where a later search for g or above continues.
  int64_t searched_to() const { return searched_to_; }

 private:
  const std::string source_cluster_;
  const backend::TopicPartition partition_;
  const int64_t group_offset_;
  int64_t searched_to_;
  std::optional<int64_t> found_;
};

// Where a search for `group_offset` reads the target partition from: where
// an earlier search for a group offset at or below it stopped (what lies
// before holds no copy at or after the earlier offset, so none at or after
// this one), else from the start (0): the group moved back, or there was
// no earlier search (`earlier_group_offset` < 0).
int64_t ForwardScanFrom(int64_t earlier_group_offset, int64_t earlier_searched_to,
                        int64_t group_offset);

}  // namespace ferry::mirror
