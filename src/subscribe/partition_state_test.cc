#include "subscribe/partition_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ferry::subscribe {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);
const absl::Duration kDeadline = absl::Seconds(30);

FetchedMessage Msg(int64_t offset, std::string key = "", int64_t bytes = 10) {
  return FetchedMessage{.offset = offset, .key = std::move(key), .bytes = bytes};
}

// Delivers to stream 1 at kT0 and returns the offset, or -1 if nothing is
// deliverable.
int64_t NextOffset(PartitionState& state, absl::Time now = kT0, StreamId stream = 1) {
  std::optional<Delivery> d = state.Deliver(stream, now, kDeadline);
  return d.has_value() ? d->offset : -1;
}

// --- Commit offset ---------------------------------------------------------

TEST(PartitionStateCommit, IsNextOffsetBeforeAnyAppend) {
  PartitionState state(100, OrderingMode::kNone);
  EXPECT_EQ(state.CommitOffset(), 100);
}

TEST(PartitionStateCommit, StopsAtLowestUnackedAndSkipsGaps) {
  // Given offsets 10, 12, 15 (gaps: compaction) after next_offset 5.
  PartitionState state(5, OrderingMode::kNone);
  state.Append(Msg(10));
  state.Append(Msg(12));
  state.Append(Msg(15));
  EXPECT_EQ(state.CommitOffset(), 10);
  Delivery d10 = *state.Deliver(1, kT0, kDeadline);
  Delivery d12 = *state.Deliver(1, kT0, kDeadline);
  Delivery d15 = *state.Deliver(1, kT0, kDeadline);

  // When a later message is acked first, the commit offset holds.
  EXPECT_EQ(state.Ack(d12.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(state.CommitOffset(), 10);
  // When the lowest is acked, it moves to the next unacked one across the gap.
  EXPECT_EQ(state.Ack(d10.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(state.CommitOffset(), 15);
  // When everything is acked, it is the offset after the last one.
  EXPECT_EQ(state.Ack(d15.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(state.CommitOffset(), 16);
}

TEST(PartitionStateCommit, DuplicateOrEarlierAppendIsIgnored) {
  PartitionState state(5, OrderingMode::kNone);
  EXPECT_FALSE(state.Append(Msg(3)));  // before next_offset
  EXPECT_EQ(state.waiting(), 0u);
  EXPECT_TRUE(state.Append(Msg(5)));
  EXPECT_FALSE(state.Append(Msg(5)));  // re-fetched
  EXPECT_EQ(state.waiting(), 1u);
  EXPECT_EQ(state.buffered_bytes(), 10);
}

// --- Skip --------------------------------------------------------------------

TEST(PartitionStateDeliverWanted, PassesOverUnwantedMessagesLeavingThemReady) {
  PartitionState state(0, OrderingMode::kNone);
  for (int64_t o = 0; o < 4; ++o) state.Append(Msg(o));
  auto odd = [](int64_t offset) { return offset % 2 == 1; };
  auto first = state.Deliver(1, kT0, kDeadline, 0, odd);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->offset, 1);
  auto second = state.Deliver(1, kT0, kDeadline, first->offset + 1, odd);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->offset, 3);
  EXPECT_FALSE(state.Deliver(1, kT0, kDeadline, 0, odd).has_value());
  EXPECT_EQ(NextOffset(state, kT0, 2), 0) << "passed over, still deliverable";
  EXPECT_EQ(state.WaitingOffsets(), std::vector<int64_t>{2});
}

TEST(PartitionStateDeliverWanted, KeepsTheKeyGate) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "a"));
  auto only_second = [](int64_t offset) { return offset == 1; };
  EXPECT_FALSE(state.Deliver(1, kT0, kDeadline, 0, only_second).has_value())
      << "1 waits behind 0 of its key";
}

TEST(PartitionStateSkip, WaitingMessageCountsAsAcked) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0, "", 7));
  state.Append(Msg(1, "", 5));
  state.Skip(0);
  EXPECT_EQ(state.CommitOffset(), 1);
  EXPECT_EQ(state.buffered_bytes(), 5);
  EXPECT_EQ(state.waiting(), 1u);
  EXPECT_EQ(NextOffset(state), 1);
}

