#pragma once

// One partition a group owns on this node: its delivery state
// (PartitionState) and what the dispatcher keeps beside it: the fetched
// records until acked, which stream holds each in-flight delivery (for
// credit), commit progress, fetch pausing, an ongoing seek, and failed
// dead-letter writes.
//
// Commits: an offset counts as committed only once the broker confirmed it
// (OnCommitted). TakeCommit() hands out the offset to commit when the commit
// position moved past the confirmed one and no commit of it awaits an answer
// (or its answer is overdue), so a failed commit is sent again by the next
// commit round even when nothing new was acked.
//
// Threading: not thread-safe; owned by one dispatcher and used under its
// lock. Time is passed in. Cost: O(1) per operation while the buffered
// offsets are dense (no gaps), O(log n) in the number of buffered records
// otherwise; FinishSeek() and ReleaseAll() are O(n). Buffering allocates
// nothing beyond the record itself (amortized).
//
// Memory: a buffered record counts its key, value, headers and a fixed
// overhead against the buffer, but a Kafka record's bytes are views into
// librdkafka's fetch response, which one held record keeps alive whole. So
// records held longer than a moment (a slow consumer's in-flight message)
// get bytes of their own (OwnBytesBufferedBefore), and what stays pinned
// beyond the counted bytes is at most the fetches of that moment.
//
// Usage (the dispatcher):
//
//   PartitionSlot slot(assigned.next_offset, mode, epoch, &topic_metrics);
//   if (slot.Buffer(std::move(record), overhead, now) && slot.ShouldPauseFetch(limit))
//     member->Pause({tp});
//   if (auto d = slot.state().Deliver(stream, now, deadline)) {
//     slot.Hand(d->offset, {.stream = stream, .bytes = n, .delivered = now});
//   }
//   if (auto offset = slot.TakeCommit(now)) member->Commit({{tp, *offset}});
//   ... OnCommitted: slot.OnCommitted(offset, status.ok());

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "backend/group_member.h"
#include "subscribe/offset_ring.h"
#include "subscribe/partition_state.h"
#include "subscribe/subscribe_metrics.h"

namespace ferry::subscribe {

// A delivery out with a stream.
struct InFlight {
  StreamId stream = 0;
  int64_t bytes = 0;
  absl::Time delivered;
};

class PartitionSlot {
 public:
  // `next_offset`: where fetching starts (the committed offset). `metrics`
  // must outlive the slot.
  PartitionSlot(int64_t next_offset, OrderingMode mode, uint64_t epoch,
                TopicMetrics* metrics);

  PartitionSlot(const PartitionSlot&) = delete;
  PartitionSlot& operator=(const PartitionSlot&) = delete;

  PartitionState& state() { return state_; }
  const PartitionState& state() const { return state_; }
  uint64_t epoch() const { return epoch_; }
  TopicMetrics& metrics() const { return *metrics_; }

  // Buffers a fetched record, counting `overhead` bytes beyond its payload
  // against the buffer. False when the state refused it (seen before) or a
  // seek is under way (records from the old position).
  bool Buffer(backend::ConsumedRecord record, int64_t overhead, absl::Time now);
  // Records buffered before `cutoff` get bytes of their own (see Memory
  // above). Cost: O(log n) plus the records that turned old since the last
  // call.
  void OwnBytesBufferedBefore(absl::Time cutoff);
  // When the oldest record still sharing the backend's bytes was buffered
  // (nullopt: none), so the caller knows when OwnBytesBufferedBefore() has
  // work. O(log n).
  std::optional<absl::Time> OldestBorrowedBufferedAt() const;
  // A fetched record the group does not want (filtered out): it counts as
  // acked without being buffered. False, like Buffer(), for a record seen
  // before or one arriving during a seek.
  bool SkipFetched(int64_t offset);
  // Drops a buffered record that is not in flight (a filter changed and no
  // longer wants it); it counts as acked.
  void SkipWaiting(int64_t offset);
  // Gives back buffer memory the slot did not need since the last Trim():
  // buffers grow as records arrive but shrink only here, so a buffer that
  // fills and drains over and over keeps its size. Records may move:
  // pointers from Find() are invalidated.
  void Trim();
  // The buffered record at `offset`, or null once acked / skipped.
  const backend::ConsumedRecord* Find(int64_t offset) const;
  // Drops an acked or skipped record.
  void Forget(int64_t offset);
  size_t buffered_records() const { return held_.size(); }
  // After the last record fetched; the start offset before any.
  int64_t next_fetch() const { return next_fetch_; }

  // Deliveries out with streams.
  void Hand(int64_t offset, InFlight in_flight);
  // Takes a delivery out of flight; nullopt if it was not with a stream.
  std::optional<InFlight> Release(int64_t offset);
  // Takes every delivery out of flight (revoke, seek).
  std::vector<InFlight> ReleaseAll();

  // Fetch pausing by buffered bytes: pause above `limit`, resume at half.
  // Each returns true when the caller must tell the member.
  bool ShouldPauseFetch(int64_t limit);
  bool ShouldResumeFetch(int64_t limit);
  bool fetch_paused() const { return fetch_paused_; }
  // The whole group pauses / resumes (no threshold).
  void SetFetchPaused(bool paused) { fetch_paused_ = paused; }

  // Commits.
  std::optional<int64_t> TakeCommit(absl::Time now);
  // The offset the caller is committing itself (after a seek).
  void CommitSent(int64_t offset, absl::Time now);
  void OnCommitted(int64_t offset, bool ok);
  // The last offset the broker confirmed.
  int64_t committed() const { return committed_; }

  // Seeks: between StartSeek and FinishSeek nothing is buffered, delivered
  // or committed.
  void StartSeek(int64_t offset);
  bool seeking() const { return seeking_; }
  int64_t seek_target() const { return seek_target_; }
  // The seek took effect at `offset`: everything buffered is dropped and
  // delivery restarts there. Returns the deliveries that were in flight
  // (their receipts expire), for the caller to return their credit.
  std::vector<InFlight> FinishSeek(int64_t offset);

  // A dead-letter write of `offset` failed; returns the consecutive
  // failures so far (for the retry delay).
  int DeadLetterFailed(int64_t offset);

 private:
  PartitionState state_;
  const OrderingMode mode_;
  const uint64_t epoch_;
  TopicMetrics* const metrics_;
  // A fetched record from Buffer() until Forget(), with its delivery while
  // one is out with a stream.
  struct Held {
    backend::ConsumedRecord record;
    absl::Time buffered_at;
    std::optional<InFlight> in_flight = std::nullopt;
  };
  OffsetRing<Held> held_;
  // Held records below this offset own their bytes.
  int64_t owned_below_ = 0;
  std::map<int64_t, int> dead_letter_failures_;
  int64_t next_fetch_;
  bool fetch_paused_ = false;
  bool seeking_ = false;
  int64_t seek_target_ = -1;
  int64_t committed_;
  // The offset of the commit awaiting its answer (-1: none) and when it
  // went out.
  int64_t commit_sent_ = -1;
  absl::Time commit_sent_at_ = absl::InfinitePast();
};

}  // namespace ferry::subscribe
