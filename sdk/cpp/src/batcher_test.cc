#include "batcher.h"

#include <gtest/gtest.h>

#include <list>
#include <string>
#include <vector>

namespace ferry::client::internal {
namespace {

using std::chrono::milliseconds;

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);
constexpr uint64_t kNotUrgent = 0;

class BatcherTest : public ::testing::Test {
 protected:
  // Queues a message labelled `value` (its id); published `at` (seq order).
  void Add(Batcher& batcher, const std::string& value, const std::string& key = "",
           Clock::time_point at = kStart, std::size_t bytes = 10) {
    std::unique_ptr<Pending> message = Pending::New("t", key, bytes);
    message->seq = ++seq_;
    message->id = value;  // The label the checks read back.
    message->published_at = at;
    message->deadline = at + std::chrono::seconds(10);
    batcher.Add(std::move(message));
  }

  static std::vector<std::string> Values(const Batch& batch) {
    std::vector<std::string> values;
    for (const auto& message : batch.messages) values.push_back(message->id);
    return values;
  }

  // The next batch at `now`; fails the test when there is none.
  Batch Next(Batcher& batcher, Clock::time_point now, uint64_t urgent_upto = kNotUrgent) {
    std::vector<std::unique_ptr<Pending>> expired;
    std::optional<Batch> batch = batcher.NextBatch(now, urgent_upto, &expired);
    EXPECT_TRUE(expired.empty());
    if (!batch.has_value()) {
      ADD_FAILURE() << "no batch is due";
      return Batch{};
    }
    return std::move(*batch);
  }

  // Puts a batch of topic "t" in flight (with nothing in flight a topic's
  // first message goes at once), so that the linger applies to what follows.
  Batch Occupy(Batcher& batcher) {
    Add(batcher, "busy");
    Batch batch = Next(batcher, kStart);
    EXPECT_EQ(Values(batch), std::vector<std::string>{"busy"});
    return batch;
  }

  // A part of topic "t" whose messages have these ordering keys ("" none),
  // published now (the next seq).
  std::unique_ptr<ManyPart> Part(std::vector<std::string> keys) {
    auto part = std::make_unique<ManyPart>();
    part->topic = "t";
    part->seq = ++seq_;
    part_keys_.push_back(std::move(keys));
    for (const std::string& key : part_keys_.back()) {
      if (!key.empty()) part->order_keys.push_back(key);
    }
    return part;
  }

  static bool NothingDue(Batcher& batcher, Clock::time_point now,
                         uint64_t urgent_upto = kNotUrgent) {
    std::vector<std::unique_ptr<Pending>> expired;
    return !batcher.NextBatch(now, urgent_upto, &expired).has_value() && expired.empty();
  }

  // Everything published so far is urgent (as after Flush).
  uint64_t AllUrgent() const { return seq_; }

  uint64_t seq_ = 0;
  // The keys parts view (stable: a list).
  std::list<std::vector<std::string>> part_keys_;
};

TEST_F(BatcherTest, IdleTopicSendsAtOnceAndCollectsWhileABatchIsInFlight) {
  Batcher batcher(BatchLimits{
      .max_messages = 10, .max_bytes = 1000, .linger = std::chrono::hours(1)});
  Add(batcher, "a");
  EXPECT_EQ(batcher.NextWakeup(), Clock::time_point::min());
  Batch first = Next(batcher, kStart);
  EXPECT_EQ(Values(first), std::vector<std::string>{"a"});
  Add(batcher, "b");
  Add(batcher, "c", "k");
  EXPECT_TRUE(NothingDue(batcher, kStart + milliseconds(100)));
  // The answer is back: what collected meanwhile leaves together.
  batcher.Complete("t", first.keys, {});
  EXPECT_EQ(Values(Next(batcher, kStart + milliseconds(100))),
            (std::vector<std::string>{"b", "c"}));
}

TEST_F(BatcherTest, PartialBatchWaitsForLingerThenLeavesInPublishOrder) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(5)});
  Batch busy = Occupy(batcher);
  Add(batcher, "a");
  Add(batcher, "b", "k");
  Add(batcher, "c");
  EXPECT_TRUE(NothingDue(batcher, kStart + milliseconds(4)));
  EXPECT_EQ(batcher.NextWakeup(), kStart + milliseconds(5));
  Batch batch = Next(batcher, kStart + milliseconds(5));
  EXPECT_EQ(Values(batch), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(batch.keys, std::vector<std::string>{"k"});
}