TEST(PartitionStateSkip, UnbufferedOffsetAheadCountsAsAppendedAndAcked) {
  PartitionState state(0, OrderingMode::kNone);
  state.Skip(0);
  state.Skip(1);
  EXPECT_EQ(state.CommitOffset(), 2);
  state.Append(Msg(1));  // below the cursor now: ignored
  EXPECT_EQ(state.waiting(), 0u);
  state.Append(Msg(2));
  EXPECT_EQ(state.CommitOffset(), 2);
}

TEST(PartitionStateSkip, InFlightMessageExpiresItsReceiptAndOpensItsKey) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "k"));
  state.Append(Msg(1, "k"));
  Delivery d = *state.Deliver(1, kT0, kDeadline);
  state.Skip(0);
  EXPECT_EQ(state.Ack(d.receipt()), ReceiptCheck::kExpired);
  EXPECT_EQ(state.CommitOffset(), 1);
  EXPECT_EQ(NextOffset(state), 1);
}

TEST(PartitionStateSkip, BlockedLaterMessageOfKeyLeavesOrderIntact) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "k"));
  state.Append(Msg(1, "k"));
  state.Append(Msg(2, "k"));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  state.Skip(1);
  EXPECT_EQ(NextOffset(state), -1);  // 0 still in flight
  ASSERT_EQ(state.Ack(d0.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(NextOffset(state), 2);
}

// --- Ordering ------------------------------------------------------------------

TEST(PartitionStateOrdering, NoneHandsOutManyInFlightLowestFirst) {
  PartitionState state(0, OrderingMode::kNone);
  for (int64_t o = 0; o < 3; ++o) state.Append(Msg(o, "same"));
  EXPECT_EQ(NextOffset(state, kT0, 1), 0);
  EXPECT_EQ(NextOffset(state, kT0, 2), 1);
  EXPECT_EQ(NextOffset(state, kT0, 1), 2);
  EXPECT_EQ(NextOffset(state), -1);
  EXPECT_EQ(state.in_flight(), 3u);
  EXPECT_EQ(state.waiting(), 0u);
}

TEST(PartitionStateOrdering, KeyAllowsOneInFlightPerKeyNextOnlyAfterAck) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "a"));
  state.Append(Msg(2, "b"));
  state.Append(Msg(3, "a"));
  Delivery a0 = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(a0.offset, 0);
  EXPECT_EQ(NextOffset(state), 2);   // other key proceeds
  EXPECT_EQ(NextOffset(state), -1);  // "a" blocked behind 0
  ASSERT_EQ(state.Ack(a0.receipt()), ReceiptCheck::kOk);
  Delivery a1 = *state.Deliver(2, kT0, kDeadline);  // any stream may get it
  EXPECT_EQ(a1.offset, 1);
  EXPECT_EQ(NextOffset(state), -1);
  ASSERT_EQ(state.Ack(a1.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(NextOffset(state), 3);
}

TEST(PartitionStateOrdering, KeylessMessagesAreUnorderedInKeyMode) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, ""));
  state.Append(Msg(1, "a"));
  state.Append(Msg(2, ""));
  state.Append(Msg(3, "a"));
  state.Append(Msg(4, ""));
  EXPECT_EQ(NextOffset(state), 0);
  EXPECT_EQ(NextOffset(state), 1);
  EXPECT_EQ(NextOffset(state), 2);
  EXPECT_EQ(NextOffset(state), 4);
  EXPECT_EQ(NextOffset(state), -1);
}

TEST(PartitionStateOrdering, KeyNackedMessageGoesOutAgainBeforeLaterOfItsKey) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "a"));
  Delivery first = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(first.receipt(), kT0, absl::ZeroDuration()), ReceiptCheck::kOk);
  Delivery again = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(again.offset, 0);
  EXPECT_EQ(again.attempt, 2);
  EXPECT_EQ(NextOffset(state), -1);
}

