#include "subscribe/partition_slot.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

namespace ferry::subscribe {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

TopicMetrics* NoMetrics() {
  static TopicMetrics metrics{};
  return &metrics;
}

backend::ConsumedRecord Record(int64_t offset, std::string value = "v") {
  return backend::Owned({.topic = "t", .partition = 0, .offset = offset, .value = value});
}

TEST(PartitionSlotTest, BuffersRecordsOnceAndForgetsThemWhenAcked) {
  PartitionSlot slot(5, OrderingMode::kNone, 1, NoMetrics());
  EXPECT_FALSE(slot.Buffer(Record(4), 0, kT0)) << "before the start offset";
  EXPECT_TRUE(slot.Buffer(Record(5), 0, kT0));
  EXPECT_FALSE(slot.Buffer(Record(5), 0, kT0)) << "seen before";
  EXPECT_EQ(slot.next_fetch(), 6);
  ASSERT_NE(slot.Find(5), nullptr);
  slot.Forget(5);
  EXPECT_EQ(slot.Find(5), nullptr);
}

TEST(PartitionSlotTest, CommitsOnlyWhatMovedAndResendsAfterAFailure) {
  PartitionSlot slot(0, OrderingMode::kNone, 1, NoMetrics());
  EXPECT_FALSE(slot.TakeCommit(kT0).has_value()) << "nothing moved";
  slot.state().Skip(0);
  ASSERT_EQ(slot.TakeCommit(kT0), 1);
  EXPECT_FALSE(slot.TakeCommit(kT0).has_value()) << "awaiting the answer";
  slot.OnCommitted(1, /*ok=*/false);
  EXPECT_EQ(slot.committed(), 0);
  ASSERT_EQ(slot.TakeCommit(kT0), 1) << "sent again after the failure";
  slot.OnCommitted(1, /*ok=*/true);
  EXPECT_EQ(slot.committed(), 1);
  EXPECT_FALSE(slot.TakeCommit(kT0).has_value());
}

TEST(PartitionSlotTest, UnansweredCommitIsSentAgainAfterAMinute) {
  PartitionSlot slot(0, OrderingMode::kNone, 1, NoMetrics());
  slot.state().Skip(0);
  ASSERT_EQ(slot.TakeCommit(kT0), 1);
  EXPECT_FALSE(slot.TakeCommit(kT0 + absl::Seconds(59)).has_value());
  EXPECT_EQ(slot.TakeCommit(kT0 + absl::Seconds(60)), 1);
}

TEST(PartitionSlotTest, SeekDropsWhatWasBufferedAndHandsBackWhatWasInFlight) {
  PartitionSlot slot(0, OrderingMode::kNone, 1, NoMetrics());
  ASSERT_TRUE(slot.Buffer(Record(0, "abc"), 0, kT0));
  auto delivery = slot.state().Deliver(7, kT0, absl::Seconds(1));
  ASSERT_TRUE(delivery.has_value());
  slot.Hand(0, {.stream = 7, .bytes = 3, .delivered = kT0});
  slot.StartSeek(10);
  EXPECT_FALSE(slot.TakeCommit(kT0).has_value()) << "no commit while seeking";
  EXPECT_FALSE(slot.Buffer(Record(1), 0, kT0)) << "records of the old position";
  std::vector<InFlight> released = slot.FinishSeek(10);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].stream, 7u);
  EXPECT_EQ(slot.Find(0), nullptr);
  EXPECT_EQ(slot.state().CommitOffset(), 10);
  EXPECT_EQ(slot.next_fetch(), 10);
}

TEST(PartitionSlotTest, FetchPausesAboveTheLimitAndResumesAtHalf) {
  PartitionSlot slot(0, OrderingMode::kNone, 1, NoMetrics());
  ASSERT_TRUE(slot.Buffer(Record(0, std::string(100, 'x')), 0, kT0));
  EXPECT_FALSE(slot.ShouldPauseFetch(200));
  ASSERT_TRUE(slot.Buffer(Record(1, std::string(150, 'x')), 0, kT0));
  EXPECT_TRUE(slot.ShouldPauseFetch(200));
  EXPECT_FALSE(slot.ShouldPauseFetch(200)) << "told once";
  slot.state().Skip(1);
  EXPECT_FALSE(slot.ShouldResumeFetch(200)) << "100 bytes left: not at half yet";
  slot.state().Skip(0);
  EXPECT_TRUE(slot.ShouldResumeFetch(200));
}

