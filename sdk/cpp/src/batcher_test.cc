#include "batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
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
    AddTo(batcher, "t", value, key, at, bytes);
  }

  // The same, to `topic`.
  void AddTo(Batcher& batcher, const std::string& topic, const std::string& value,
             const std::string& key = "", Clock::time_point at = kStart,
             std::size_t bytes = 10) {
    std::unique_ptr<Pending> message = Pending::New(topic, key, bytes);
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
  EXPECT_EQ(batcher.NextWakeup(kNotUrgent), Clock::time_point::min());
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
  EXPECT_EQ(batcher.NextWakeup(kNotUrgent), kStart + milliseconds(5));
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

// The batch stops on bytes while it holds the key's next message as a
// candidate: that message goes back to wait for the batch, and another key's
// message, which did not fit, leaves in the next batch.
TEST_F(BatcherTest, KeysNextMessageWaitsWhenTheBatchIsFullOfBytes) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 25, .linger = milliseconds(0)});
  Add(batcher, "k1", "k");
  Add(batcher, "k2", "k");
  Add(batcher, "j1", "j");
  Add(batcher, "k3", "k");
  Batch first = Next(batcher, kStart);
  EXPECT_EQ(Values(first), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(Values(Next(batcher, kStart)), std::vector<std::string>{"j1"});
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
  EXPECT_EQ(batcher.NextWakeup(kNotUrgent), kStart + milliseconds(50));
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
  EXPECT_EQ(batcher.NextWakeup(kNotUrgent), kStart + milliseconds(50));
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
  EXPECT_EQ(batcher.NextWakeup(kNotUrgent), Clock::time_point::max());
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

// The Batcher keeps raw pointers into its maps (the topic it looked up last,
// the key queues Build promoted) and erases a topic or key once idle: these
// pin that the erased state is forgotten and the live state stays right.
namespace ferry::client::internal {
namespace {

TEST_F(BatcherTest, TopicErasedWhenItsLastKeyCompletesBatchesAgain) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(5)});
  AddTo(batcher, "x", "x1", "k");
  Batch first = Next(batcher, kStart);
  batcher.Complete("x", first.keys, {});  // nothing of "x" is left: it goes
  EXPECT_TRUE(NothingDue(batcher, kStart, AllUrgent()));

  AddTo(batcher, "x", "x2", "k");
  AddTo(batcher, "x", "x3");
  Batch second = Next(batcher, kStart);
  EXPECT_EQ(second.topic, "x");
  EXPECT_EQ(Values(second), (std::vector<std::string>{"x2", "x3"}));
  EXPECT_EQ(second.keys, std::vector<std::string>{"k"});
  // The new topic counts its batch in flight: the next message lingers, and
  // the key waits for the batch.
  AddTo(batcher, "x", "x4", "k", kStart + milliseconds(1));
  AddTo(batcher, "x", "x5", "", kStart + milliseconds(1));
  EXPECT_TRUE(NothingDue(batcher, kStart + milliseconds(5)));
  EXPECT_EQ(Values(Next(batcher, kStart + milliseconds(6))),
            std::vector<std::string>{"x5"});
  batcher.Complete("x", second.keys, {});
  EXPECT_EQ(Values(Next(batcher, kStart + milliseconds(6))),
            std::vector<std::string>{"x4"});
  EXPECT_EQ(batcher.size(), 0u);
}

TEST_F(BatcherTest, TopicErasedWhenAllItsMessagesExpiredBatchesAgain) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(0)});
  AddTo(batcher, "x", "late-1", "k");
  AddTo(batcher, "x", "late-2");
  const Clock::time_point later = kStart + std::chrono::seconds(10);
  std::vector<std::unique_ptr<Pending>> expired;
  EXPECT_FALSE(batcher.NextBatch(later, kNotUrgent, &expired).has_value());
  EXPECT_EQ(expired.size(), 2u);

  AddTo(batcher, "x", "fresh-1", "k", later);
  AddTo(batcher, "x", "fresh-2", "k", later);
  Batch batch = Next(batcher, later);
  EXPECT_EQ(batch.topic, "x");
  EXPECT_EQ(Values(batch), (std::vector<std::string>{"fresh-1", "fresh-2"}));
  EXPECT_EQ(batch.keys, std::vector<std::string>{"k"});
}