TEST(PartitionStateOrdering, KeyExpiredAndReleasedMessagesGoOutAgainFirst) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "a"));
  state.Append(Msg(2, "b"));
  state.Append(Msg(3, "b"));
  ASSERT_EQ(NextOffset(state, kT0, 1), 0);
  ASSERT_EQ(NextOffset(state, kT0 + absl::Seconds(5), 2), 2);

  EXPECT_THAT(state.ExpireDeadlines(kT0 + kDeadline), ElementsAre(0));
  EXPECT_EQ(NextOffset(state, kT0 + kDeadline, 3), 0);
  EXPECT_THAT(state.ReleaseStream(2), ElementsAre(2));
  EXPECT_EQ(NextOffset(state, kT0 + kDeadline, 3), 2);
  EXPECT_EQ(NextOffset(state, kT0 + kDeadline, 3), -1);
}

TEST(PartitionStateOrdering, PartitionModeOneInFlightLowestFirst) {
  PartitionState state(0, OrderingMode::kPartition);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "b"));
  state.Append(Msg(2, ""));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(d0.offset, 0);
  EXPECT_EQ(NextOffset(state), -1);
  ASSERT_EQ(state.Nack(d0.receipt(), kT0, absl::ZeroDuration()), ReceiptCheck::kOk);
  Delivery again = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(again.offset, 0);
  ASSERT_EQ(state.Ack(again.receipt()), ReceiptCheck::kOk);
  Delivery d1 = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(d1.offset, 1);
  EXPECT_EQ(NextOffset(state), -1);
  state.Skip(1);  // e.g. dead-lettered while in flight
  EXPECT_EQ(NextOffset(state), 2);
}

TEST(PartitionStateOrdering, RedeliveredMessageGoesOutBeforeLaterOnesInNoneMode) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  state.Append(Msg(1));
  state.Append(Msg(2));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d0.receipt(), kT0, absl::ZeroDuration()), ReceiptCheck::kOk);
  EXPECT_EQ(NextOffset(state), 0);
  EXPECT_EQ(NextOffset(state), 1);
}

// --- Nack delay ------------------------------------------------------------------

TEST(PartitionStateNackDelay, NoneModeOthersProceedWhileDelayed) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  state.Append(Msg(1));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d0.receipt(), kT0, absl::Seconds(10)), ReceiptCheck::kOk);
  EXPECT_EQ(state.NextRedeliveryTime(), kT0 + absl::Seconds(10));
  EXPECT_EQ(NextOffset(state, kT0 + absl::Seconds(1)), 1);
  EXPECT_EQ(NextOffset(state, kT0 + absl::Seconds(9)), -1);
  Delivery again = *state.Deliver(1, kT0 + absl::Seconds(10), kDeadline);
  EXPECT_EQ(again.offset, 0);
  EXPECT_EQ(again.attempt, 2);
  EXPECT_EQ(state.NextRedeliveryTime(), std::nullopt);
}

TEST(PartitionStateNackDelay, KeyModeBlocksOnlyThatKey) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "a"));
  state.Append(Msg(2, "b"));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d0.receipt(), kT0, absl::Seconds(10)), ReceiptCheck::kOk);
  EXPECT_EQ(NextOffset(state, kT0 + absl::Seconds(1)), 2);
  EXPECT_EQ(NextOffset(state, kT0 + absl::Seconds(2)), -1);  // 1 waits behind 0
  EXPECT_EQ(NextOffset(state, kT0 + absl::Seconds(10)), 0);
}

TEST(PartitionStateNackDelay, PartitionModeBlocksThePartition) {
  PartitionState state(0, OrderingMode::kPartition);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "b"));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d0.receipt(), kT0, absl::Seconds(10)), ReceiptCheck::kOk);
  EXPECT_EQ(state.in_flight(), 0u);
  EXPECT_EQ(NextOffset(state, kT0 + absl::Seconds(5)), -1);
  EXPECT_EQ(NextOffset(state, kT0 + absl::Seconds(10)), 0);
}

TEST(PartitionStateNackDelay, NextRedeliveryTimeIsTheEarliest) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  state.Append(Msg(1));
  EXPECT_EQ(state.NextRedeliveryTime(), std::nullopt);
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  Delivery d1 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d0.receipt(), kT0, absl::Seconds(20)), ReceiptCheck::kOk);
  ASSERT_EQ(state.Nack(d1.receipt(), kT0, absl::Seconds(5)), ReceiptCheck::kOk);
  EXPECT_EQ(state.NextRedeliveryTime(), kT0 + absl::Seconds(5));
  state.Skip(1);
  EXPECT_EQ(state.NextRedeliveryTime(), kT0 + absl::Seconds(20));
}