TEST_F(BatcherTest, FullBatchLeavesWithoutWaitingForLinger) {
  Batcher batcher(
      BatchLimits{.max_messages = 2, .max_bytes = 1000, .linger = milliseconds(5)});
  Add(batcher, "a");
  Add(batcher, "b");
  Add(batcher, "c");
  EXPECT_EQ(Values(Next(batcher, kStart)), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(NothingDue(batcher, kStart));
  EXPECT_EQ(batcher.size(), 1u);
}

TEST_F(BatcherTest, BatchStaysWithinMaxBytesButTakesOneOversizedMessage) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 25, .linger = milliseconds(0)});
  Add(batcher, "a", "", kStart, 10);
  Add(batcher, "b", "", kStart, 10);
  Add(batcher, "c", "", kStart, 10);
  Add(batcher, "huge", "", kStart, 100);
  EXPECT_EQ(Values(Next(batcher, kStart)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Values(Next(batcher, kStart)), (std::vector<std::string>{"c"}));
  EXPECT_EQ(Values(Next(batcher, kStart)), (std::vector<std::string>{"huge"}));
}

TEST_F(BatcherTest, UrgentMessagesIgnoreLinger) {
  Batcher batcher(BatchLimits{
      .max_messages = 10, .max_bytes = 1000, .linger = std::chrono::hours(1)});
  Batch busy = Occupy(batcher);
  Add(batcher, "a");
  const uint64_t flushed = AllUrgent();
  Add(batcher, "b");
  EXPECT_TRUE(NothingDue(batcher, kStart));
  // Once a topic is due, its batch also takes later messages.
  EXPECT_EQ(Values(Next(batcher, kStart, flushed)), (std::vector<std::string>{"a", "b"}));
}

TEST_F(BatcherTest, KeyIsInAtMostOneBatchAtATime) {
  Batcher batcher(
      BatchLimits{.max_messages = 1, .max_bytes = 1000, .linger = milliseconds(0)});
  Add(batcher, "k1", "k");
  Add(batcher, "k2", "k");
  Add(batcher, "u1");
  Batch first = Next(batcher, kStart);
  EXPECT_EQ(Values(first), std::vector<std::string>{"k1"});
  // k2 waits for k1's batch; messages without a key do not.
  EXPECT_EQ(Values(Next(batcher, kStart, AllUrgent())), std::vector<std::string>{"u1"});
  EXPECT_TRUE(NothingDue(batcher, kStart, AllUrgent()));
  batcher.Complete("t", first.keys, {});
  EXPECT_EQ(Values(Next(batcher, kStart)), std::vector<std::string>{"k2"});
}

TEST_F(BatcherTest, OneBatchCarriesSeveralMessagesOfAKeyInOrder) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(0)});
  Add(batcher, "k1", "k");
  Add(batcher, "j1", "j");
  Add(batcher, "k2", "k");
  Add(batcher, "u1");
  Add(batcher, "k3", "k");
  Batch batch = Next(batcher, kStart);
  EXPECT_EQ(Values(batch), (std::vector<std::string>{"k1", "j1", "k2", "u1", "k3"}));
  EXPECT_EQ(batch.keys, (std::vector<std::string>{"k", "j"}));
}

