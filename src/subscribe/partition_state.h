#pragma once

// Delivery bookkeeping for one partition of one consumer group on one node:
// which fetched messages are waiting, in flight (and with which stream, until
// when), acked; what may be handed out next under the subscription's ordering
// mode; and the offset that is safe to commit (the lowest unacked one).
//
// This is the heart of the subscribe path's at-least-once contract
// (DESIGN.md §2 "Subscribe"): nothing is committed past an unacked message,
// and every unacked message is delivered again after a nack, a missed ack
// deadline or the loss of the stream holding it.
//
// Threading: not thread-safe. Each instance is owned by one dispatcher and
// used from one thread (or under the dispatcher's lock). Time is passed in,
// never read, so tests drive it with a fake clock; the `now` arguments are
// expected not to go backwards.
//
// Cost: every operation is O(log n) in the number of buffered messages (plus
// O(log n) per message Deliver moves for delayed messages whose delay
// passed), except Reset(), which frees everything, ReleaseStream(), and
// ExpireDeadlines() once the earliest deadline passed: those are O(n) (one
// scan instead of two more trees updated for every delivery and ack).
//
// Usage (one dispatcher, one partition):
//
//   PartitionState state(committed_offset, OrderingMode::kKey);
//   state.Append({.offset = 42, .key = "user-7", .bytes = 100});
//   if (std::optional<Delivery> d = state.Deliver(stream, now, absl::Seconds(30))) {
//     Send(stream, *d);  // the wire receipt encodes d->receipt()
//   }
//   ...
//   if (state.Ack(receipt) == ReceiptCheck::kExpired) ReplyReceiptExpired();
//   Commit(state.CommitOffset());

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "subscribe/offset_ring.h"

namespace ferry::subscribe {

enum class OrderingMode {
  kNone,       // any waiting message may go out, to any stream
  kKey,        // at most one message per non-empty key in flight; keyless: unordered
  kPartition,  // at most one message of the partition in flight
};

using StreamId = uint64_t;

// A message fetched from the broker, as the dispatcher hands it over.
struct FetchedMessage {
  int64_t offset = -1;
  std::string key = {};
  // Bytes the message occupies in memory (key + value + headers); counted in
  // buffered_bytes() until it is acked.
  int64_t bytes = 0;
};

// Identifies one delivery; the client sends it back (inside the opaque wire
// receipt) to ack, nack or extend that delivery.
struct Receipt {
  int64_t offset = -1;
  int32_t attempt = 0;
  // The PartitionState generation the delivery was made in; Reset() starts a
  // new one. Needed because after a rewind the same offset is handed out again
  // with the same attempt numbers, and a receipt from before the seek must not
  // settle the new delivery.
  uint64_t generation = 0;
};

// One hand-out of a message to a stream.
struct Delivery {
  int64_t offset = -1;
  // 1 on the first delivery, incremented on every redelivery. Counted per
  // generation: after Reset() a message starts at 1 again.
  int32_t attempt = 0;
  uint64_t generation = 0;
  StreamId stream = 0;
  absl::Time deadline;

  Receipt receipt() const { return {offset, attempt, generation}; }
};

enum class ReceiptCheck {
  kOk,
  // The receipt's delivery is not in flight: the message was acked or skipped
  // already, nacked, its deadline expired or its stream released (even if it
  // was not handed out again yet), redelivered since (stale attempt), never
  // delivered, or dropped by Reset(). The state is unchanged. Callers answer
  // FAILED_PRECONDITION "receipt expired".
  kExpired,
};

class PartitionState {
 public:
  // `next_offset` is where fetching starts (the committed offset); it is the
  // commit offset until a message is appended.
  PartitionState(int64_t next_offset, OrderingMode mode);

  PartitionState(const PartitionState&) = delete;
  PartitionState& operator=(const PartitionState&) = delete;