TEST_F(BatcherTest, MessagesAlternatingBetweenTopicsLeaveInTheirOwnTopicsBatches) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(0)});
  const std::vector<std::string> order = {"a", "b", "a", "b", "c",
                                          "a", "c", "c", "b", "a"};
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    std::map<std::string, std::vector<std::string>> expected;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::string value =
          order[i] + std::to_string(round) + "-" + std::to_string(i);
      AddTo(batcher, order[i], value, i % 2 == 0 ? "k" : "");
      expected[order[i]].push_back(value);
    }
    std::map<std::string, std::vector<std::string>> sent;
    std::vector<Batch> batches;
    for (int i = 0; i < 3; ++i) {
      batches.push_back(Next(batcher, kStart));
      sent[batches.back().topic] = Values(batches.back());
      EXPECT_EQ(batches.back().keys, std::vector<std::string>{"k"});
    }
    EXPECT_EQ(sent, expected);
    EXPECT_TRUE(NothingDue(batcher, kStart, AllUrgent()));
    // Each topic goes with its batch, the one looked up last too; the next
    // round uses the same names.
    for (const Batch& batch : batches) batcher.Complete(batch.topic, batch.keys, {});
    EXPECT_EQ(batcher.size(), 0u);
  }
}

TEST_F(BatcherTest, TopicErasedWhileAnotherIsTheLastLookedUpStaysApart) {
  Batcher batcher(
      BatchLimits{.max_messages = 10, .max_bytes = 1000, .linger = milliseconds(0)});
  AddTo(batcher, "a", "a1", "k");
  Batch a = Next(batcher, kStart);
  AddTo(batcher, "b", "b1", "k");     // "b" is the last looked up
  batcher.Complete("a", a.keys, {});  // "a" goes
  AddTo(batcher, "a", "a2", "k");
  AddTo(batcher, "b", "b2", "k");
  AddTo(batcher, "a", "a3", "k");
  Batch first = Next(batcher, kStart);
  EXPECT_EQ(first.topic, "a");
  EXPECT_EQ(Values(first), (std::vector<std::string>{"a2", "a3"}));
  Batch second = Next(batcher, kStart);
  EXPECT_EQ(second.topic, "b");
  EXPECT_EQ(Values(second), (std::vector<std::string>{"b1", "b2"}));
}

TEST_F(BatcherTest, KeyCompletedAndAddedAgainWhileOtherKeysOfTheTopicAreInFlight) {
  Batcher batcher(
      BatchLimits{.max_messages = 100, .max_bytes = 10000, .linger = milliseconds(0)});
  // Enough keys that the key map grew (rehashed) before the erase below.
  for (int i = 0; i < 40; ++i) {
    const std::string key = "j" + std::to_string(i);
    Add(batcher, key + "-1", key);
  }
  Batch others = Next(batcher, kStart);
  ASSERT_EQ(others.keys.size(), 40u);
  Add(batcher, "k1", "k");
  Batch first = Next(batcher, kStart);
  EXPECT_EQ(Values(first), std::vector<std::string>{"k1"});
  Add(batcher, "j3-2", "j3");  // waits for `others`

  batcher.Complete("t", first.keys, {});  // k's queue goes, the j's stay
  Add(batcher, "k2", "k");
  Add(batcher, "k3", "k");
  Batch second = Next(batcher, kStart);
  EXPECT_EQ(Values(second), (std::vector<std::string>{"k2", "k3"}));
  EXPECT_EQ(second.keys, std::vector<std::string>{"k"});
  EXPECT_TRUE(NothingDue(batcher, kStart, AllUrgent())) << "j3-2 waits";

  // k3 fails: it goes again before k4, after its backoff.
  Add(batcher, "k4", "k");
  std::vector<std::unique_ptr<Pending>> retries;
  retries.push_back(std::move(second.messages[1]));
  retries[0]->attempts = 1;
  retries[0]->not_before = kStart + milliseconds(5);
  batcher.Complete("t", second.keys, std::move(retries));
  EXPECT_TRUE(NothingDue(batcher, kStart, AllUrgent()));

  batcher.Complete("t", others.keys, {});
  EXPECT_EQ(Values(Next(batcher, kStart)), std::vector<std::string>{"j3-2"});
  batcher.ReleaseBackoff(kStart + milliseconds(5));
  Batch third = Next(batcher, kStart + milliseconds(5));
  EXPECT_EQ(Values(third), (std::vector<std::string>{"k3", "k4"}));
  EXPECT_EQ(third.keys, std::vector<std::string>{"k"});
  EXPECT_EQ(batcher.size(), 0u);
}

}  // namespace
}  // namespace ferry::client::internal