TEST_F(BatcherTest, KeysRestWaitsWhenTheBatchIsFull) {
  Batcher batcher(
      BatchLimits{.max_messages = 2, .max_bytes = 1000, .linger = milliseconds(0)});
  Add(batcher, "k1", "k");
  Add(batcher, "k2", "k");
  Add(batcher, "k3", "k");
  Batch first = Next(batcher, kStart);
  EXPECT_EQ(Values(first), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_TRUE(NothingDue(batcher, kStart, AllUrgent()));
  batcher.Complete("t", first.keys, {});
  EXPECT_EQ(Values(Next(batcher, kStart)), std::vector<std::string>{"k3"});
}

TEST_F(BatcherTest, RetriedMessagesGoBackInFrontOfTheirKeyAfterBackoff) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(0)});
  Add(batcher, "k1", "k");
  Add(batcher, "k2", "k");
  Add(batcher, "k3", "k");
  Batch first = Next(batcher, kStart);
  ASSERT_EQ(first.messages.size(), 3u);
  Add(batcher, "k4", "k");
  // Given k2 and k3 failed retryably,
  std::vector<std::unique_ptr<Pending>> retries;
  retries.push_back(std::move(first.messages[1]));
  retries.push_back(std::move(first.messages[2]));
  for (auto& message : retries) {
    message->attempts = 1;
    message->not_before = kStart + milliseconds(50);
  }
  batcher.Complete("t", first.keys, std::move(retries));
  // when their backoff has not ended, the key waits (k4 too),
  EXPECT_TRUE(NothingDue(batcher, kStart + milliseconds(49), AllUrgent()));
  EXPECT_EQ(batcher.NextWakeup(), kStart + milliseconds(50));
  // then they go first, in order, followed by k4.
  batcher.ReleaseBackoff(kStart + milliseconds(50));
  EXPECT_EQ(Values(Next(batcher, kStart + milliseconds(50))),
            (std::vector<std::string>{"k2", "k3", "k4"}));
}

TEST_F(BatcherTest, RetryOfAMessageWithoutKeyHoldsNothingBack) {
  Batcher batcher(
      BatchLimits{.max_messages = 1, .max_bytes = 1000, .linger = milliseconds(0)});
  Add(batcher, "u1");
  Batch first = Next(batcher, kStart);
  Add(batcher, "u2");
  first.messages[0]->not_before = kStart + milliseconds(50);
  batcher.Complete("t", first.keys, std::move(first.messages));
  EXPECT_EQ(Values(Next(batcher, kStart)), std::vector<std::string>{"u2"});
  batcher.ReleaseBackoff(kStart + milliseconds(50));
  EXPECT_EQ(Values(Next(batcher, kStart + milliseconds(50))),
            std::vector<std::string>{"u1"});
}

TEST_F(BatcherTest, RetryLeavesWhenItsBackoffEndsWithoutWaitingForLinger) {
  Batcher batcher(BatchLimits{
      .max_messages = 10, .max_bytes = 1000, .linger = std::chrono::hours(1)});
  Batch busy = Occupy(batcher);
  Add(batcher, "u1");
  Add(batcher, "k1", "k");
  Batch first = Next(batcher, kStart, AllUrgent());
  ASSERT_EQ(first.messages.size(), 2u);
  for (auto& message : first.messages) {
    message->attempts = 1;
    message->not_before = kStart + milliseconds(50);
  }
  Add(batcher, "u2");
  batcher.Complete("t", first.keys, std::move(first.messages));
  EXPECT_EQ(batcher.NextWakeup(), kStart + milliseconds(50));
  batcher.ReleaseBackoff(kStart + milliseconds(50));
  EXPECT_EQ(Values(Next(batcher, kStart + milliseconds(50))),
            (std::vector<std::string>{"u1", "k1", "u2"}));
}

TEST_F(BatcherTest, MessagesPastTheirDeadlineAreReturnedInsteadOfSent) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(0)});
  Add(batcher, "old", "k", kStart);
  Add(batcher, "new", "k", kStart + std::chrono::seconds(5));
  std::vector<std::unique_ptr<Pending>> expired;
  std::optional<Batch> batch =
      batcher.NextBatch(kStart + std::chrono::seconds(10), kNotUrgent, &expired);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(Values(*batch), std::vector<std::string>{"new"});
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]->id, "old");
}

