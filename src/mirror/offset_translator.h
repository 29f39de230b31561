#pragma once

// Exact consumer cutover for a mirror job: where a consumer group of the
// job's source starts on the target so that it neither skips nor re-reads.
//
// For a partition where the group committed source offset g, the answer is
// the target offset of the first copy of the first source record at or after
// g, which is the first record of the target partition, in target order,
// whose ferry.origin names the job's source cluster, the same topic and
// partition, and an offset >= g. Why: the job copies a partition in source
// order and, after a failure, copies again from its last commit, so the
// first copies of source records appear on the target in source order
// (later duplicates only repeat records already copied). Records without
// ferry.origin (written to the target directly) or copied from elsewhere are
// skipped. When no such record is on the target, the position is not known
// yet and is reported so, never guessed.
//
// Cost: one standalone reader on the target (no group, nothing committed)
// that reads each partition from its start, or where an earlier search for
// the same group stopped (ForwardHints), up to the answer; blocking.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"
#include "control/control_record.h"

namespace ferry::mirror {

// The offset `offsets` holds for `tp`; -1 when none.
int64_t OffsetOf(const std::map<backend::TopicPartition, int64_t>& offsets,
                 const backend::TopicPartition& tp);

// The source offset a target record was copied from, when `headers` say it
// is a copy of `partition` on `source_cluster`; nullopt otherwise.
std::optional<int64_t> CopiedFrom(const std::vector<backend::HeaderView>& headers,
                                  const std::string& source_cluster,
                                  const backend::TopicPartition& partition);

struct Translation {
  enum class State {
    kTranslated,      // target_offset is exact
    kNotYetMirrored,  // no copy of a record at or after group_offset on the target
    kNoGroupOffset,   // the group committed nothing in this partition
  };
  backend::TopicPartition partition;
  State state = State::kNoGroupOffset;
  int64_t group_offset = -1;     // committed by the group on the source
  int64_t mirrored_offset = -1;  // committed by the job: every record below is copied
  int64_t target_offset = -1;    // kTranslated only
  // No target record below it (from where the search began) is a copy of a
  // record at or after group_offset; where a later search continues.
  int64_t searched_to = 0;
};

// What shortens TranslateOffsets' reads: an earlier answer for the same
// group (ForwardScanFrom); empty: none.
struct ForwardHints {
  std::vector<Translation> earlier;
};

struct TranslateOptions {
  // For the whole translation; DEADLINE_EXCEEDED past it.
  absl::Duration timeout = absl::Seconds(30);
  // A partition whose reader got nothing for this long (since it was
  // assigned or since its last record) is read to its end: its last offsets
  // may be no records (transaction markers, compaction). Too short only
  // turns an answer into kNotYetMirrored, never a wrong one.
  absl::Duration quiet = absl::Seconds(3);
};

// Per partition of the job's topics, in topic and partition order. Errors of
// the clusters' metadata and offset requests are returned as they are.
absl::StatusOr<std::vector<Translation>> TranslateOffsets(
    const control::MirrorSpec& job, const std::string& group, backend::Cluster& source,
    backend::Cluster& target, const TranslateOptions& options = {},
    const ForwardHints& hints = {});

// TranslateOffsets for source positions that are no group's commit (a start
// position resolved on the source); a partition missing from `positions` is
// kNoGroupOffset.
absl::StatusOr<std::vector<Translation>> TranslatePositions(
    const control::MirrorSpec& job,
    const std::map<backend::TopicPartition, int64_t>& positions, backend::Cluster& source,
    backend::Cluster& target, const TranslateOptions& options = {},
    const ForwardHints& hints = {});

// Where the group resumes on the target, from `t` and the partition's high
// watermarks read after it: the target's (`target_end`), then the source's
// (`source_end`). The translated offset; or, when the position is the
// source's end and the job copied everything below it, the target's end
// (read first, it holds no copy of a later record); nullopt when it is not
// known yet (wait for the mirror and ask again) or there is no position.
std::optional<int64_t> TargetResumeOffset(const Translation& t, int64_t source_end,
                                          int64_t target_end);

// Rolling back: where a consumer group that reads the job's target resumes on
// the job's source (see SourcePosition for why it is exact).
struct ReturnPosition {
  backend::TopicPartition partition;
  int64_t target_offset = -1;     // committed by the group on the target (-1: none)
  int64_t source_committed = -1;  // committed on the source (before it moved; -1: none)
  // False while the target's records up to target_offset were not all read
  // (the scan's quiet period ended first): never guessed, ask again.
  bool complete = false;
  // Where to commit on the source; -1: the group read nothing of this
  // partition anywhere (it starts at its configured position).
  int64_t source_offset = -1;
  // The highest source offset whose copy the group read (SourcePosition).
  std::optional<int64_t> last_source_read = std::nullopt;
};

// What shortens TranslateBack's reads (PlanReturnScan).
struct ReturnHints {
  // Per target partition: the lowest offset at which a group moved at the
  // consumer stage resumed there (MigrationState::cutover); missing: read
  // from the start.
  std::map<backend::TopicPartition, int64_t> cutover;
  // An earlier answer for the same group and `copied_back`; empty: none.
  std::vector<ReturnPosition> earlier;
};

// Per partition of the job's topics on the source, in topic and partition
// order. Reads each target partition from the cutover (or where `hints`'
// earlier answer stopped) up to the group's committed offset; with
// `copied_back` (a reverse mirror copied the target's own records to the
// source, which must be complete) also each source partition from the
// group's source commit (or the earlier answer) up to the first record the
// group did not read (FirstUnreadOnSource). Errors of the clusters' requests
// are returned as they are, DEADLINE_EXCEEDED after `options.timeout`, which
// bounds the offset and metadata requests too (a write hold's bound).
absl::StatusOr<std::vector<ReturnPosition>> TranslateBack(
    const control::MirrorSpec& job, const std::string& group, backend::Cluster& source,
    backend::Cluster& target, bool copied_back, const ReturnHints& hints = {},
    const TranslateOptions& options = {});

}  // namespace ferry::mirror