TEST(PartitionSlotTest, RecordsHeldLongOwnTheirBytesAndLetGoOfTheBackendsBuffer) {
  PartitionSlot slot(0, OrderingMode::kNone, 1, NoMetrics());
  // Two records viewing one fetched buffer, as Kafka records share a fetch.
  auto fetched = std::make_shared<const std::string>("k0v0k1v1");
  const std::string_view bytes = *fetched;
  for (int64_t offset : {0, 1}) {
    ASSERT_TRUE(slot.Buffer({.topic = "t",
                             .offset = offset,
                             .key = bytes.substr(4 * offset, 2),
                             .value = bytes.substr(4 * offset + 2, 2),
                             .headers = {{"h", bytes.substr(4 * offset, 4)}},
                             .bytes = fetched},
                            0, kT0 + absl::Seconds(offset)));
  }
  std::weak_ptr<const std::string> watched = fetched;
  fetched.reset();

  slot.OwnBytesBufferedBefore(kT0 + absl::Milliseconds(500));
  EXPECT_FALSE(watched.expired()) << "the younger record still shares the buffer";
  slot.OwnBytesBufferedBefore(kT0 + absl::Seconds(2));
  EXPECT_TRUE(watched.expired()) << "no record pins the buffer any more";
  for (int64_t offset : {0, 1}) {
    const backend::ConsumedRecord* record = slot.Find(offset);
    ASSERT_NE(record, nullptr);
    EXPECT_EQ(record->key, "k" + std::to_string(offset));
    EXPECT_EQ(record->value, "v" + std::to_string(offset));
    ASSERT_EQ(record->headers.size(), 1u);
    EXPECT_EQ(record->headers[0].value,
              std::string(record->key) + std::string(record->value));
  }
}

TEST(PartitionSlotTest, TrimKeepsWhatIsBufferedAndInFlight) {
  PartitionSlot slot(0, OrderingMode::kNone, 1, NoMetrics());
  for (int64_t offset = 0; offset < 1000; ++offset) {
    ASSERT_TRUE(slot.Buffer(Record(offset, "v" + std::to_string(offset)), 0, kT0));
  }
  for (int i = 0; i < 995; ++i) {
    auto delivery = slot.state().Deliver(7, kT0, absl::Seconds(30));
    ASSERT_TRUE(delivery.has_value());
    slot.Hand(delivery->offset, {.stream = 7, .bytes = 4, .delivered = kT0});
    if (delivery->offset < 990) {
      ASSERT_EQ(slot.state().Ack(delivery->receipt()), ReceiptCheck::kOk);
      ASSERT_TRUE(slot.Release(delivery->offset).has_value());
      slot.Forget(delivery->offset);
    }
  }
  // Twice: the first period's peak held all 1000, the second's only 10.
  slot.Trim();
  slot.Trim();

  EXPECT_EQ(slot.buffered_records(), 10u);
  EXPECT_EQ(slot.Find(989), nullptr);
  for (int64_t offset = 990; offset < 1000; ++offset) {
    const backend::ConsumedRecord* record = slot.Find(offset);
    ASSERT_NE(record, nullptr) << offset;
    EXPECT_EQ(record->value, "v" + std::to_string(offset));
  }
  for (int64_t offset = 990; offset < 995; ++offset) {
    const std::optional<InFlight> in_flight = slot.Release(offset);
    ASSERT_TRUE(in_flight.has_value()) << offset;
    EXPECT_EQ(in_flight->stream, 7u);
  }
  auto next = slot.state().Deliver(8, kT0, absl::Seconds(30));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->offset, 995);
  EXPECT_EQ(slot.state().CommitOffset(), 990);
}

TEST(PartitionSlotTest, CountsConsecutiveDeadLetterFailuresPerMessage) {
  PartitionSlot slot(0, OrderingMode::kNone, 1, NoMetrics());
  ASSERT_TRUE(slot.Buffer(Record(0), 0, kT0));
  EXPECT_EQ(slot.DeadLetterFailed(0), 1);
  EXPECT_EQ(slot.DeadLetterFailed(0), 2);
  slot.Forget(0);
  EXPECT_EQ(slot.DeadLetterFailed(0), 1);
}

}  // namespace
}  // namespace ferry::subscribe