TEST_F(BatcherTest, TakeAllReturnsQueuedAndBackingOffMessages) {
  Batcher batcher(
      BatchLimits{.max_messages = 1, .max_bytes = 1000, .linger = milliseconds(0)});
  Add(batcher, "k1", "k");
  Add(batcher, "k2", "k");
  Batch first = Next(batcher, kStart);
  first.messages[0]->not_before = kStart + milliseconds(50);
  batcher.Complete("t", first.keys, std::move(first.messages));
  Add(batcher, "u1");
  EXPECT_EQ(batcher.TakeAll().size(), 3u);
  EXPECT_EQ(batcher.size(), 0u);
  EXPECT_EQ(batcher.NextWakeup(), Clock::time_point::max());
}

TEST_F(BatcherTest, NewLimitsApplyToTheNextBatch) {
  Batcher batcher({.max_messages = 10, .max_bytes = 1 << 20, .linger = milliseconds(50)});
  Batch busy = Occupy(batcher);
  for (const char* value : {"a", "b", "c", "d"}) Add(batcher, value);
  EXPECT_TRUE(NothingDue(batcher, kStart));  // lingering: 4 of 10
  batcher.SetLimits(
      {.max_messages = 2, .max_bytes = 1 << 20, .linger = milliseconds(50)});
  EXPECT_EQ(Values(Next(batcher, kStart)), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace ferry::client::internal

namespace ferry::client::internal {
namespace {

TEST_F(BatcherTest, PartHoldsItsKeysAfterTheirEarlierMessagesAndBeforeLaterOnes) {
  Batcher batcher({.max_messages = 10, .linger = milliseconds(5)});
  Add(batcher, "K-1", "K");
  Batch first = Next(batcher, kStart);  // K in flight
  ASSERT_EQ(Values(first), std::vector<std::string>{"K-1"});

  std::unique_ptr<ManyPart> part = Part({"J", "K", "", "J"});
  ManyPart* raw = part.get();
  batcher.AddPart(std::move(part));
  std::vector<std::string_view> held;
  for (const ManyPart::HeldKey& key : raw->held_keys) held.push_back(raw->KeyOf(key));
  EXPECT_EQ(held, (std::vector<std::string_view>{"J", "K"}));
  EXPECT_EQ(batcher.NextPart(), nullptr) << "K's earlier message is in flight";
  Add(batcher, "K-2", "K");  // after the part
  Add(batcher, "J-1", "J");  // after the part
  Add(batcher, "free", "L");
  Batch second = Next(batcher, kStart + milliseconds(10));
  EXPECT_EQ(Values(second), std::vector<std::string>{"free"});

  batcher.Complete("t", first.keys, {});
  std::unique_ptr<ManyPart> ready = batcher.NextPart();
  ASSERT_EQ(ready.get(), raw);
  EXPECT_TRUE(NothingDue(batcher, kStart + milliseconds(20))) << "K-2, J-1 wait for it";

  batcher.CompletePart(*ready);
  batcher.Complete("t", second.keys, {});
  Batch third = Next(batcher, kStart + milliseconds(30));
  EXPECT_EQ(Values(third), (std::vector<std::string>{"K-2", "J-1"}));
}

TEST_F(BatcherTest, PartsSharingAKeyGoOneAfterTheOtherAndDisjointOnesTogether) {
  Batcher batcher({.max_messages = 10});
  std::unique_ptr<ManyPart> a = Part({"A", "B"});
  std::unique_ptr<ManyPart> b = Part({"B", "C"});
  std::unique_ptr<ManyPart> c = Part({"D", ""});
  const ManyPart *raw_a = a.get(), *raw_b = b.get(), *raw_c = c.get();
  batcher.AddPart(std::move(a));
  batcher.AddPart(std::move(b));
  batcher.AddPart(std::move(c));
  std::unique_ptr<ManyPart> first = batcher.NextPart();
  std::unique_ptr<ManyPart> second = batcher.NextPart();
  EXPECT_EQ(first.get(), raw_a);
  EXPECT_EQ(second.get(), raw_c);
  EXPECT_EQ(batcher.NextPart(), nullptr) << "B is held by the first part";

  // A retry keeps the keys: a part waiting for them still waits.
  first->not_before = kStart;
  batcher.RetryPart(std::move(first));
  batcher.ReleaseBackoff(kStart);
  first = batcher.NextPart();
  ASSERT_EQ(first.get(), raw_a);
  EXPECT_EQ(batcher.NextPart(), nullptr);

  batcher.CompletePart(*first);
  std::unique_ptr<ManyPart> third = batcher.NextPart();
  EXPECT_EQ(third.get(), raw_b);
  batcher.CompletePart(*second);
  batcher.CompletePart(*third);
  Add(batcher, "B-1", "B");
  EXPECT_EQ(Values(Next(batcher, kStart)), std::vector<std::string>{"B-1"});
}

TEST_F(BatcherTest, PartReleasesItsKeysOnceTheBytesItWasPublishedFromAreGone) {
  // More keys than CompletePart looks ahead, each twice in the part.
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) keys.push_back("key-" + std::to_string(i));
  std::vector<std::string> twice = keys;
  twice.insert(twice.end(), keys.begin(), keys.end());
  Batcher batcher({.max_messages = 10});
  std::unique_ptr<ManyPart> first = Part(twice);
  std::unique_ptr<ManyPart> second = Part(keys);
  const ManyPart* raw_second = second.get();
  batcher.AddPart(std::move(first));
  batcher.AddPart(std::move(second));
  first = batcher.NextPart();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->held_keys.size(), keys.size());
  EXPECT_EQ(batcher.NextPart(), nullptr) << "every key is held by the first part";

  // The request the parts' keys were read from is gone (here: overwritten).
  for (std::vector<std::string>& part_keys : part_keys_) {
    for (std::string& key : part_keys) key.assign(key.size(), 'x');
  }
  batcher.CompletePart(*first);
  second = batcher.NextPart();
  EXPECT_EQ(second.get(), raw_second);
  Add(batcher, "later", "key-7");
  EXPECT_TRUE(NothingDue(batcher, kStart)) << "key-7 is held by the second part";
  batcher.CompletePart(*second);
  EXPECT_EQ(Values(Next(batcher, kStart)), std::vector<std::string>{"later"});
}

TEST_F(BatcherTest, MessagesRetriedBeforeAPartKeepTheirPlace) {
  Batcher batcher({.max_messages = 10});
  Add(batcher, "K-1", "K");
  Batch first = Next(batcher, kStart);
  std::unique_ptr<ManyPart> part = Part({"K"});
  batcher.AddPart(std::move(part));
  // K-1 failed: it goes again before the part.
  std::vector<std::unique_ptr<Pending>> retries;
  retries.push_back(std::move(first.messages[0]));
  retries[0]->attempts = 1;
  retries[0]->not_before = kStart + milliseconds(5);
  batcher.Complete("t", first.keys, std::move(retries));
  EXPECT_EQ(batcher.NextPart(), nullptr);
  batcher.ReleaseBackoff(kStart + milliseconds(5));
  Batch again = Next(batcher, kStart + milliseconds(5));
  EXPECT_EQ(Values(again), std::vector<std::string>{"K-1"});
  EXPECT_EQ(batcher.NextPart(), nullptr);
  batcher.Complete("t", again.keys, {});
  EXPECT_NE(batcher.NextPart(), nullptr);
}

TEST_F(BatcherTest, TakeAllPartsReturnsWaitingReadyAndBackingOffParts) {
  Batcher batcher({.max_messages = 10});
  Add(batcher, "K-1", "K");
  Batch first = Next(batcher, kStart);
  batcher.AddPart(Part({"K"}));  // waits
  batcher.AddPart(Part({"J"}));  // ready
  std::unique_ptr<ManyPart> backing_off = Part({"L"});
  backing_off->not_before = kStart + std::chrono::hours(1);
  batcher.RetryPart(std::move(backing_off));
  EXPECT_EQ(batcher.TakeAllParts().size(), 3u);
  EXPECT_EQ(batcher.NextPart(), nullptr);
  batcher.TakeAll();
  batcher.Complete("t", first.keys, {});
}

}  // namespace
}  // namespace ferry::client::internal