// A randomized run checked against a model of what batcher.h promises:
// every message leaves exactly once (sent, expired or taken), a key is in at
// most one in-flight batch, a key's messages leave in publish order with its
// retries put back in front, batches keep to the limits (one oversized
// message alone excepted), no topic is due before NextWakeup() even after
// messages added to its quiet topics within their room (as Publish leaves
// the sender asleep for them), and once all is complete and urgent
// everything leaves.
namespace ferry::client::internal {
namespace {

using std::chrono::microseconds;

class BatcherModelCheck {
 public:
  explicit BatcherModelCheck(uint32_t seed)
      : rng_(seed), limits_(RandomLimits()), batcher_(limits_) {
    retry_percent_ = Uniform(0, 30);
  }

  void Run(int steps, bool take_all_at_end) {
    // Stops at the first failure: what follows it would only repeat it.
    for (int step = 0; step < steps && !::testing::Test::HasFailure(); ++step) {
      SCOPED_TRACE(::testing::Message() << "step " << step);
      const int64_t action = Uniform(0, 99);
      if (action < 40) {
        AddMessage();
      } else if (action < 55) {
        Advance();
      } else if (action < 75) {
        Drain(PickUrgent(), /*whole=*/Uniform(0, 99) < 80);
      } else if (action < 98) {
        if (!in_flight_.empty()) {
          Complete(static_cast<std::size_t>(Uniform(0, in_flight_.size() - 1)),
                   retry_percent_);
        }
      } else {
        limits_ = RandomLimits();
        batcher_.SetLimits(limits_);
        quiet_ = false;
      }
      EXPECT_EQ(batcher_.size(), held_);
    }
    if (::testing::Test::HasFailure()) return;
    if (take_all_at_end) {
      TakeAllThenComplete();
    } else {
      FlushEverything();
    }
    for (const Message& message : messages_) {
      EXPECT_TRUE(message.state == State::kSent || message.state == State::kExpired ||
                  message.state == State::kTaken)
          << "a message of topic " << message.topic << " key " << message.key
          << " never left";
    }
    // The run reached what it is meant to check.
    EXPECT_GT(sent_, 0);
    EXPECT_GT(expired_, 0);
    EXPECT_GT(multi_key_batches_, 0);
    if (retry_percent_ > 0) {
      EXPECT_GT(retried_, 0);
    }
    if (take_all_at_end) {
      EXPECT_GT(taken_, 0);
    }
    EXPECT_GT(quiet_adds_, 0);
  }

 private:
  enum class State { kHeld, kInFlight, kSent, kExpired, kTaken };
  struct Message {
    std::string topic;
    std::string key;
    State state = State::kHeld;
  };
  using KeyId = std::pair<std::string, std::string>;  // (topic, key)

  int64_t Uniform(int64_t low, int64_t high) {
    return std::uniform_int_distribution<int64_t>(low, high)(rng_);
  }

  BatchLimits RandomLimits() {
    return {.max_messages = static_cast<std::size_t>(Uniform(1, 8)),
            .max_bytes = static_cast<std::size_t>(Uniform(20, 200)),
            .linger = microseconds(Uniform(0, 3000))};
  }