// --- Attempts and receipts ---------------------------------------------------------

TEST(PartitionStateReceipts, AttemptCountsDeliveries) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  EXPECT_EQ(state.attempts(0), 0);
  Delivery d1 = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(d1.attempt, 1);
  ASSERT_THAT(state.ExpireDeadlines(kT0 + kDeadline), ElementsAre(0));
  Delivery d2 = *state.Deliver(1, kT0 + kDeadline, kDeadline);
  EXPECT_EQ(d2.attempt, 2);
  ASSERT_THAT(state.ReleaseStream(1), ElementsAre(0));
  Delivery d3 = *state.Deliver(2, kT0 + kDeadline, kDeadline);
  EXPECT_EQ(d3.attempt, 3);
  EXPECT_EQ(state.attempts(0), 3);
  EXPECT_EQ(state.attempts(99), 0);
}

TEST(PartitionStateReceipts, StaleAttemptIsExpiredAndChangesNothing) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  Delivery d1 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d1.receipt(), kT0, absl::ZeroDuration()), ReceiptCheck::kOk);
  // Nacked but not redelivered yet: the receipt is no longer in flight.
  EXPECT_EQ(state.Ack(d1.receipt()), ReceiptCheck::kExpired);
  Delivery d2 = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(state.Ack(d1.receipt()), ReceiptCheck::kExpired);
  EXPECT_EQ(state.Nack(d1.receipt(), kT0, absl::ZeroDuration()), ReceiptCheck::kExpired);
  EXPECT_EQ(state.Extend(d1.receipt(), kT0 + absl::Hours(1)), ReceiptCheck::kExpired);
  EXPECT_EQ(state.in_flight(), 1u);
  EXPECT_THAT(state.ExpireDeadlines(kT0 + kDeadline), ElementsAre(0));  // not extended
  EXPECT_EQ(state.Ack(d2.receipt()), ReceiptCheck::kExpired);
}

TEST(PartitionStateReceipts, DoubleAckAndUnknownOffsetsAreExpired) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  state.Append(Msg(1));
  Delivery d = *state.Deliver(1, kT0, kDeadline);
  EXPECT_EQ(state.Ack(d.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(state.Ack(d.receipt()), ReceiptCheck::kExpired);
  EXPECT_EQ(state.Ack(Receipt{.offset = 1, .attempt = 1}),
            ReceiptCheck::kExpired);  // waiting
  EXPECT_EQ(state.Ack(Receipt{.offset = 7, .attempt = 1}), ReceiptCheck::kExpired);
  EXPECT_EQ(state.CommitOffset(), 1);
  EXPECT_EQ(state.waiting(), 1u);
}

TEST(PartitionStateReceipts, ExtendMovesTheDeadline) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  state.Append(Msg(1));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  Delivery d1 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Extend(d0.receipt(), kT0 + absl::Minutes(5)), ReceiptCheck::kOk);
  EXPECT_THAT(state.ExpireDeadlines(kT0 + kDeadline), ElementsAre(1));
  EXPECT_THAT(state.ExpireDeadlines(kT0 + absl::Minutes(4)), IsEmpty());
  EXPECT_EQ(state.Ack(d1.receipt()), ReceiptCheck::kExpired);
  EXPECT_THAT(state.ExpireDeadlines(kT0 + absl::Minutes(5)), ElementsAre(0));
}

// --- Expiry and release --------------------------------------------------------------