  // Buffers a fetched message. Offsets must increase; gaps are allowed
  // (compacted topics, transaction markers) and do not hold back commits.
  // A message whose offset is below the next expected one (already appended,
  // skipped, or before the constructor's / Reset()'s next_offset) is ignored,
  // so a re-fetch cannot buffer a message twice. Returns whether the message
  // was buffered.
  bool Append(FetchedMessage message);

  // Messages that are skipped without delivery (filtered out, dead-lettered)
  // count as acked at once, so commits move past them. Works on:
  // - a buffered message, waiting or in flight (its receipt then expires and
  //   its key's / partition's next message becomes deliverable);
  // - an offset not appended yet (at or above the next expected one): it counts
  //   as appended and acked, so the dispatcher need not buffer filtered
  //   messages; later appends must be above it.
  // Any other offset (acked already, a gap, before next_offset) is ignored.
  void Skip(int64_t offset);

  // The next message `stream` may receive now, if any: the lowest-offset
  // waiting message whose redelivery delay has passed and whose ordering
  // gate is open. It becomes in flight with `stream` until now + ack_deadline.
  // Ordering gates: kNone: always open. kKey: a non-empty key's messages go out
  // one at a time in offset order, the next only after the previous one was
  // acked or skipped; a nacked (even delayed), expired or released message
  // keeps its key blocked until it went out again and was acked (or it is
  // skipped). Keyless messages are unordered. kPartition: the same with the
  // whole partition as one key.
  std::optional<Delivery> Deliver(StreamId stream, absl::Time now,
                                  absl::Duration ack_deadline);
  // The same, for a stream that wants only some messages (its own filter):
  // the lowest-offset deliverable message at or above `from` for which
  // `wanted(offset)` holds. Messages it passes over stay deliverable to other
  // streams. O(k log n) for the k messages passed over; a caller delivering
  // several messages in a row passes `from` = the last offset + 1.
  std::optional<Delivery> Deliver(StreamId stream, absl::Time now,
                                  absl::Duration ack_deadline, int64_t from,
                                  absl::FunctionRef<bool(int64_t offset)> wanted);

  // Settles a delivery: the message counts as acked.
  ReceiptCheck Ack(const Receipt& receipt);
  // Makes the message wait again, deliverable no sooner than now + delay
  // (at once if delay <= 0). It keeps its place in the ordering: in kKey /
  // kPartition mode its key / the partition stays blocked meanwhile.
  ReceiptCheck Nack(const Receipt& receipt, absl::Time now, absl::Duration delay);
  // Sets the ack deadline of an in-flight delivery to `deadline` (later or
  // earlier; a deadline in the past expires at the next ExpireDeadlines()).
  ReceiptCheck Extend(const Receipt& receipt, absl::Time deadline);

  // Hands an in-flight delivery over to another stream with a new deadline
  // (the node itself taking a message over, e.g. to dead-letter it), so that
  // releasing the original stream no longer affects it.
  ReceiptCheck Reassign(const Receipt& receipt, StreamId stream, absl::Time deadline);

  // Moves in-flight messages whose deadline is <= now back to waiting
  // (deliverable at once); returns their offsets in increasing order.
  std::vector<int64_t> ExpireDeadlines(absl::Time now);

  // Moves every message in flight with `stream` back to waiting (the stream
  // closed or broke); returns their offsets in increasing order.
  std::vector<int64_t> ReleaseStream(StreamId stream);

  // Forgets everything (after a seek or a revoke): receipts handed out so far
  // are kExpired from now on, even for offsets delivered again later, and
  // fetching restarts at `next_offset` (also the commit offset until a message
  // is appended).
  void Reset(int64_t next_offset);

  // Gives back buffer memory the state did not need since the last Trim()
  // (call it now and then: buffers grow, but only this shrinks them).
  void Trim() { entries_.Trim(); }

  // The offset safe to commit: the lowest offset not yet acked or skipped,
  // or, when everything appended is acked, the offset after the last one
  // appended or skipped (or the current next_offset if there was none).
  int64_t CommitOffset() const;

