#pragma once

// Where a consumer group starts on the target of a running migration when it
// reaches the target with nothing committed there: a group the consumer
// stage did not move (it subscribed after the stage listed the groups, or
// its commit on the source came later) that a node starts, or moves, onto a
// route that now reads the target (docs/migration.md, "Groups that start
// during a migration").
//
// Per partition without a commit on the target, the group's position on the
// source is translated exactly (TranslatePositions, TargetResumeOffset) and
// committed on the target before the group reads it. The position is the
// group's commit on the source, else its start position resolved there:
// `latest` the source's end, a time the source's first offset at or after
// it. So the group neither skips what the mirror copies after its position
// nor reads again what it read on the source. `earliest` without a source
// commit needs nothing: the group reads the target from its start, that is
// the source's history as the mirror copied it, then what was written to the
// target. A position the mirror has not copied yet is waited for (bounded),
// never guessed.
//
// Blocking (broker requests, the wait). Thread-safe: no state.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"
#include "control/control_record.h"
#include "mirror/offset_translator.h"

namespace ferry::mirror {

// The source position to translate for one partition; nullopt when the group
// needs nothing on the target: it committed there, or it starts at the
// target's start (`earliest`). `source_at_time`: the source's offset for a
// `start` time (-1: not known).
std::optional<int64_t> SourcePositionFor(int64_t target_committed,
                                         int64_t source_committed,
                                         const backend::StartPosition& start,
                                         int64_t source_end, int64_t source_at_time);

struct TargetStartOptions {
  using Translate = std::function<absl::StatusOr<std::vector<Translation>>(
      const std::map<backend::TopicPartition, int64_t>& positions,
      const ForwardHints& hints)>;

  // The longest wait for the mirror to copy the positions.
  absl::Duration timeout = absl::Seconds(60);
  absl::Duration poll = absl::Milliseconds(200);
  // Asked at every poll; true ends the wait (CANCELLED, nothing committed).
  std::function<bool()> cancelled = nullptr;
  // Told once, before the first wait, what is waited for.
  std::function<void(const std::string& what)> on_wait = nullptr;
  // Null: TranslatePositions on the job's clusters (tests answer inline).
  Translate translate = nullptr;
};

// Commits on the job's target, for `group`, the start of every partition of
// the job's topics that it has no commit in there (see above), and returns
// what it committed (empty: nothing was needed). DEADLINE_EXCEEDED naming
// the partition and offset the mirror did not copy within the timeout, or
// CANCELLED: nothing committed. Errors of the clusters' requests (a refused
// commit: FAILED_PRECONDITION while the group has members on the target) are
// returned as they are.
absl::StatusOr<std::map<backend::TopicPartition, int64_t>> CommitTargetStart(
    const control::MirrorSpec& job, const std::string& group,
    const backend::StartPosition& start, backend::Cluster& source,
    backend::Cluster& target, const TargetStartOptions& options = {});

}  // namespace ferry::mirror