TEST(PartitionStateExpiry, MovesBackOnlyDueDeliveries) {
  PartitionState state(0, OrderingMode::kNone);
  for (int64_t o = 0; o < 3; ++o) state.Append(Msg(o));
  ASSERT_EQ(NextOffset(state, kT0 + absl::Seconds(2)), 0);
  ASSERT_EQ(NextOffset(state, kT0), 1);
  ASSERT_EQ(NextOffset(state, kT0 + absl::Seconds(9)), 2);
  EXPECT_THAT(state.ExpireDeadlines(kT0 + kDeadline + absl::Seconds(2)),
              ElementsAre(0, 1));
  EXPECT_EQ(state.in_flight(), 1u);
  EXPECT_EQ(state.waiting(), 2u);
  EXPECT_THAT(state.ExpireDeadlines(kT0 + kDeadline + absl::Seconds(2)), IsEmpty());
}

TEST(PartitionStateRelease, ReassignedDeliveryStaysWithItsNewStream) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  Delivery d = *state.Deliver(7, kT0, kDeadline);
  ASSERT_EQ(state.Reassign(d.receipt(), 0, kT0 + absl::Minutes(5)), ReceiptCheck::kOk);
  EXPECT_THAT(state.ReleaseStream(7), IsEmpty());
  EXPECT_THAT(state.ExpireDeadlines(kT0 + kDeadline), IsEmpty());  // new deadline
  EXPECT_THAT(state.ReleaseStream(0), ElementsAre(0));
  EXPECT_EQ(state.Reassign(d.receipt(), 1, kT0), ReceiptCheck::kExpired);
}

TEST(PartitionStateRelease, MovesBackOnlyThatStreamsDeliveries) {
  PartitionState state(0, OrderingMode::kNone);
  for (int64_t o = 0; o < 4; ++o) state.Append(Msg(o));
  Delivery d0 = *state.Deliver(7, kT0, kDeadline);
  Delivery d1 = *state.Deliver(8, kT0, kDeadline);
  Delivery d2 = *state.Deliver(7, kT0, kDeadline);
  EXPECT_THAT(state.ReleaseStream(7), ElementsAre(0, 2));
  EXPECT_THAT(state.ReleaseStream(7), IsEmpty());
  EXPECT_EQ(state.Ack(d0.receipt()), ReceiptCheck::kExpired);
  EXPECT_EQ(state.Ack(d2.receipt()), ReceiptCheck::kExpired);
  EXPECT_EQ(state.Ack(d1.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(NextOffset(state), 0);
  EXPECT_THAT(state.ExpireDeadlines(kT0 + kDeadline), ElementsAre(0));  // nothing stale
}

// --- Reset -------------------------------------------------------------------------

TEST(PartitionStateReset, ForgetsEverythingAndExpiresReceipts) {
  PartitionState state(0, OrderingMode::kKey);
  state.Append(Msg(0, "a"));
  state.Append(Msg(1, "a"));
  state.Append(Msg(2, "b"));
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  Delivery d2 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d2.receipt(), kT0, absl::Seconds(5)), ReceiptCheck::kOk);

  state.Reset(50);
  EXPECT_EQ(state.CommitOffset(), 50);
  EXPECT_EQ(state.buffered_bytes(), 0);
  EXPECT_EQ(state.in_flight(), 0u);
  EXPECT_EQ(state.waiting(), 0u);
  EXPECT_EQ(state.NextRedeliveryTime(), std::nullopt);
  EXPECT_EQ(state.Ack(d0.receipt()), ReceiptCheck::kExpired);
  EXPECT_THAT(state.ExpireDeadlines(kT0 + absl::Hours(1)), IsEmpty());
  EXPECT_THAT(state.ReleaseStream(1), IsEmpty());
  // The key is no longer blocked by the forgotten delivery.
  state.Append(Msg(50, "a"));
  EXPECT_EQ(NextOffset(state), 50);
}