  uint64_t PickUrgent() {
    const int64_t choice = Uniform(0, 9);
    if (choice < 6) return 0;
    if (choice < 8) return seq_;  // Flush
    return static_cast<uint64_t>(Uniform(0, static_cast<int64_t>(seq_)));
  }

  void AddMessage() {
    static const char* const kTopics[] = {"t0", "t1", "t2"};
    static const char* const kKeys[] = {"", "", "k0", "k1", "k2", "k3", "k4"};
    // Runs on one topic, switching now and then.
    if (Uniform(0, 1) == 0) topic_ = kTopics[Uniform(0, 2)];
    const std::string key = kKeys[Uniform(0, 6)];
    const std::size_t bytes =
        Uniform(0, 19) == 0 ? limits_.max_bytes + static_cast<std::size_t>(Uniform(1, 50))
                            : static_cast<std::size_t>(Uniform(
                                  1, static_cast<int64_t>(limits_.max_bytes / 2)));
    std::unique_ptr<Pending> message = Pending::New(topic_, key, bytes);
    message->seq = ++seq_;
    message->published_at = now_;
    message->deadline = Uniform(0, 9) == 0 ? now_ + microseconds(Uniform(0, 4000))
                                           : now_ + std::chrono::hours(1);
    messages_.push_back({.topic = topic_, .key = key});
    if (!key.empty()) queues_[{topic_, key}].push_back(seq_);
    ++held_;
    const bool stays_quiet = quiet_ && WithinRoom(*message);
    batcher_.Add(std::move(message));
    quiet_ = stays_quiet;
    if (stays_quiet) ++quiet_adds_;
  }

  // What Publisher::Impl::WakeSenderFor lets the sender sleep through: a
  // message of a quiet topic within its room whose linger ends no earlier
  // than the wake-up.
  bool WithinRoom(const Pending& message) {
    auto room =
        rooms_.find(absl::string_view(message.topic.data(), message.topic.size()));
    if (room == rooms_.end() || message.published_at + limits_.linger < wakeup_ ||
        room->second.messages <= 1 || room->second.bytes <= message.wire_bytes) {
      return false;
    }
    --room->second.messages;
    room->second.bytes -= message.wire_bytes;
    return true;
  }

  void Advance() {
    if (wakeup_ != Clock::time_point::max() && wakeup_ > now_ && Uniform(0, 2) == 0) {
      // Right before or at the moment NextWakeup() named.
      now_ = Uniform(0, 1) == 0 ? std::max(now_, wakeup_ - microseconds(1)) : wakeup_;
      return;
    }
    now_ += microseconds(Uniform(0, 1500));
  }

  // What the sender does: releases backoffs, then takes batches (all that
  // are due, or only one when not `whole`).
  void Drain(uint64_t urgent_upto, bool whole) {
    batcher_.ReleaseBackoff(now_);
    if (quiet_ && now_ < wakeup_) {
      std::vector<std::unique_ptr<Pending>> expired;
      ASSERT_FALSE(batcher_.NextBatch(now_, quiet_urgent_upto_, &expired).has_value())
          << "a topic is due before NextWakeup()";
      ASSERT_TRUE(expired.empty());
    }
    // Every batch takes a held message: more rounds than that means a loop.
    const std::size_t most_rounds = held_ + 1;
    for (std::size_t round = 0;; ++round) {
      ASSERT_LE(round, most_rounds) << "NextBatch keeps returning batches";
      std::vector<std::unique_ptr<Pending>> expired;
      std::optional<Batch> batch = batcher_.NextBatch(now_, urgent_upto, &expired);
      ASSERT_NO_FATAL_FAILURE(CheckLeaving(batch ? &*batch : nullptr, expired));
      if (!batch.has_value()) break;
      in_flight_.push_back(std::move(*batch));
      if (!whole) break;
    }
    quiet_ = whole;
    wakeup_ = whole ? batcher_.NextWakeup(urgent_upto) : Clock::time_point::min();
    quiet_urgent_upto_ = urgent_upto;
    batcher_.Quiet(urgent_upto, &rooms_);
  }

