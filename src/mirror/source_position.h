#pragma once

// Where a consumer group that read a mirror job's target resumes on the
// job's source (rolling a migration back): past every source record whose
// copy it read, and nowhere earlier.
//
// Fed the target partition's records in offset order from its start, it
// keeps the highest source offset among the copies below the group's
// committed target offset g. Why that is exact: the job copies a partition
// in source order and, after a failure, copies again from its last commit,
// so the first copies of source records appear on the target in source
// order (later duplicates only repeat records copied before). Having read
// the copy of source offset o, the group read the first copy of every
// source record below o; it read no copy of a source record above the
// highest one. Records written to the target directly, or copied from
// another cluster or partition, are not the source's and are skipped.
//
// Not thread-safe; cost O(1) per record.

#include <cstdint>
#include <optional>
#include <string>

#include "backend/cluster.h"
#include "backend/partition_scan.h"

namespace ferry::mirror {

class SourcePosition final : public backend::RecordSink {
 public:
  // `target_committed`: the group's committed offset on the target (g);
  // `read_before`: the highest source offset among the copies below where
  // the records fed start (an earlier pass's last_source_read).
  SourcePosition(std::string source_cluster, backend::TopicPartition partition,
                 int64_t target_committed,
                 std::optional<int64_t> read_before = std::nullopt);

  // True once a record at or after g - 1 arrived: every record the group
  // read was seen.
  bool Add(const backend::ConsumedRecord& record) override;

  // Whether the answer is known: the record before g (or one after it) was
  // seen, or g is at or below the partition's low watermark (nothing read).
  bool complete() const { return complete_; }
  void NothingBefore() { complete_ = true; }
  // The highest source offset whose copy the group read; nullopt: none.
  std::optional<int64_t> last_source_read() const { return last_source_read_; }
  // The source offset to commit: past the last source record read, and not
  // before `source_committed` (what the group acknowledged on the source
  // before it moved; -1: nothing). -1 when both are unknown.
  int64_t ResumeOnSource(int64_t source_committed) const;

 private:
  const std::string source_cluster_;
  const backend::TopicPartition partition_;
  const int64_t target_committed_;
  bool complete_ = false;
  std::optional<int64_t> last_source_read_;
};

// What an earlier pass of the same group's return translation found in a
// partition (ReturnPosition).
struct EarlierPass {
  int64_t target_committed = -1;
  int64_t source_committed = -1;
  std::optional<int64_t> last_source_read = std::nullopt;
  // FirstUnreadOnSource's answer then; -1: not known (not copied back).
  int64_t first_unread = -1;
};

// Where a return translation reads a partition.
struct ReturnScanStart {
  int64_t target = 0;  // the first target offset to read
  // The highest source offset among the copies below `target` that the
  // group read (SourcePosition's read_before).
  std::optional<int64_t> read_before = std::nullopt;
  // Copied back: the first source offset that may be unread (everything
  // from the group's source commit up to it was read).
  int64_t source = 0;
};

// Plans the reads. `cutover`: the lowest target offset at which a group
// moved at the consumer stage resumed there (every copy below it repeats a
// source record before that group's source commit, so it cannot move the
// answer past the commit; nullopt: not known, read from the start).
// `earlier`: a pass made while the group still read the target; it is
// carried on when nothing the answer depends on went back since (the
// group's target commit did not move back, its source commit is the same):
// SourcePosition keeps a maximum and FirstUnreadOnSource's answer only moves
// forward as the group reads on, so only the records after it are read.
ReturnScanStart PlanReturnScan(std::optional<int64_t> cutover, int64_t target_committed,
                               int64_t source_committed,
                               const std::optional<EarlierPass>& earlier);

// Where the group resumes on the source once the target's own records were
// copied back to it by a reverse mirror (rolling back after writes moved):
// the source partition then interleaves its own records with copies whose
// ferry.origin names the target. Fed the source partition in offset order,
// it finds the first record the group did not read: at or after
// `source_committed`, an own record above `last_source_read` (see
// SourcePosition) or a copy of a target record at or after the group's
// target offset. Records after it may have been read (they come again:
// duplicates); none before it is unread, so nothing is skipped. The reverse
// mirror copies the target in its order, so a key's messages keep their
// order here too.
class FirstUnreadOnSource final : public backend::RecordSink {
 public:
  // `end`: the source's high watermark, past which nothing is unread.
  FirstUnreadOnSource(std::string target_cluster, backend::TopicPartition partition,
                      int64_t source_committed, std::optional<int64_t> last_source_read,
                      int64_t target_committed, int64_t end);

  // True once the first unread record, or the record before `end`, arrived.
  bool Add(const backend::ConsumedRecord& record) override;

  bool complete() const { return complete_; }
  // The source offset to commit; `end` when the group read everything.
  int64_t resume() const { return resume_; }

 private:
  const std::string target_cluster_;
  const backend::TopicPartition partition_;
  const int64_t source_committed_;
  const int64_t last_source_read_;
  const int64_t target_committed_;
  const int64_t end_;
  bool complete_;
  int64_t resume_;
};

}  // namespace ferry::mirror