TEST(PartitionStateReset, RewindRedeliveryIsNotSettledByAReceiptFromBeforeTheSeek) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0));
  Delivery before = *state.Deliver(1, kT0, kDeadline);

  state.Reset(0);  // rewind: offset 0 comes again
  state.Append(Msg(0));
  Delivery after = *state.Deliver(2, kT0, kDeadline);
  ASSERT_EQ(after.offset, before.offset);
  ASSERT_EQ(after.attempt, 1);

  EXPECT_EQ(state.Ack(before.receipt()), ReceiptCheck::kExpired);
  EXPECT_EQ(state.in_flight(), 1u);
  EXPECT_EQ(state.Ack(after.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(state.CommitOffset(), 1);
}

// --- Bytes -------------------------------------------------------------------------

TEST(PartitionStateBytes, DecreaseOnAckAndSkipNotOnNack) {
  PartitionState state(0, OrderingMode::kNone);
  state.Append(Msg(0, "", 100));
  state.Append(Msg(1, "", 20));
  state.Append(Msg(2, "", 3));
  EXPECT_EQ(state.buffered_bytes(), 123);
  Delivery d0 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Nack(d0.receipt(), kT0, absl::ZeroDuration()), ReceiptCheck::kOk);
  EXPECT_EQ(state.buffered_bytes(), 123);
  d0 = *state.Deliver(1, kT0, kDeadline);
  ASSERT_EQ(state.Ack(d0.receipt()), ReceiptCheck::kOk);
  EXPECT_EQ(state.buffered_bytes(), 23);
  state.Skip(2);
  EXPECT_EQ(state.buffered_bytes(), 20);
}

// --- Randomized comparison with a reference model -----------------------------------

// A deliberately naive model: linear scans over every message, no indexes.
class Model {
 public:
  struct Message {
    std::string key;
    int64_t bytes = 0;
    bool in_flight = false;
    int32_t attempt = 0;
    StreamId stream = 0;
    absl::Time deadline = {};
    bool delayed = false;
    absl::Time not_before = absl::InfinitePast();
  };

  Model(int64_t next_offset, OrderingMode mode) : mode_(mode), end_(next_offset) {}

  void Append(const FetchedMessage& m) {
    if (m.offset < end_) return;
    end_ = m.offset + 1;
    msgs_[m.offset] = Message{.key = m.key, .bytes = m.bytes};
    appended_.insert(m.offset);
  }
  void Skip(int64_t offset) {
    if (msgs_.erase(offset) > 0) {
      settled_.insert(offset);
    } else if (offset >= end_) {
      end_ = offset + 1;
    }
  }
  bool GateOpen(int64_t offset, const Message& m) const {
    if (mode_ == OrderingMode::kNone || (mode_ == OrderingMode::kKey && m.key.empty())) {
      return true;
    }
    for (const auto& [o, other] : msgs_) {
      if (o >= offset) break;
      if (mode_ == OrderingMode::kPartition || other.key == m.key) return false;
    }
    return true;
  }
  std::optional<int64_t> Deliver(StreamId stream, absl::Time now, absl::Duration ttl) {
    for (auto& [o, m] : msgs_) {
      if (m.delayed && m.not_before <= now) m.delayed = false;
    }
    for (auto& [o, m] : msgs_) {
      if (m.in_flight || m.not_before > now || !GateOpen(o, m)) continue;
      m.in_flight = true;
      m.attempt++;
      m.stream = stream;
      m.deadline = now + ttl;
      return o;
    }
    return std::nullopt;
  }
  Message* InFlight(const Receipt& r) {
    if (r.generation != generation_) return nullptr;
    auto it = msgs_.find(r.offset);
    if (it == msgs_.end() || !it->second.in_flight || it->second.attempt != r.attempt) {
      return nullptr;
    }
    return &it->second;
  }
  ReceiptCheck Ack(const Receipt& r) {
    if (InFlight(r) == nullptr) return ReceiptCheck::kExpired;
    msgs_.erase(r.offset);
    settled_.insert(r.offset);
    return ReceiptCheck::kOk;
  }
  ReceiptCheck Nack(const Receipt& r, absl::Time now, absl::Duration delay) {
    Message* m = InFlight(r);
    if (m == nullptr) return ReceiptCheck::kExpired;
    m->in_flight = false;
    m->delayed = delay > absl::ZeroDuration();
    m->not_before = m->delayed ? now + delay : absl::InfinitePast();
    return ReceiptCheck::kOk;
  }
  ReceiptCheck Extend(const Receipt& r, absl::Time deadline) {
    Message* m = InFlight(r);
    if (m == nullptr) return ReceiptCheck::kExpired;
    m->deadline = deadline;
    return ReceiptCheck::kOk;
  }
  std::vector<int64_t> Expire(absl::Time now) {
    std::vector<int64_t> out;
    for (auto& [o, m] : msgs_) {
      if (m.in_flight && m.deadline <= now) {
        m.in_flight = false;
        m.not_before = absl::InfinitePast();
        out.push_back(o);
      }
    }
    return out;
  }
  std::vector<int64_t> Release(StreamId stream) {
    std::vector<int64_t> out;
    for (auto& [o, m] : msgs_) {
      if (m.in_flight && m.stream == stream) {
        m.in_flight = false;
        m.not_before = absl::InfinitePast();
        out.push_back(o);
      }
    }
    return out;
  }
  void Reset(int64_t next_offset) {
    ++generation_;
    end_ = next_offset;
    msgs_.clear();
    appended_.clear();
    settled_.clear();
  }
  int64_t CommitOffset() const { return msgs_.empty() ? end_ : msgs_.begin()->first; }
  int64_t Bytes() const {
    int64_t sum = 0;
    for (const auto& [o, m] : msgs_) sum += m.bytes;
    return sum;
  }
  size_t InFlightCount() const {
    size_t n = 0;
    for (const auto& [o, m] : msgs_) n += m.in_flight ? 1 : 0;
    return n;
  }
  std::optional<absl::Time> NextRedelivery() const {
    std::optional<absl::Time> t;
    for (const auto& [o, m] : msgs_) {
      if (m.delayed && (!t.has_value() || m.not_before < *t)) t = m.not_before;
    }
    return t;
  }