  void CheckLeaving(const Batch* batch,
                    const std::vector<std::unique_ptr<Pending>>& expired) {
    // Per key: what leaves (expired and sent) must be the first of what the
    // key holds, and the sent ones in that order.
    std::map<KeyId, std::vector<uint64_t>> leaving;
    std::map<KeyId, std::vector<uint64_t>> sent;
    for (const std::unique_ptr<Pending>& message : expired) {
      Message& model = Model(*message);
      ASSERT_EQ(model.state, State::kHeld) << "seq " << message->seq << " left twice";
      EXPECT_LE(message->deadline, now_);
      model.state = State::kExpired;
      --held_;
      ++expired_;
      if (!model.key.empty()) leaving[{model.topic, model.key}].push_back(message->seq);
    }
    if (batch != nullptr) {
      ASSERT_FALSE(batch->messages.empty());
      EXPECT_LE(batch->messages.size(), limits_.max_messages);
      std::size_t bytes = 0;
      std::set<std::string> keys;
      for (const std::unique_ptr<Pending>& message : batch->messages) {
        Message& model = Model(*message);
        ASSERT_EQ(model.state, State::kHeld) << "seq " << message->seq << " left twice";
        EXPECT_EQ(model.topic, batch->topic);
        EXPECT_GT(message->deadline, now_);
        model.state = State::kInFlight;
        --held_;
        bytes += message->wire_bytes;
        if (model.key.empty()) continue;
        keys.insert(model.key);
        leaving[{model.topic, model.key}].push_back(message->seq);
        sent[{model.topic, model.key}].push_back(message->seq);
      }
      EXPECT_TRUE(bytes <= limits_.max_bytes || batch->messages.size() == 1)
          << bytes << " bytes in " << batch->messages.size() << " messages";
      EXPECT_EQ(std::set<std::string>(batch->keys.begin(), batch->keys.end()), keys);
      EXPECT_EQ(batch->keys.size(), keys.size()) << "a key twice in Batch::keys";
      for (const std::string& key : batch->keys) {
        EXPECT_TRUE(keys_in_flight_.insert({batch->topic, key}).second)
            << "key " << key << " in two batches in flight";
      }
      if (keys.size() > 1) ++multi_key_batches_;
    }
    for (auto& [key, seqs] : leaving) {
      std::deque<uint64_t>& queue = queues_[key];
      ASSERT_LE(seqs.size(), queue.size());
      std::vector<uint64_t> first(queue.begin(), queue.begin() + seqs.size());
      std::vector<uint64_t> left = seqs;
      std::sort(first.begin(), first.end());
      std::sort(left.begin(), left.end());
      EXPECT_EQ(left, first) << "key " << key.second << " of " << key.first
                             << " left out of order";
      std::vector<uint64_t> in_order;
      for (uint64_t seq : queue) {
        if (std::find(sent[key].begin(), sent[key].end(), seq) != sent[key].end()) {
          in_order.push_back(seq);
        }
      }
      EXPECT_EQ(sent[key], in_order)
          << "key " << key.second << " out of order in a batch";
      queue.erase(queue.begin(), queue.begin() + seqs.size());
    }
  }