  // Bytes of messages not yet acked (waiting or in flight).
  int64_t buffered_bytes() const { return buffered_bytes_; }
  size_t in_flight() const;
  // Buffered messages not in flight: deliverable, delayed or held back by the
  // ordering gate.
  size_t waiting() const;
  // Offsets of the buffered messages not in flight, in increasing order. O(n).
  std::vector<int64_t> WaitingOffsets() const;
  // Delivery attempts so far of a message not yet acked (0 if unknown).
  int32_t attempts(int64_t offset) const;
  // The earliest time at which a currently delayed message becomes
  // deliverable, for the dispatcher's timer; nullopt if none is delayed.
  // Delays are checked lazily by Deliver(), so the time may already be past:
  // then a Deliver() call is due.
  std::optional<absl::Time> NextRedeliveryTime() const;
  // A time no later than the earliest ack deadline in flight, for the
  // dispatcher's timer (InfiniteFuture: nothing in flight). It may be
  // earlier than any deadline left (those acked since): then the next
  // ExpireDeadlines() call finds the true one.
  absl::Time NextDeadlineCheck() const { return earliest_deadline_; }
  uint64_t generation() const { return generation_; }

 private:
  enum class Phase {
    kBlocked,   // waiting behind an earlier message of its key / the partition
    kReady,     // waiting, gate open, deliverable (in ready_)
    kDelayed,   // waiting, gate open, not before not_before (in delayed_)
    kInFlight,  // delivered, until deadline (counted in in_flight_)
  };

  struct Entry {
    std::string key;
    int64_t bytes = 0;
    int32_t attempt = 0;
    Phase phase = Phase::kBlocked;
    StreamId stream = 0;
    absl::Time deadline;    // kInFlight only
    absl::Time not_before;  // kDelayed only
  };

  // The in-flight entry a receipt names, or nullptr if the receipt expired.
  Entry* FindInFlight(const Receipt& receipt);
  // An in-flight entry leaves flight (the caller sets its new phase).
  void LeaveFlight();
  // Moves the in-flight messages that `matches` to ready; returns their
  // offsets in increasing order.
  std::vector<int64_t> ReturnToReady(absl::FunctionRef<bool(const Entry&)> matches);
  // Moves delayed messages whose delay passed to ready_.
  void PromoteDue(absl::Time now);
  // Hands a ready message to `stream`.
  Delivery Take(int64_t offset, StreamId stream, absl::Time now,
                absl::Duration ack_deadline);
  // Removes a buffered entry (acked or skipped) and opens the gate for the
  // next message of its key / the partition if it held it.
  void Remove(int64_t offset, Entry& entry);

  const OrderingMode mode_;
  uint64_t generation_ = 0;
  // Offsets below this were appended, skipped or precede next_offset; the
  // commit offset when nothing is buffered.
  int64_t end_offset_;
  int64_t buffered_bytes_ = 0;

  // Every buffered (not acked, not skipped) message by offset.
  OffsetRing<Entry> entries_;
  // Waiting messages whose gate is open, deliverable now. B-trees: a
  // std::set allocated a node per buffered message.
  absl::btree_set<int64_t> ready_;
  // Waiting messages whose gate is open but which were nacked with a delay,
  // by (not_before, offset). Moved to ready_ by Deliver() once due.
  absl::btree_set<std::pair<absl::Time, int64_t>> delayed_;
  // Messages in flight, and a time no later than the earliest of their
  // deadlines (InfiniteFuture: none known): ExpireDeadlines() scans only once
  // it passed.
  size_t in_flight_ = 0;
  absl::Time earliest_deadline_ = absl::InfiniteFuture();
  // kKey only: buffered offsets of each non-empty key. The first one is the
  // only one whose gate is open (all later ones are kBlocked).
  std::unordered_map<std::string, std::set<int64_t>> keys_;
};

}  // namespace ferry::subscribe