  OrderingMode mode_;
  uint64_t generation_ = 0;
  int64_t end_;
  std::map<int64_t, Message> msgs_;  // not yet acked or skipped
  std::set<int64_t> appended_;       // since the last Reset
  std::set<int64_t> settled_;        // acked or skipped since the last Reset
};

void CheckInvariants(const PartitionState& state, const Model& model) {
  ASSERT_EQ(state.CommitOffset(), model.CommitOffset());
  for (const auto& [o, m] : model.msgs_) ASSERT_LE(state.CommitOffset(), o);
  ASSERT_EQ(state.buffered_bytes(), model.Bytes());
  ASSERT_EQ(state.in_flight(), model.InFlightCount());
  ASSERT_EQ(state.waiting(), model.msgs_.size() - model.InFlightCount());
  ASSERT_EQ(state.NextRedeliveryTime(), model.NextRedelivery());
  std::map<std::string, int> in_flight_per_key;
  for (const auto& [o, m] : model.msgs_) {
    ASSERT_EQ(state.attempts(o), m.attempt);
    if (m.in_flight && !m.key.empty()) ++in_flight_per_key[m.key];
  }
  if (model.mode_ == OrderingMode::kKey) {
    for (const auto& [key, n] : in_flight_per_key) ASSERT_LE(n, 1) << key;
  }
  if (model.mode_ == OrderingMode::kPartition) {
    ASSERT_LE(model.InFlightCount(), 1u);
  }
}

