#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "absl/status/status.h"

namespace ferry::mirror {

// The state of one source partition that a mirror job copies on this node:
// which source records went to the target, which the target acknowledged,
// and so which source offset may be committed (every record below it is on
// the target). Not thread-safe: MirrorJob guards it.
//
// Order: records are sent in source order through one idempotent producer,
// so a failed record makes every later in-flight record of the partition
// fail too, unless the failed one was in fact written ("possibly
// persisted"). Copying again from the first failed offset therefore leaves
// the target with the source's records in source order when each is counted
// at its first occurrence; the records re-sent after being acknowledged are
// counted as duplicates.
class PartitionCopier {
 public:
  explicit PartitionCopier(int64_t next_offset) : next_offset_(next_offset) {}

  // Whether to send the fetched record at `offset` now. False while the
  // partition rewinds, for records before the expected position (fetched
  // before a seek), and after a record could never be written. When true,
  // the record counts as in flight until Acked or Failed.
  bool Accept(int64_t offset);
  // Like Accept for a record the job does not copy (MirrorSpec::skip_origin):
  // it counts as done at once, so the commit passes it once every record
  // before it is acknowledged; a rewind before it skips it again.
  bool Skip(int64_t offset);

  void Acked(int64_t offset);
  // `retryable`: another attempt may succeed (the partition is copied again
  // from the first failed offset); otherwise the partition stops at it.
  void Failed(int64_t offset, const absl::Status& status, bool retryable);

  // Once every in-flight record of a rewinding partition resolved: the
  // source offset to seek to, once. The caller seeks the source member and
  // reports SeekDone.
  std::optional<int64_t> TakeRewind();
  void SeekDone(int64_t offset);

  // Every record below this source offset is on the target.
  int64_t commit_offset() const;
  int64_t in_flight() const { return static_cast<int64_t>(in_flight_.size()); }
  bool rewinding() const { return rewinding_; }
  // Why the partition stopped (a record the target refuses); OK otherwise.
  const absl::Status& stopped() const { return stopped_; }
  // Records the target acknowledged, duplicates included.
  int64_t copied() const { return copied_; }
  // Records sent again after the target had acknowledged them.
  int64_t duplicates() const { return duplicates_; }

 private:
  enum class State { kSent, kAcked, kFailed, kSkipped };
  struct Entry {
    int64_t offset;
    State state;
  };

  Entry* Find(int64_t offset);
  void PopAckedPrefix();

  // The next source offset to accept (records may skip offsets: compaction,
  // transaction markers).
  int64_t next_offset_;
  // Accepted records from the first one not acknowledged on, oldest first
  // (offsets increase); the acknowledged prefix is dropped.
  std::deque<Entry> in_flight_;
  bool rewinding_ = false;
  bool rewind_taken_ = false;
  absl::Status stopped_;
  int64_t copied_ = 0;
  int64_t duplicates_ = 0;
};

}  // namespace ferry::mirror