  // Completes in_flight_[index]: each message fails retryably with
  // `retry_percent` chance, the others are done.
  void Complete(std::size_t index, int64_t retry_percent) {
    Batch batch = std::move(in_flight_[index]);
    in_flight_.erase(in_flight_.begin() + static_cast<std::ptrdiff_t>(index));
    const bool retry_all = retry_percent > 0 && Uniform(0, 9) == 0;
    std::vector<std::unique_ptr<Pending>> retries;
    std::map<KeyId, std::vector<uint64_t>> retried;
    for (std::unique_ptr<Pending>& message : batch.messages) {
      Message& model = Model(*message);
      if (retry_all || Uniform(0, 99) < retry_percent) {
        ++message->attempts;
        message->not_before = now_ + microseconds(Uniform(0, 3000));
        model.state = State::kHeld;
        ++held_;
        ++retried_;
        if (!model.key.empty()) retried[{model.topic, model.key}].push_back(message->seq);
        retries.push_back(std::move(message));
      } else {
        model.state = State::kSent;
        ++sent_;
      }
    }
    // The model: retries go in front of their key's queue, in request order.
    for (auto& [key, seqs] : retried) {
      std::deque<uint64_t>& queue = queues_[key];
      queue.insert(queue.begin(), seqs.begin(), seqs.end());
    }
    for (const std::string& key : batch.keys) keys_in_flight_.erase({batch.topic, key});
    batcher_.Complete(batch.topic, batch.keys, std::move(retries));
    quiet_ = false;
  }

  // Completes every batch without retries, then sends all that is left at
  // once (urgent) after every backoff: nothing may stay behind.
  void FlushEverything() {
    now_ += std::chrono::milliseconds(10);  // past every backoff
    for (int round = 0; round < 1000; ++round) {
      while (!in_flight_.empty()) Complete(0, /*retry_percent=*/0);
      Drain(seq_, /*whole=*/true);
      if (::testing::Test::HasFatalFailure() || in_flight_.empty()) break;
    }
    EXPECT_TRUE(in_flight_.empty());
    EXPECT_EQ(held_, 0u);
    EXPECT_EQ(batcher_.size(), 0u);
    EXPECT_EQ(batcher_.NextWakeup(kNotUrgent), Clock::time_point::max());
    EXPECT_TRUE(batcher_.TakeAll().empty());
  }

  // As the publisher closes: takes what is held, then the batches in flight
  // complete.
  void TakeAllThenComplete() {
    for (const std::unique_ptr<Pending>& message : batcher_.TakeAll()) {
      Message& model = Model(*message);
      EXPECT_EQ(model.state, State::kHeld) << "seq " << message->seq << " taken twice";
      model.state = State::kTaken;
      --held_;
      ++taken_;
    }
    queues_.clear();
    EXPECT_EQ(held_, 0u);
    EXPECT_EQ(batcher_.size(), 0u);
    while (!in_flight_.empty()) Complete(0, /*retry_percent=*/0);
    EXPECT_EQ(batcher_.size(), 0u);
    EXPECT_EQ(batcher_.NextWakeup(kNotUrgent), Clock::time_point::max());
  }

  Message& Model(const Pending& message) { return messages_.at(message.seq - 1); }

  std::mt19937 rng_;
  BatchLimits limits_;
  Batcher batcher_;
  int64_t retry_percent_ = 0;
  Clock::time_point now_ = kStart;
  uint64_t seq_ = 0;
  std::string topic_ = "t0";
  // By seq - 1.
  std::vector<Message> messages_;
  // Per key, its held messages in the order they must leave.
  std::map<KeyId, std::deque<uint64_t>> queues_;
  std::set<KeyId> keys_in_flight_;
  std::vector<Batch> in_flight_;
  std::size_t held_ = 0;
  // No call but NextBatch, ReleaseBackoff and adds within `rooms_` since the
  // last whole drain (with `quiet_urgent_upto_`), after which NextWakeup()
  // said `wakeup_` and Quiet() `rooms_`.
  bool quiet_ = false;
  Clock::time_point wakeup_ = Clock::time_point::min();
  uint64_t quiet_urgent_upto_ = kNotUrgent;
  QuietTopics rooms_;
  int quiet_adds_ = 0;
  int sent_ = 0, expired_ = 0, retried_ = 0, taken_ = 0, multi_key_batches_ = 0;
};

TEST(BatcherModelTest, RandomRunsKeepTheContract) {
  for (uint32_t seed = 1; seed <= 16; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    BatcherModelCheck check(seed);
    check.Run(/*steps=*/5000, /*take_all_at_end=*/seed % 2 == 0);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace ferry::client::internal