void RunRandomSequence(std::mt19937& rng, OrderingMode mode) {
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const std::vector<std::string> keys = {"", "a", "b", "c"};
  const int64_t start = pick(100);
  PartitionState state(start, mode);
  Model model(start, mode);
  absl::Time now = kT0;
  int64_t next = start;
  std::vector<Receipt> receipts;  // every receipt handed out, stale ones included

  for (int step = 0; step < 300; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const int op = pick(100);
    if (op < 22) {
      next += pick(4) == 0 ? 1 + pick(3) : 0;  // sometimes leave a gap
      FetchedMessage m = Msg(next, keys[pick(keys.size())], 1 + pick(50));
      if (pick(20) == 0) m.offset = next - 1 - pick(3);  // a stale re-fetch
      next = std::max(next, m.offset + 1);
      model.Append(m);
      state.Append(m);
    } else if (op < 45) {
      const StreamId stream = 1 + pick(3);
      const absl::Duration ttl = absl::Seconds(1 + pick(20));
      std::optional<int64_t> want = model.Deliver(stream, now, ttl);
      std::optional<Delivery> got = state.Deliver(stream, now, ttl);
      ASSERT_EQ(got.has_value(), want.has_value());
      if (got.has_value()) {
        ASSERT_EQ(got->offset, *want);
        ASSERT_EQ(got->attempt, model.msgs_[*want].attempt);
        ASSERT_EQ(got->stream, stream);
        ASSERT_EQ(got->deadline, now + ttl);
        receipts.push_back(got->receipt());
      }
    } else if (op < 62 && !receipts.empty()) {
      const Receipt r = receipts[pick(receipts.size())];
      ASSERT_EQ(state.Ack(r), model.Ack(r));
    } else if (op < 70 && !receipts.empty()) {
      const Receipt r = receipts[pick(receipts.size())];
      const absl::Duration delay = absl::Seconds(pick(3) == 0 ? 0 : pick(15));
      ASSERT_EQ(state.Nack(r, now, delay), model.Nack(r, now, delay));
    } else if (op < 75 && !receipts.empty()) {
      const Receipt r = receipts[pick(receipts.size())];
      const absl::Time deadline = now + absl::Seconds(pick(30));
      ASSERT_EQ(state.Extend(r, deadline), model.Extend(r, deadline));
    } else if (op < 83) {
      now += absl::Seconds(pick(8));
      ASSERT_EQ(state.ExpireDeadlines(now), model.Expire(now));
    } else if (op < 87) {
      const StreamId stream = 1 + pick(3);
      ASSERT_EQ(state.ReleaseStream(stream), model.Release(stream));
    } else if (op < 92) {
      // A buffered offset, one just ahead, or one already settled.
      int64_t offset = next + pick(2);
      if (!model.msgs_.empty() && pick(3) != 0) {
        auto it = model.msgs_.begin();
        std::advance(it, pick(model.msgs_.size()));
        offset = it->first;
      } else if (pick(2) == 0) {
        offset = next - 1 - pick(10);  // settled, a gap, or before next_offset
      }
      next = std::max(next, offset + 1);
      model.Skip(offset);
      state.Skip(offset);
    } else if (op < 93) {
      const int64_t to = std::max<int64_t>(0, next - pick(10));  // seek, maybe back
      model.Reset(to);
      state.Reset(to);
      next = to;
    } else {
      now += absl::Seconds(pick(5));
    }
    ASSERT_NO_FATAL_FAILURE(CheckInvariants(state, model));
  }

  // Drain: give back everything in flight, then deliver and ack until empty.
  for (StreamId s = 1; s <= 3; ++s) ASSERT_EQ(state.ReleaseStream(s), model.Release(s));
  now += absl::Hours(1);  // past every delay
  for (int i = 0; i < 10'000; ++i) {
    std::optional<int64_t> want = model.Deliver(1, now, kDeadline);
    std::optional<Delivery> got = state.Deliver(1, now, kDeadline);
    ASSERT_EQ(got.has_value(), want.has_value());
    if (!got.has_value()) break;
    ASSERT_EQ(got->offset, *want);
    ASSERT_EQ(state.Ack(got->receipt()), ReceiptCheck::kOk);
    ASSERT_EQ(model.Ack(got->receipt()), ReceiptCheck::kOk);
    ASSERT_NO_FATAL_FAILURE(CheckInvariants(state, model));
  }
  EXPECT_EQ(state.waiting(), 0u);
  EXPECT_EQ(state.in_flight(), 0u);
  EXPECT_EQ(state.buffered_bytes(), 0);
  EXPECT_EQ(state.CommitOffset(), model.end_);
  for (int64_t o : model.appended_) EXPECT_TRUE(model.settled_.count(o) > 0) << o;
}

TEST(PartitionStateProperty, MatchesReferenceModelInEveryMode) {
  std::mt19937 rng(20240611);  // fixed seed: failures reproduce
  for (int iteration = 0; iteration < 200; ++iteration) {
    for (OrderingMode mode :
         {OrderingMode::kNone, OrderingMode::kKey, OrderingMode::kPartition}) {
      SCOPED_TRACE(::testing::Message()
                   << "iteration " << iteration << " mode " << static_cast<int>(mode));
      ASSERT_NO_FATAL_FAILURE(RunRandomSequence(rng, mode));
    }
  }
}

}  // namespace
}  // namespace ferry::subscribe
